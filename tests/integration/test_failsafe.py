"""A running edge survives whatever its config file holds, and a bug that one input trips.

Each test starts a real edge with nginx behind it, does something bad to it, and then checks the
three things an operator would: requests still succeed through the VIP, no process of the edge died
or was replaced, and a counter says what happened.
"""

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from anycastlb.lab.nginx import NginxBackend
from tests.integration.conftest import listener
from tests.integration.test_client_address import get
from tests.support.bad_files import BAD_FILES, replace_with
from tests.support.edge import EdgeProcess
from tests.support.faults import FAULTY_LISTENER


def children(agent: EdgeProcess) -> set[int]:
    assert agent.process is not None
    found = subprocess.run(
        ["pgrep", "-P", str(agent.process.pid)], capture_output=True, text=True, check=False
    )
    return {int(pid) for pid in found.stdout.split()}


def serves(port: int, node: str, requests: int = 10) -> int:
    """How many of ``requests`` GETs through the VIP were answered by ``node``."""
    return sum(get("127.0.0.1", port).startswith(f"node={node} ") for _ in range(requests))


def wait_for_metric(
    agent: EdgeProcess, name: str, at_least: float, timeout: float = 10.0, **labels: str
) -> None:
    deadline = time.monotonic() + timeout
    while agent.metric(name, **labels) < at_least:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}{labels} stayed below {at_least} for {timeout}s:\n{agent.log()}")
        time.sleep(0.05)


def test_a_reload_with_any_bad_file_keeps_serving_the_old_config(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    web = listener("web", [("127.0.0.1", node.port)])
    agent = edge({"listeners": [web], "workers": 2})
    before = children(agent)
    assert len(before) == 3  # two workers and the health process

    for rejected, kind in enumerate(BAD_FILES, start=1):
        replace_with(agent.config_path, kind)
        agent.signal(signal.SIGHUP)
        agent.wait_for_log("reload_rejected", count=rejected)

        assert serves(web["port"], "node-a") == 10, f"after {kind}"
        assert children(agent) == before, f"a process died after {kind}"
        assert agent.metric("anycastlb_config_reloads_total", result="invalid") == rejected
    assert agent.log().count("reload_rejected") == len(BAD_FILES)  # one line per bad reload
    assert "Traceback" not in agent.log()

    replace_with(agent.config_path, "missing")
    agent.write_config({**agent.config, "listeners": [dict(web, idle_timeout="120s")]})
    agent.signal(signal.SIGHUP)
    agent.wait_for_log("reload_applied")
    assert serves(web["port"], "node-a") == 10


@pytest.mark.parametrize("kind", BAD_FILES)
def test_check_prints_one_line_and_no_traceback_for_a_bad_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "edge.yaml"
    replace_with(path, kind)

    result = subprocess.run(
        [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in BAD_FILES[kind][1]:
        assert fragment in result.stderr


def test_a_bug_one_listener_trips_costs_only_that_listener(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    """Connections never run Python (the compiled core); what can raise in a worker is its shell
    applying a config: the listener that trips the bug is skipped, the others and the process live."""
    node = nginx("node-a")
    web = listener("web", [("127.0.0.1", node.port)])
    agent = edge(
        {"listeners": [web], "workers": 1}, preload="import tests.support.faults as f; f.raise_on_listener()"
    )
    before = children(agent)

    faulty = listener(FAULTY_LISTENER, [("127.0.0.1", node.port)])
    agent.write_config({**agent.config, "listeners": [web, faulty]})
    agent.signal(signal.SIGHUP)
    agent.wait_for_log("reload_applied")
    wait_for_metric(agent, "anycastlb_edge_internal_errors_total", 1, component="worker")

    assert serves(web["port"], "node-a") == 10
    with pytest.raises(ConnectionRefusedError):  # its socket was closed, not left to queue connections
        socket.create_connection(("127.0.0.1", faulty["port"]), timeout=5).close()
    assert children(agent) == before
    assert "worker_died" not in agent.log()
    assert agent.metric("anycastlb_edge_internal_errors_total", component="worker") == 1
    assert "internal_error component=worker action=skip-listener" in agent.log()


def test_a_health_probe_that_raises_keeps_the_verdict_and_the_checks_going(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    good, faulty = nginx("node-a"), nginx("node-b")
    web = listener(
        "web",
        [("127.0.0.1", good.port), ("127.0.0.1", faulty.port)],
        health={"type": "tcp", "interval": "100ms", "timeout": "50ms", "fall": 2},
    )
    agent = edge(
        {"listeners": [web], "workers": 1},
        preload=f"import tests.support.faults as f; f.raise_on_probe_of_port({faulty.port})",
    )
    before = children(agent)

    # More faulty probes than `fall`: before the fix, the checks of node-b stopped after two.
    wait_for_metric(agent, "anycastlb_edge_internal_errors_total", 5, component="health")

    bodies = [get("127.0.0.1", web["port"], source=f"127.0.0.{host}") for host in range(2, 42)]
    answered = {
        node: sum(body.startswith(f"node={node} ") for body in bodies) for node in ("node-a", "node-b")
    }
    assert sum(answered.values()) == 40 and answered["node-b"] > 0, answered  # node-b was not ejected
    assert agent.metric("anycastlb_backend_up", backend=f"127.0.0.1:{faulty.port}") == 1
    assert children(agent) == before
    assert "helper_died" not in agent.log()
