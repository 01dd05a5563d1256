"""SIGTERM drains, SIGHUP reloads without cutting connections, bad config is refused clearly."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import listener
from tests.integration.test_relay import echo_session
from tests.support.edge import EdgeProcess
from tests.support.stream_backend import StreamBackend


def echo_round_trip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def read_until_closed(sock: socket.socket) -> None:
    while sock.recv(65536):
        pass


def test_sigterm_stops_accepting_finishes_open_connections_and_exits_zero(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    agent = edge({"listeners": [web], "drain_timeout": "20s"})
    sock = echo_session(web["port"])

    agent.signal(signal.SIGTERM)
    agent.wait_for_log("drain_started", count=2)

    refused = socket.socket()
    assert refused.connect_ex(("127.0.0.1", web["port"])) != 0, "still accepting while draining"
    refused.close()
    assert echo_round_trip(sock, b"still here") == b"still here"
    assert agent.process is not None and agent.process.poll() is None, "exited with a connection open"
    sock.close()
    assert agent.wait(timeout=10) == 0


def test_drain_timeout_cuts_connections_that_do_not_finish(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    drain_timeout = 1.0
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    agent = edge({"listeners": [web], "drain_timeout": f"{drain_timeout}s"})
    sock = echo_session(web["port"])

    started = time.monotonic()
    agent.signal(signal.SIGTERM)
    agent.wait_for_log("drain_started", count=2)
    assert echo_round_trip(sock, b"still open") == b"still open"  # not cut before the timeout
    sock.settimeout(10)
    with pytest.raises(ConnectionResetError):  # cut: a reset, not a clean end
        read_until_closed(sock)
    cut_after = time.monotonic() - started
    sock.close()

    # The open connection had the whole drain timeout, and the workers cut it themselves, before
    # the supervisor's drain_overrun SIGKILL 5 s later (_GRACE_AFTER_DRAIN).
    assert drain_timeout - 0.1 <= cut_after < drain_timeout + 5, f"cut {cut_after:.2f} s after SIGTERM"
    assert agent.wait(timeout=drain_timeout + 10) == 0
    assert re.search(r"worker_exit worker=\d+ connections_cut=1", agent.log())
    deadline = time.monotonic() + 5
    while not stream_backend.echo_endings and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stream_backend.echo_endings == ["reset"], "the backend side was not cut by a reset"


def test_sighup_reload_keeps_open_connections_and_applies_the_new_config(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    agent = edge({"listeners": [web]})
    sock = echo_session(web["port"])

    with StreamBackend() as second:
        added = listener("added", [("127.0.0.1", stream_backend.port)])
        # web: another backend, and 2 connections per source instead of the default 1000
        backends = [{"address": "127.0.0.1", "port": second.port}]
        changed = dict(web, backends=backends, max_connections_per_source=2)
        agent.write_config({**agent.config, "listeners": [changed, added]})
        agent.signal(signal.SIGHUP)
        agent.wait_for_log("config_applied", count=2)

        assert echo_round_trip(sock, b"after reload") == b"after reload"  # kept, on its backend
        with echo_session(web["port"], "127.0.5.1"), echo_session(web["port"], "127.0.5.1"):
            assert len(second.headers) == 2, "new connections did not go to the new backend"
            assert refused(web["port"], "127.0.5.1"), "a third connection from one source was served"
        echo_session(added["port"]).close()
        assert len(stream_backend.headers) == 2  # the first connection and the added listener's
    sock.close()


def refused(port: int, source: str) -> bool:
    """A refusal is a reset: on loopback it can arrive before connect() returns, or at the send."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as sock:
            sock.sendall(b"ECHO\n")
            return sock.recv(5) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_a_bad_reload_keeps_the_old_config_running(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    agent = edge({"listeners": [web]})
    agent.config_path.write_text("pop: fra\nlisteners:\n  - name: web\n    port: 99999\n")

    agent.signal(signal.SIGHUP)
    agent.wait_for_log("reload_rejected")

    assert "port" in agent.log().split("reload_rejected", 1)[1]
    echo_session(web["port"]).close()
    assert agent.metric("anycastlb_config_reloads_total", result="invalid") == 1


def run_check(tmp_path: Path, config: object) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "edge.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_malformed_config_exits_non_zero_naming_the_field(tmp_path: Path) -> None:
    result = run_check(
        tmp_path,
        {
            "pop": "fra",
            "listeners": [
                {
                    "name": "web-https",
                    "address": "203.0.113.300",
                    "port": 443,
                    "backends": [{"address": "10.0.0.11", "port": 30443, "weigth": 2}],
                }
            ],
        },
    )

    assert result.returncode == 2
    assert "listeners[0] (web-https).address: '203.0.113.300' is not an IPv4 or IPv6 address" in result.stderr
    assert "listeners[0] (web-https).backends[0].weigth: unknown field" in result.stderr


def test_yaml_that_does_not_parse_is_reported_with_its_position(tmp_path: Path) -> None:
    result = run_check(tmp_path, "pop: fra\nlisteners: [\n")

    assert result.returncode == 2
    assert "is not valid YAML" in result.stderr
    assert "line" in result.stderr


def test_a_port_already_taken_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_check(
            tmp_path,
            {
                "pop": "fra",
                "metrics": None,
                "listeners": [{"name": "web", "address": "127.0.0.1", "port": port}],
            },
        )

    assert result.returncode == 1
    assert f"listener web: cannot listen on 127.0.0.1 port {port}" in result.stderr


def test_a_worker_killed_by_the_kernel_is_replaced_and_the_listener_keeps_serving(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    agent = edge({"listeners": [web], "workers": 2})
    assert agent.process is not None
    children = subprocess.run(
        ["pgrep", "-P", str(agent.process.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(children) == 3  # two workers and the health process
    workers = sorted(set(re.findall(r"pid=(\d+) anycastlb.dataplane listener_open", agent.log())))
    assert len(workers) == 2
    assert set(workers) <= set(children)

    os.kill(int(workers[0]), signal.SIGKILL)
    agent.wait_for_log("worker_died")
    agent.wait_for_log("worker_replaced")

    for _ in range(20):  # both workers' sockets are hit: SO_REUSEPORT hashes by source port
        echo_session(web["port"]).close()
    assert agent.metric("anycastlb_worker_respawns_total") == 1
