"""The control plane for tests: in-process (FastAPI's TestClient over a real SQLite/PostgreSQL
store) or as a real ``anycastlb control`` child process listening on loopback."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import httpx
import httpx2
from fastapi.testclient import TestClient

from anycastlb.control.api.app import create_app
from anycastlb.control.api.runtime import Runtime
from anycastlb.control.server import platform_addresses
from anycastlb.control.store.engine import open_store
from anycastlb.lab.ports import free_port
from tests.support.processes import ChildProcess

__all__ = ["ADMIN_TOKEN", "LAB_BACKEND_NETWORKS", "ControlApi", "ControlProcess", "listener", "spec"]

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"  # noqa: S105 - a test fixture
# The lab switch (`anycastlb control --allow-backend-network`) the tests run with: their nodes are
# loopback sockets, and spec-only tests name made-up private nodes. A test of the backend policy
# itself passes allow_backend_networks=() to get the production default.
LAB_BACKEND_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "192.168.0.0/16", "fc00::/7")


def listener(
    port: int = 443, backends: tuple[tuple[str, int], ...] = (("10.0.0.11", 30443),), **extra: Any
) -> dict[str, Any]:
    return {
        "port": port,
        "backends": [{"address": address, "port": node_port} for address, node_port in backends],
        **extra,
    }


def spec(name: str = "web", *, listeners: list[dict[str, Any]] | None = None, **ips: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "listeners": listeners or [listener()]}
    if ips:
        body["ips"] = ips
    return body


class ControlApi:
    """A TestClient with the admin token, plus helpers that build the usual fixtures."""

    def __init__(
        self,
        database: str,
        *,
        allow_backend_networks: tuple[str, ...] = LAB_BACKEND_NETWORKS,
        platform_networks: tuple[str, ...] = (),
        listen: str = "127.0.0.1",
    ) -> None:
        self.store = open_store(database)
        platform = platform_addresses(listen, list(platform_networks), list(allow_backend_networks))
        self.runtime = Runtime(store=self.store, admin_token=ADMIN_TOKEN, platform=platform)
        self.app = create_app(self.runtime)
        self.client = TestClient(self.app, raise_server_exceptions=True)
        self.client.__enter__()

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.store.dispose()

    def call(self, method: str, path: str, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> httpx2.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> Any:
        response = self.call(method, path, token, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def tenant(self, name: str) -> str:
        """Create a tenant and return an API token of it."""
        self.ok("POST", "/v1/tenants", json={"name": name})
        return str(self.ok("POST", f"/v1/tenants/{name}/tokens", json={"description": "test"})["secret"])

    def pool(self, name: str, *networks: str, owner: str | None = None, **extra: Any) -> Any:
        return self.ok(
            "POST", "/v1/pools", json={"name": name, "networks": list(networks), "owner": owner, **extra}
        )

    def pop(self, name: str) -> str:
        return str(self.ok("POST", "/v1/pops", json={"name": name})["token"]["secret"])


class ControlProcess(ChildProcess):
    """``anycastlb control`` as a child process (what the e2e tests and benchmarks drive)."""

    def __init__(
        self,
        workdir: Path,
        database: str | None = None,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        *,
        allow_backend_networks: tuple[str, ...] = LAB_BACKEND_NETWORKS,
    ) -> None:
        super().__init__()
        self.allow_backend_networks = allow_backend_networks
        self.workdir = workdir
        self.extra_args = extra_args  # e.g. ("--max-listeners", "3")
        self.port = port or free_port()
        self.database = database or f"sqlite:///{workdir / 'control.db'}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "control.log"

    def start(self) -> Self:
        env = dict(os.environ, ANYCASTLB_ADMIN_TOKEN=ADMIN_TOKEN)
        log = self._open_log(self.log_path)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anycastlb.cli",
                "control",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--database",
                self.database,
                "--log-level",
                "warning",
                *self.extra_args,
                *(f"--allow-backend-network={network}" for network in self.allow_backend_networks),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60  # a start on a busy 2-core CI box has taken > 20 s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"control plane exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"control plane did not answer /healthz:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def client(self, token: str = ADMIN_TOKEN) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
