"""New-connection rate limits on a real edge in front of a real nginx.

Clients bind distinct loopback sources (127.0.0.2, 127.0.0.3, ...; 127.0.1.x where a /24 must
not include the readiness probe's 127.0.0.1). Each connection sends a
request at once, so a connection the edge had passed on would show up in nginx's access log: a
refused one must be reset by the edge and never appear there. Windows are long (burst / rate of
tens of seconds) so a slow machine cannot slide them during a test, and attempts are sequential,
so the shared limit is exact (workers deciding at the same instant are the only source of error).
"""

import os
import re
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from anycastlb.lab.nginx import NginxBackend
from tests.integration.conftest import listener
from tests.support.edge import EdgeProcess


def attempt(port: int, source: str) -> str:
    """One connection from ``source``: ``served``, ``reset``, or ``closed`` (a clean end without an answer).

    On loopback the reset can arrive before ``connect()`` returns: that is a reset too."""
    with socket.socket() as sock:
        sock.settimeout(5)
        sock.bind((source, 0))
        answer = b""
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
    return "served" if answer.startswith(b"HTTP/1.1 200") else "closed"


def attempts(port: int, source: str, count: int) -> list[str]:
    return [attempt(port, source) for _ in range(count)]


def requests_from(node: NginxBackend, source: str) -> int:
    return sum(1 for line in node.log_lines() if line.split(" ", 1)[0] == source)


def wait_for_metric(agent: EdgeProcess, name: str, value: float, timeout: float = 5.0, **labels: str) -> None:
    """Workers fold their counters into metrics once a second."""
    deadline = time.monotonic() + timeout
    while (seen := agent.metric(name, **labels)) != value:
        assert time.monotonic() < deadline, f"{name}{labels} stayed {seen}, expected {value}"
        time.sleep(0.1)


def test_a_source_over_its_rate_is_reset_before_any_backend_while_another_source_is_served(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    web = listener(
        "web",
        [("127.0.0.1", node.port)],
        new_connections_per_second_per_source=0.1,
        new_connections_burst_per_source=5,
    )
    agent = edge({"listeners": [web]})

    flood = attempts(web["port"], "127.0.0.2", 20)
    other = attempts(web["port"], "127.0.0.3", 3)

    assert flood == ["served"] * 5 + ["reset"] * 15
    assert other == ["served"] * 3
    assert requests_from(node, "127.0.0.2") == 5, "a refused connection reached nginx"
    wait_for_metric(agent, "anycastlb_connections_rejected_total", 15, listener="web", reason="source_rate")
    assert agent.metric("anycastlb_backend_connections_total", listener="web") == 8


def test_a_replaced_worker_counts_a_source_in_the_same_buckets_as_the_other_worker(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    # Buckets are SipHash under the agent's key: a replacement is forked from the supervisor, so
    # it has the key the tables were made with. With another key its half of the attempts (by
    # source port, SO_REUSEPORT) would look at other buckets and up to 10 would be served.
    node = nginx("node-a")
    web = listener(
        "web",
        [("127.0.0.1", node.port)],
        new_connections_per_second_per_source=0.1,
        new_connections_burst_per_source=5,
    )
    agent = edge({"listeners": [web], "workers": 2})
    first = re.findall(r"pid=(\d+) anycastlb.dataplane listener_open", agent.log())[0]
    os.kill(int(first), signal.SIGKILL)
    agent.wait_for_log("worker_replaced")

    flood = attempts(web["port"], "127.0.0.2", 20)

    assert flood == ["served"] * 5 + ["reset"] * 15
    assert requests_from(node, "127.0.0.2") == 5


def test_the_listener_rate_is_shared_by_all_sources_and_applies_on_reload(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    web = listener("web", [("127.0.0.1", node.port)])
    agent = edge({"listeners": [web]})  # without a limit, so the readiness probe takes no token
    agent.write_config(
        {
            **agent.config,
            "listeners": [{**web, "new_connections_per_second": 0.1, "new_connections_burst": 4}],
        }
    )
    agent.signal(signal.SIGHUP)
    agent.wait_for_log("config_applied", count=2)  # both workers

    outcomes = [attempt(web["port"], f"127.0.0.{host}") for host in range(2, 12)]

    assert outcomes == ["served"] * 4 + ["reset"] * 6
    assert len(node.log_lines()) == 4
    wait_for_metric(agent, "anycastlb_connections_rejected_total", 6, listener="web", reason="listener_rate")


def test_with_a_slash_24_two_addresses_share_one_bucket_and_with_a_slash_32_they_do_not(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    limits: dict[str, Any] = {
        "new_connections_per_second_per_source": 0.1,
        "new_connections_burst_per_source": 3,
    }
    by_24 = listener("by-24", [("127.0.0.1", node.port)], source_prefix_v4=24, **limits)
    by_32 = listener("by-32", [("127.0.0.1", node.port)], **limits)
    agent = edge({"listeners": [by_24, by_32]})

    assert attempts(by_24["port"], "127.0.1.2", 3) == ["served"] * 3
    assert attempts(by_24["port"], "127.0.1.3", 2) == ["reset"] * 2
    assert attempts(by_32["port"], "127.0.1.2", 3) == ["served"] * 3
    assert attempts(by_32["port"], "127.0.1.3", 2) == ["served"] * 2

    assert requests_from(node, "127.0.1.3") == 2
    wait_for_metric(agent, "anycastlb_connections_rejected_total", 2, listener="by-24", reason="source_rate")
    assert agent.metric("anycastlb_connections_rejected_total", listener="by-32") == 0


def test_a_flood_of_refusals_is_logged_in_a_few_lines_and_the_syn_posture_is_reported(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    web = listener(
        "web",
        [("127.0.0.1", node.port)],
        new_connections_per_second_per_source=0.1,
        new_connections_burst_per_source=1,
    )
    agent = edge({"listeners": [web]})

    outcomes = attempts(web["port"], "127.0.0.2", 200)
    agent.wait_for_log("connections_refused listener=web reason=source_rate")

    assert outcomes.count("reset") == 199
    assert agent.log().count("connections_refused") <= 2  # one per worker, whatever the count
    for check in ("syncookies", "somaxconn", "max_syn_backlog"):
        assert f'anycastlb_syn_posture_ok{{check="{check}"}}' in agent.metrics()
