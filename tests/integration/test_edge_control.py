"""The edge follows the control plane (``anycastlb edge --control``) and keeps serving without it.

These tests run the edge against a stand-in of the PoP API (``tests/support/control_standin.py``):
the two endpoints of the contract over an in-memory desired state the test changes, so they test
the edge and the contract alone. tests/e2e runs the same edge against the real control plane.
VIPs are 127.0.0.x addresses (every 127/8 address is local); backends are stream backends that
echo through PROXY headers.
"""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anycastlb.lab.ports import free_port
from anycastlb.model.desired import DesiredLoadBalancer, PopDesiredState
from tests.support.control_standin import ControlStandIn
from tests.support.controlled_edge import ControlledEdge
from tests.support.stream_backend import StreamBackend

pytestmark = pytest.mark.integration

StartEdge = Callable[..., ControlledEdge]


@pytest.fixture
def standin() -> Iterator[ControlStandIn]:
    with ControlStandIn() as control:
        yield control


@pytest.fixture
def controlled(tmp_path: Path, standin: ControlStandIn) -> Iterator[StartEdge]:
    started: list[ControlledEdge] = []

    def start(**base: Any) -> ControlledEdge:
        agent = ControlledEdge(tmp_path, standin.url, standin.token, base).start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def load_balancer(
    name: str, vip: str, port: int, backends: list[int], tenant: str = "acme", **settings: Any
) -> DesiredLoadBalancer:
    return DesiredLoadBalancer.model_validate(
        {
            "id": f"lb-{name}",
            "tenant": tenant,
            "name": name,
            "version": 1,
            "vips": [vip],
            "listeners": [
                {
                    "port": port,
                    "backends": [{"address": "127.0.0.1", "port": backend} for backend in backends],
                    "health": {"interval": "200ms", "timeout": "100ms"},
                    **settings,
                }
            ],
        }
    )


def with_lbs(standin: ControlStandIn, *lbs: DesiredLoadBalancer) -> PopDesiredState:
    return standin.publish(PopDesiredState(pop=standin.pop, version=0, load_balancers=lbs))


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def echo_session(vip: str, port: int) -> socket.socket:
    """A connection through the edge to the backend's echo mode, proven to work both ways."""
    sock = socket.create_connection((vip, port), timeout=5)
    try:
        sock.sendall(b"ECHO\n")
        assert read_line(sock) == b"echo\n"
    except BaseException:
        sock.close()  # a retry loop calls this until it works: leak nothing on the way
        raise
    return sock


def still_echoes(sock: socket.socket, payload: bytes = b"still here\n") -> bool:
    sock.sendall(payload)
    return read_line(sock) == payload


# A deadline for a loaded machine, yet far below the 30 s a missed long-poll wake-up would cost.
APPLIED_WITHIN = 10.0


def wait_served(vip: str, port: int, timeout: float = APPLIED_WITHIN) -> float:
    """Seconds until a connection to vip:port gets through to a backend and back."""
    started = time.monotonic()
    while True:
        try:
            echo_session(vip, port).close()
            return time.monotonic() - started
        except (OSError, AssertionError):
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{vip}:{port} not served within {timeout}s") from None
            time.sleep(0.002)


def wait_refused(vip: str, port: int, timeout: float = APPLIED_WITHIN) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex((vip, port)) != 0:
                return
        time.sleep(0.01)
    raise AssertionError(f"{vip}:{port} still accepts after {timeout}s")


def saved_version(agent: ControlledEdge, name: str = "last-known-good.json") -> int:
    version: int = json.loads((agent.state_dir / name).read_text())["state"]["version"]
    return version


def test_a_load_balancer_added_to_the_state_is_served_without_waiting_for_the_long_poll_to_end(
    standin: ControlStandIn, controlled: StartEdge, stream_backend: StreamBackend
) -> None:
    agent = controlled()
    assert "no_last_known_good waiting_for=control" in agent.log()
    port = free_port("127.0.0.11")

    with_lbs(standin, load_balancer("web", "127.0.0.11", port, [stream_backend.port]))

    wait_served("127.0.0.11", port)  # how fast: bench/apply_latency.py


