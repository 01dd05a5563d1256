"""Health checking against real nginx nodes: kill, hang, close, flap; passive ejection; k8s weights.

Every fault runs under a client loop of new connections from 100 source addresses. "New" matters:
a request a node had already accepted when it was SIGKILLed is lost by any load balancer; what
must never fail is a connection started after the fault, which the edge retries on the next Maglev
candidate while it ejects the node.
"""

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from anycastlb.lab.nginx import NginxBackend
from tests.integration.conftest import listener
from tests.support.client_loop import ClientLoop
from tests.support.edge import EdgeProcess
from tests.support.kube_health import KubeProxyHealth

pytestmark = pytest.mark.integration

FAST = {"type": "http", "path": "/", "interval": "100ms", "timeout": "100ms", "rise": 2, "fall": 2}


def _start(
    nginx: Callable[..., NginxBackend],
    edge: Callable[..., EdgeProcess],
    health: dict[str, Any],
    count: int = 3,
) -> tuple[list[NginxBackend], EdgeProcess, int]:
    nodes = [nginx(f"n{i}") for i in range(count)]
    config = listener("web", [("127.0.0.1", node.port) for node in nodes], health=health)
    process = edge({"listeners": [config], "workers": 2})
    return nodes, process, config["port"]


def _key(node: NginxBackend) -> str:
    return f"127.0.0.1:{node.port}"


def _events(process: EdgeProcess, event: str, node: NginxBackend) -> int:
    return len(re.findall(rf"{event} listener=web backend={re.escape(_key(node))} ", process.log()))


