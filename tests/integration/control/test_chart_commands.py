"""The command lines the control plane's Helm chart renders, run for real against PostgreSQL.

No cluster here: the chart is rendered offline, each container's `args` and `env` are taken from
the manifests (a ``secretKeyRef`` resolved from Secrets as the test would create them), and run as
local processes in the order Helm runs them. This proves that the flags and variables the chart
writes are the ones `anycastlb control` reads, and the migration design end to end: a replica
refuses an unmigrated database, the hook Job migrates it once, two replicas then serve the same
state, and the Job of the next upgrade finds nothing to do.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from anycastlb.lab.ports import free_port
from tests.support.helm import engine
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
CHART = Path(__file__).resolve().parents[3] / "deploy" / "helm" / "anycastlb-control"
ADMIN_TOKEN = "chart-commands-admin-token-0123456789"  # noqa: S105 - a test value
HEAD = "0010"  # the newest migration (0010_tunnels)


def render(port: int) -> list[Obj]:
    helm = engine(CHART, "anycastlb-control", "anycastlb-system")
    if helm is None:
        pytest.skip(
            "no Helm engine: helm_python (PyPI helm-python-sdk) is not installed and `helm` is not on PATH"
        )
    values = {
        "databaseSecret": {"name": "anycastlb-database"},
        "adminTokenSecret": {"name": "anycastlb-admin-token"},
        "listenAddress": "127.0.0.1",
        "port": port,
    }
    return helm.render(values)


def command(
    objects: list[Obj], kind: str, secrets: dict[str, dict[str, str]]
) -> tuple[list[str], dict[str, str]]:
    """The container's argv (``anycastlb`` as this checkout's module) and its environment."""
    [obj] = [obj for obj in objects if obj["kind"] == kind]
    [container] = obj["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["anycastlb"]
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ANYCASTLB_") and name not in ("PGPASSWORD", "PGSERVICE")
    }
    for variable in container["env"]:
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            environment[variable["name"]] = secrets[ref["name"]][ref["key"]]
    return [sys.executable, "-m", "anycastlb.cli", *container["args"]], environment


@contextmanager
def serving(replicas: list[tuple[list[str], dict[str, str], int]], logs: Path) -> Iterator[list[str]]:
    """The replicas as the kubelet would start them, all at once; yields their URLs once each
    answers /healthz with 200 (its readiness probe). Stops them and closes their logs whatever
    happens."""
    with ExitStack() as stack:
        started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
        for argv, environment, port in replicas:
            log = logs / f"replica-{port}.log"
            output = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(argv, env=environment, stdout=output, stderr=subprocess.STDOUT)
            stack.callback(stop, process)
            started.append((process, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + 60
        for process, url, log in started:
            while True:
                if process.poll() is not None:
                    pytest.fail(f"the replica exited {process.returncode}:\n{log.read_text()}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the replica never became ready:\n{log.read_text()}")
                time.sleep(0.1)
        yield [url for _, url, _ in started]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_charts_commands_migrate_once_and_serve_from_two_replicas(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    secrets = {
        "anycastlb-database": {"url": postgres.new_database()},
        "anycastlb-admin-token": {"token": ADMIN_TOKEN},
    }
    ports = [free_port(), free_port()]
    replicas = [command(render(port), "Deployment", secrets) for port in ports]
    job_argv, job_env = command(render(ports[0]), "Job", secrets)
    assert "ANYCASTLB_ADMIN_TOKEN" not in job_env

    # Had a replica started before the Job (Helm never does that), it would refuse the empty database.
    argv, environment = replicas[0]
    early = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=60, check=False)
    assert early.returncode == 2, early.stderr
    assert "the database has no anycastlb schema yet" in early.stderr

    # helm install: the pre-install Job, then the Deployment's two replicas.
    job = subprocess.run(job_argv, env=job_env, capture_output=True, text=True, timeout=120, check=False)
    assert job.returncode == 0, job.stderr
    assert job.stdout.strip() == f"schema migrated from revision none (a new database) to {HEAD}"
    with serving([(*replica, port) for replica, port in zip(replicas, ports, strict=True)], tmp_path) as urls:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        for url in urls:
            assert httpx.get(f"{url}/livez", timeout=5).json() == {"status": "ok"}
            assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok", "database": "postgresql"}
        created = httpx.post(f"{urls[0]}/v1/tenants", json={"name": "acme"}, headers=headers, timeout=10)
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{urls[1]}/v1/tenants", headers=headers, timeout=10)
        assert [tenant["name"] for tenant in listed.json()] == ["acme"]

        # helm upgrade with the same image: the pre-upgrade Job runs again and changes nothing.
        again = subprocess.run(
            job_argv, env=job_env, capture_output=True, text=True, timeout=120, check=False
        )
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == f"schema already at revision {HEAD}"