def test_a_backend_change_keeps_open_connections_on_the_same_and_other_listeners(
    standin: ControlStandIn, controlled: StartEdge
) -> None:
    with StreamBackend() as one, StreamBackend() as two:
        web_port, api_port = free_port("127.0.0.12"), free_port("127.0.0.13")
        api = load_balancer("api", "127.0.0.13", api_port, [one.port])
        state = with_lbs(standin, load_balancer("web", "127.0.0.12", web_port, [one.port]), api)
        agent = controlled()
        wait_served("127.0.0.12", web_port)
        wait_served("127.0.0.13", api_port)
        on_web, on_api = echo_session("127.0.0.12", web_port), echo_session("127.0.0.13", api_port)

        changed = with_lbs(standin, load_balancer("web", "127.0.0.12", web_port, [two.port]), api)
        agent.wait_for_log(f"desired_applied version={changed.version}")

        assert changed.version == state.version + 1
        assert still_echoes(on_web) and still_echoes(on_api)
        before = len(two.headers)
        echo_session("127.0.0.12", web_port).close()
        assert len(two.headers) == before + 1, "a new connection went to the old backend"
        on_web.close()
        on_api.close()


def test_a_removed_load_balancer_stops_listening_and_the_others_keep_serving(
    standin: ControlStandIn, controlled: StartEdge, stream_backend: StreamBackend
) -> None:
    web_port, api_port = free_port("127.0.0.14"), free_port("127.0.0.15")
    web = load_balancer("web", "127.0.0.14", web_port, [stream_backend.port])
    api = load_balancer("api", "127.0.0.15", api_port, [stream_backend.port])
    with_lbs(standin, web, api)
    controlled()
    wait_served("127.0.0.14", web_port)
    wait_served("127.0.0.15", api_port)

    with_lbs(standin, api)

    wait_refused("127.0.0.14", web_port)
    wait_served("127.0.0.15", api_port)


def test_the_edge_keeps_serving_while_the_control_plane_is_gone(
    standin: ControlStandIn, controlled: StartEdge, stream_backend: StreamBackend
) -> None:
    port = free_port("127.0.0.16")
    with_lbs(standin, load_balancer("web", "127.0.0.16", port, [stream_backend.port]))
    agent = controlled()
    wait_served("127.0.0.16", port)
    open_session = echo_session("127.0.0.16", port)

    standin.stop()
    agent.wait_for_log("control_watch_failed")

    assert still_echoes(open_session)
    for _ in range(10):
        wait_served("127.0.0.16", port, timeout=1.0)
    assert agent.metric("anycastlb_control_connected") == 0
    assert agent.metric("anycastlb_control_watch_errors_total") >= 1
    open_session.close()


def test_a_restart_without_the_control_plane_serves_the_last_known_good_and_catches_up_later(
    standin: ControlStandIn, controlled: StartEdge, stream_backend: StreamBackend
) -> None:
    port, later_port = free_port("127.0.0.17"), free_port("127.0.0.18")
    web = load_balancer("web", "127.0.0.17", port, [stream_backend.port])
    applied = with_lbs(standin, web)
    agent = controlled()
    agent.wait_for_log(f"desired_applied version={applied.version}")
    agent.stop()
    standin.stop()

    agent.start()

    assert f"starting_from_last_known_good version={applied.version} saved=" in agent.log()
    wait_served("127.0.0.17", port)
    newer = with_lbs(standin, web, load_balancer("later", "127.0.0.18", later_port, [stream_backend.port]))
    standin.start()
    wait_served("127.0.0.18", later_port, timeout=8.0)  # within one retry (0.2 s doubling to 5 s)
    agent.wait_for_log(f"desired_applied version={newer.version}")  # saved once the workers have it
    assert saved_version(agent) == newer.version


def test_a_corrupt_last_known_good_is_logged_once_and_the_edge_follows_the_control_plane(
    tmp_path: Path, standin: ControlStandIn, stream_backend: StreamBackend
) -> None:
    """The supervisor reads the state directory at start and its follower again: one line, not two."""
    port = free_port("127.0.0.19")
    applied = with_lbs(standin, load_balancer("web", "127.0.0.19", port, [stream_backend.port]))
    agent = ControlledEdge(tmp_path, standin.url, standin.token)
    agent.state_dir.mkdir(mode=0o700)
    (agent.state_dir / "last-known-good.json").write_text("{not json")
    with agent:
        agent.wait_for_log(f"desired_applied version={applied.version}")
        assert agent.log().count("state_file_corrupt") == 1
        assert saved_version(agent) == applied.version


