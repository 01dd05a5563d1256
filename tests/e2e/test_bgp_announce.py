"""The edge's BGP speaker against a real router (BIRD) across network namespaces.

Announce what the PoP can serve, withdraw what it cannot, withdraw before draining, and take the
routes along when the agent dies, loudly (SIGKILL) or silently (its switch port goes dark, BFD).
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bgp_pair import POP_IP6, VIP, VIP6, BgpPair, ip, netns_usable
from tests.support.peers import BIRD, EXABGP, NETNS, NGINX, absent, require

# One test at a time, on one pytest-xdist worker (group "netns", with the lab's tests): the timing
# bounds (withdrawal, BFD, hold time) are not shared with another BGP topology of this run.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("netns")]

require(NETNS, BIRD, EXABGP, NGINX)
_missing = netns_usable()
if _missing is not None:
    absent(f"network namespaces unavailable: {_missing}")


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BgpPair]:
    marker = request.node.get_closest_marker("bfd")
    topology = BgpPair(tmp_path, f"t{os.getpid()}", bfd=marker is not None).build()
    try:
        yield topology
    finally:
        topology.destroy()


def _started(pair: BgpPair, **bgp: object) -> BgpPair:
    pair.start_router()
    pair.start_node()
    pair.start_edge(pair.edge_config(**bgp))
    pair.wait_route(present=True, timeout=15)
    return pair


def _edge_pids(pair: BgpPair) -> list[int]:
    pids = []
    for pid in ip("netns", "pids", pair.pop).stdout.split():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # it exited since the listing
            if b"anycastlb" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(int(pid))
    return pids


def _bfd_sessions(pair: BgpPair) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", pair.router, "birdc", "-s", str(pair.bird_socket), "show", "bfd", "sessions"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def test_a_pop_withdraws_its_vip_when_its_last_backend_dies_and_announces_it_again(pair: BgpPair) -> None:
    _started(pair)
    subprocess.run(["pkill", "-f", f"nginx -c {pair.dir}/nginx.conf"], check=True)
    gone_after = pair.wait_route(present=False, timeout=5)
    # A refused probe fails at once: down after fall (2) intervals of 100 ms (edge_config), then the
    # withdrawal reaches the router's kernel table; 1 s of room for a loaded machine. Not a speed
    # target: bench/anycast_failover.py measures it.
    assert gone_after < 2 * 0.1 + 1.0, f"withdrawal took {gone_after:.3f}s"
    assert "vip_withdrawn prefix=198.18.0.10/32" in pair.log()
    pair.start_node()
    pair.wait_route(present=True, timeout=5)
    assert pair.log().count("vip_announced prefix=198.18.0.10/32") == 2


def test_drain_withdraws_first_keeps_serving_during_the_delay_then_exits(pair: BgpPair) -> None:
    _started(pair)
    assert pair.edge is not None
    pair.edge.send_signal(signal.SIGTERM)
    pair.wait_route(present=False, timeout=1)
    answer = subprocess.run(
        ["ip", "netns", "exec", pair.pop, "curl", "-s", "-m", "1", f"http://{VIP}/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.stdout == "ok\n", "the listener must keep serving until withdraw_delay has passed"
    assert pair.edge.wait(timeout=15) == 0
    log = pair.log()
    assert log.index("vip_withdrawn") < log.index("drain_connections") < log.index("edge_stopped")


def test_a_killed_agent_takes_its_speaker_and_its_routes_with_it(pair: BgpPair) -> None:
    _started(pair)
    for pid in _edge_pids(pair):
        os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    pair.wait_route(present=False, timeout=5)
    # The kernel closes the session when ExaBGP dies: no wait for the hold timer, which would expire
    # between hold_time - keepalive (1 s) and hold_time after the kill.
    assert time.monotonic() - started < pair.hold_time - 1
    deadline = time.monotonic() + 5  # ExaBGP and the bridge die by PR_SET_PDEATHSIG: soon, not at once
    while (left := _edge_pids(pair)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], "a speaker (ExaBGP, bridge) outlived its agent"


def test_an_unreachable_router_is_retried_until_it_comes(pair: BgpPair) -> None:
    pair.start_node()
    pair.start_edge(pair.edge_config())
    time.sleep(3)  # the behaviour under test: no router for a while (nothing to poll: ExaBGP logs no attempt)
    assert pair.edge is not None and pair.edge.poll() is None, pair.log()
    assert "bgp_session peer=10.99.0.1 state=up" not in pair.log()
    pair.start_router()
    pair.wait_route(present=True, timeout=15)


def test_without_bfd_a_silent_pop_death_costs_the_hold_time(pair: BgpPair) -> None:
    _started(pair)
    pair.cut_pop_silently()
    gone_after = pair.wait_route(present=False, timeout=6)
    assert 1.0 < gone_after < pair.hold_time + 1.0


@pytest.mark.bfd
def test_with_bfd_a_silent_pop_death_moves_traffic_within_350_ms(pair: BgpPair) -> None:
    _started(pair)
    deadline = time.monotonic() + 10  # BFD comes up after the BGP session
    while "Up" not in (sessions := _bfd_sessions(pair)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Up" in sessions, f"BFD session not up:\n{sessions}\n{pair.log()[-2000:]}"
    pair.cut_pop_silently()
    gone_after = pair.wait_route(present=False, timeout=3)
    assert gone_after < 0.6, f"{gone_after:.3f}s"  # 3 x 100 ms; bench/anycast_failover.py has the figures


def test_an_ipv6_vip_is_announced_as_a_128_with_its_ipv6_next_hop(pair: BgpPair) -> None:
    pair.start_router()
    pair.start_node()
    config = pair.edge_config(next_hop_v6=POP_IP6)
    config["listeners"].append(
        {
            "name": "web6",
            "address": VIP6,
            "port": 80,
            "backends": [{"address": "127.0.0.1", "port": 8081}],
            "health": {"type": "http", "path": "/", "interval": "100ms", "timeout": "100ms"},
        }
    )
    pair.start_edge(config)
    pair.wait_route(present=True, timeout=15, vip=VIP6)
    route = ip("-n", pair.router, "-6", "route", "show", VIP6).stdout
    assert f"via {POP_IP6}" in route, route
    assert "vip_announced prefix=2001:db8::10/128" in pair.log()