def test_killed_node_is_ejected_and_no_new_connection_fails(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    nodes, process, port = _start(nginx, edge, FAST)
    victim = nodes[1]
    with ClientLoop(port) as clients:
        clients.wait_for(200)
        assert {node.name for node in nodes} <= clients.nodes_after(0)
        killed_at = time.monotonic()
        victim.signal(signal.SIGKILL)
        process.wait_for_log(f"backend_down listener=web backend={_key(victim)}", timeout=5)
        clients.wait_for(300)
    assert clients.failures(started_after=killed_at) == []
    assert victim.name not in clients.nodes_after(killed_at + 0.05)
    assert process.metric("anycastlb_backend_up", backend=_key(victim)) == 0
    assert process.metric("anycastlb_health_transitions_total", backend=_key(victim), to="down") == 1


def test_recovered_node_comes_back_after_rise_checks(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    nodes, process, port = _start(nginx, edge, FAST)
    victim = nodes[0]
    victim.signal(signal.SIGKILL)
    process.wait_for_log(f"backend_down listener=web backend={_key(victim)}", timeout=5)
    victim.stop()
    victim.start()
    process.wait_for_log(f"backend_up listener=web backend={_key(victim)}", timeout=5)
    assert "(2 in a row)" in process.log().split(f"backend_up listener=web backend={_key(victim)}")[1]
    back_at = time.monotonic()
    with ClientLoop(port) as clients:
        clients.wait_for(200)
    assert victim.name in clients.nodes_after(back_at)
    assert clients.failures() == []


def test_hung_node_fails_only_requests_sent_before_its_ejection(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    nodes, process, port = _start(nginx, edge, FAST)
    victim = nodes[2]
    with ClientLoop(port, timeout=1.0, every=0.004) as clients:
        clients.wait_for(100)
        stopped_at = time.monotonic()
        victim.signal(signal.SIGSTOP)  # the kernel still completes handshakes: only a timeout tells
        try:
            process.wait_for_log(f"backend_down listener=web backend={_key(victim)}", timeout=5)
            clients.wait_for(300)
        finally:
            victim.signal(signal.SIGCONT)
    failed = clients.failures(started_after=stopped_at)
    assert failed, "requests to a hung node must time out (else the test did not hang it)"
    window = max(a.started for a in failed) - stopped_at
    # At most one interval until the next probe, then late_after (<= timeout / 2) until a second one
    # starts beside the hung first, and that one's timeout (fall 2): HealthState's ejection bound.
    # bench/failover.py measures the distribution; 0.5 s leaves room for a loaded machine.
    interval, timeout = 0.1, 0.1  # FAST
    ejection = interval + timeout / 2 + timeout
    assert window < ejection + 0.5, f"requests kept going to the hung node for {window * 1000:.0f} ms"
    assert all(a.error.startswith("TimeoutError") for a in failed), failed[:3]
    assert clients.failures(started_after=stopped_at + window + 0.001) == []
    assert "timeout after 100 ms" in process.log()


def test_node_whose_port_closes_is_ejected_with_no_failures(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    nodes, process, port = _start(nginx, edge, FAST)
    victim = nodes[1]
    with ClientLoop(port) as clients:
        clients.wait_for(200)
        closed_at = time.monotonic()
        victim.signal(signal.SIGQUIT)  # graceful: nginx closes its listening socket and exits
        process.wait_for_log(f"backend_down listener=web backend={_key(victim)}", timeout=5)
        assert victim.process is not None
        victim.process.wait(timeout=10)  # until then it may still answer what it had accepted
        gone_at = time.monotonic()
        clients.wait_for(300)
    assert clients.failures(started_after=closed_at) == []
    assert victim.name not in clients.nodes_after(gone_at)


def test_flapping_node_loses_no_connection_and_flaps_exactly_as_often_as_it_is_cut(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    nodes, process, port = _start(nginx, edge, FAST)
    victim = nodes[0]
    down, up = (f"backend_{kind} listener=web backend={_key(victim)} " for kind in ("down", "up"))
    cuts = 4
    with ClientLoop(port) as clients:
        clients.wait_for(100)
        first_cut = time.monotonic()
        for cut in range(1, cuts + 1):
            victim.signal(signal.SIGKILL)
            victim.stop()
            process.wait_for_log(down, count=cut, timeout=5)  # each cut is seen...
            victim.start()
            process.wait_for_log(up, count=cut, timeout=5)  # ...and each recovery
        back_at = time.monotonic()
        clients.wait_for(200)
    # Connections started after a cut are retried; only requests in flight at a SIGKILL may be lost.
    in_flight = [a for a in clients.failures(started_after=first_cut) if a.ended - a.started < 0.5]
    assert len(clients.failures(started_after=first_cut)) <= len(in_flight) <= cuts
    # One down and one up per cut: none missed, none extra (a flap the cut did not cause).
    assert (_events(process, "backend_down", victim), _events(process, "backend_up", victim)) == (cuts, cuts)
    assert process.metric("anycastlb_health_transitions_total", backend=_key(victim), to="up") == cuts
    assert victim.name in clients.nodes_after(back_at)  # and it serves again after the last one


def test_first_failed_client_connect_ejects_before_any_probe(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    passive_only = {"type": "none"}  # no probe can eject it first
    nodes, process, port = _start(nginx, edge, passive_only)
    victim = nodes[2]
    process.wait_for_log("health_started")  # the process that takes the workers' passive reports
    victim.signal(signal.SIGKILL)
    victim.stop()
    with ClientLoop(port) as clients:
        clients.wait_for(300)
    assert clients.failures() == []
    process.wait_for_log(f"backend_down listener=web backend={_key(victim)}", timeout=2)
    assert "reason='client connect refused'" in process.log()
    # Each worker retried at most once on its own failed connect (local ejection), then never again.
    assert process.metric("anycastlb_connect_retries_total", listener="web") <= 2


def test_listener_stops_serving_when_every_node_is_down_and_still_fails_open(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    nodes, process, port = _start(nginx, edge, FAST, count=2)
    for node in nodes:
        node.signal(signal.SIGKILL)
        node.stop()
    process.wait_for_log("listener_serving listener=web serving=false", timeout=5)
    assert process.metric("anycastlb_listener_serving", listener="web") == 0
    nodes[0].start()  # the checks still say down (rise 2), but failing open tries every node
    attempt = ClientLoop(port).request("127.0.0.9")
    assert attempt.node == nodes[0].name, attempt
    process.wait_for_log("listener_serving listener=web serving=true", timeout=5)


def test_health_process_is_replaced_and_workers_keep_serving(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    _, process, port = _start(nginx, edge, FAST)
    match = re.search(r"pid=(\d+) anycastlb.health health_started", process.log())
    assert match, process.log()
    os.kill(int(match.group(1)), signal.SIGKILL)
    with ClientLoop(port) as clients:
        process.wait_for_log("helper_died helper=health", timeout=5)
        process.wait_for_log("health_started", count=2, timeout=5)
        clients.wait_for(100)
    assert clients.failures() == []
    assert process.metric("anycastlb_helper_respawns_total", helper="health") == 1


def test_k8s_check_splits_traffic_per_local_endpoint_not_per_node(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    # Two "nodes" on their own loopback addresses, same NodePort and same healthCheckNodePort, as in
    # a cluster; each runs a kube-proxy-like /healthz that reports its local endpoints.
    first = nginx("a", address="127.0.0.2")
    second = nginx("b", address="127.0.0.3", port=first.port)
    kube_a = KubeProxyHealth("127.0.0.2", endpoints=4)
    kube_b = KubeProxyHealth("127.0.0.3", endpoints=1, port=kube_a.port)
    with kube_a, kube_b:
        health = {"type": "k8s", "port": kube_a.port, "interval": "100ms", "timeout": "100ms"}
        config = listener("web", [("127.0.0.2", first.port), ("127.0.0.3", first.port)], health=health)
        process = edge({"listeners": [config], "workers": 2})
        process.wait_for_log("backend_weight listener=web backend=127.0.0.2", timeout=5)
        clients = ClientLoop(config["port"], sources=250)
        shares = Counter(clients.request(source).node for source in clients.sources * 2)
        assert shares[None] == 0, shares
        assert 0.72 <= shares["a"] / 500 <= 0.88, shares  # 4 : 1 -> 80 %
        assert process.metric("anycastlb_backend_weight", backend=f"127.0.0.2:{first.port}") == 4

        kube_b.endpoints = 0  # the last pod on node b went away: kube-proxy answers 503
        process.wait_for_log("backend_down listener=web backend=127.0.0.3", timeout=5)
        assert "no local endpoints" in process.log()
        assert {clients.request(source).node for source in clients.sources[:50]} == {"a"}
        del second