def test_a_listener_that_cannot_bind_is_left_out_and_reported_while_the_rest_applies(
    standin: ControlStandIn, controlled: StartEdge, stream_backend: StreamBackend
) -> None:
    """One tenant's taken port must not block every other tenant's change at this PoP."""
    port = free_port("127.0.0.19")
    web = load_balancer("web", "127.0.0.19", port, [stream_backend.port])
    good = with_lbs(standin, web)
    agent = controlled()
    agent.wait_for_log(f"desired_applied version={good.version}")
    with socket.socket() as squatter:  # another program on the port, without SO_REUSEPORT
        squatter.bind(("127.0.0.20", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        api_port = free_port("127.0.0.23")
        api = load_balancer("api", "127.0.0.23", api_port, [stream_backend.port])
        mixed = with_lbs(
            standin, web, load_balancer("squat", "127.0.0.20", taken, [stream_backend.port]), api
        )
        report = standin.wait_for_report(lambda report: report.applied_version == mixed.version)

        wait_served("127.0.0.23", api_port)  # the new load balancer of the same state serves
        wait_served("127.0.0.19", port)  # and the old one never stopped
        assert any(
            "is not served" in problem.message
            and f"127.0.0.20 port {taken}" in problem.message
            and problem.load_balancer == "lb-squat"
            for problem in report.problems
        ), report.problems
        squat = next(status for status in report.listeners if status.port == taken)
        assert not squat.serving and "cannot listen" in squat.reason
        assert saved_version(agent) == mixed.version
        assert not (agent.state_dir / "rejected.json").exists()


def test_status_reports_carry_the_applied_version_and_each_listeners_health(
    standin: ControlStandIn, controlled: StartEdge, stream_backend: StreamBackend
) -> None:
    port = free_port("127.0.0.21")
    web = load_balancer("web", "127.0.0.21", port, [stream_backend.port])
    dns = DesiredLoadBalancer.model_validate(
        {
            "id": "lb-dns",
            "tenant": "acme",
            "name": "dns",
            "version": 1,
            "vips": ["127.0.0.22"],
            "listeners": [{"port": 53, "protocol": "udp"}],
        }
    )
    applied = with_lbs(standin, web, dns)
    controlled()
    wait_served("127.0.0.21", port)
    session = echo_session("127.0.0.21", port)

    report = standin.wait_for_report(
        lambda report: (
            report.applied_version == applied.version
            and any(listener.active_connections == 1 for listener in report.listeners)
        )
    )

    served = next(listener for listener in report.listeners if listener.load_balancer == "lb-web")
    assert (str(served.address), served.port, served.serving, served.supported) == (
        "127.0.0.21",
        port,
        True,
        True,
    )
    assert [(str(b.address), b.port, b.up) for b in served.backends] == [
        ("127.0.0.1", stream_backend.port, True)
    ]
    unsupported = next(listener for listener in report.listeners if listener.load_balancer == "lb-dns")
    assert (unsupported.protocol, unsupported.supported) == ("udp", False)
    assert any(
        problem.load_balancer == "lb-dns"
        and problem.kind == "listener_unsupported"
        and "udp" in problem.message
        for problem in report.problems
    ), report.problems
    assert report.draining is False
    assert report.announced == ()  # no bgp: block
    session.close()


@pytest.mark.slow
def test_twenty_changes_in_a_row_are_each_served_and_applied(
    standin: ControlStandIn, controlled: StartEdge, stream_backend: StreamBackend
) -> None:
    """Each version adds one load balancer (1 to 20 in the state); how fast they apply is measured
    by bench/apply_latency.py (docs/spec/pop-sync.md), not here."""
    agent = controlled()
    agent.wait_for_log("desired_applied version=1")
    lbs: list[DesiredLoadBalancer] = []
    for index in range(20):
        vip = f"127.0.1.{index + 1}"
        port = free_port(vip)
        lbs.append(load_balancer(f"lb{index}", vip, port, [stream_backend.port]))
        state = with_lbs(standin, *lbs)
        wait_served(vip, port)
        agent.wait_for_log(f"desired_applied version={state.version}")
    for index, lb in enumerate(lbs):  # and every earlier one still serves
        wait_served(f"127.0.1.{index + 1}", lb.listeners[0].port)


def run_edge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anycastlb.cli", "edge", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


def test_control_mode_without_a_pop_or_a_token_refuses_to_start_and_says_what_to_add(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "ANYCASTLB_POP_TOKEN"}

    no_pop = run_edge("--control", "http://127.0.0.1:1", "--state-dir", str(tmp_path), env=env)
    no_token = run_edge(
        "--control", "http://127.0.0.1:1", "--pop", "fra", "--state-dir", str(tmp_path), env=env
    )

    assert no_pop.returncode == 2
    assert "--control needs --pop NAME" in no_pop.stderr
    assert no_token.returncode == 2
    assert "set ANYCASTLB_POP_TOKEN" in no_token.stderr


def test_a_base_with_listeners_is_refused_in_control_mode(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("pop: fra\nlisteners:\n  - {name: web, address: 127.0.0.1, port: 8080}\n")

    result = run_edge(
        "--control", "http://127.0.0.1:1", "--pop", "fra", "--token", "t", "--config", str(base),
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip

    assert result.returncode == 2
    assert "remove listeners: from base.yaml" in result.stderr
