"""The edge with only the capabilities its systemd unit grants, against a real router (BIRD).

deploy/systemd/anycastlb-edge.service runs the edge as a dynamic user whose only capabilities are
its AmbientCapabilities=. Here the edge runs as uid 0 made ordinary: the ``noroot`` securebits (an
exec gains no capability for being root), no_new_privs, and the unit's capabilities as ambient
ones, so the kernel allows it exactly what it would allow the unit. That proves the capabilities
(not the user switch or the other sandboxing, which need systemd). A capability this machine cannot
grant (absent from its own bounding set: a container's may lack CAP_SYS_RESOURCE) is left out
and named in the test's output; without it the splice pipes are smaller, nothing else changes.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bgp_pair import VIP, BgpPair, netns_usable
from tests.support.peers import BIRD, EXABGP, NETNS, NGINX, absent, require
from tests.support.systemd_units import load, words

# One test at a time, on one pytest-xdist worker (group "netns", with the other e2e tests): the BFD
# and route timing bounds are not shared with another BGP topology of this run.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.bfd, pytest.mark.xdist_group("netns")]

require(NETNS, BIRD, EXABGP, NGINX)
_missing = netns_usable() or (None if shutil.which("setpriv") else "needs setpriv (util-linux)")
if _missing is not None:
    absent(f"network namespaces unavailable: {_missing}")

_BITS = {"CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_SYS_RESOURCE": 24}


def _granted() -> tuple[set[str], set[str]]:
    """The unit's capabilities this machine can grant, and those it cannot."""
    wanted = words(load("anycastlb-edge.service"), "AmbientCapabilities")
    unknown = wanted - _BITS.keys()
    assert not unknown, f"teach this test the bit numbers of {unknown}"
    status = Path("/proc/self/status").read_text()
    bounding = int(re.search(r"^CapBnd:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)  # type: ignore[union-attr]
    grantable = {cap for cap in wanted if bounding >> _BITS[cap] & 1}
    return grantable, wanted - grantable


def _as_the_unit(capabilities: set[str]) -> list[str]:
    names = "".join(f",+{cap.removeprefix('CAP_').lower()}" for cap in sorted(capabilities))
    caps = f"-all{names}"
    return [
        "setpriv",
        "--no-new-privs",
        "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked,+keep_caps_locked",
        f"--inh-caps={caps}",
        f"--ambient-caps={caps}",
        f"--bounding-set={caps}",
    ]


def _supervisor_status(pair: BgpPair) -> str:
    assert pair.edge is not None
    # ip netns exec → setpriv → python: the same process, exec'd twice
    return Path(f"/proc/{pair.edge.pid}/status").read_text()


def _bfd_sessions(pair: BgpPair) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", pair.router, "birdc", "-s", str(pair.bird_socket), "show", "bfd", "sessions"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def _bfd_up_within(pair: BgpPair, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if re.search(r"\sUp\s", _bfd_sessions(pair)):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def runtime() -> Iterator[Path]:
    """The unit's RuntimeDirectory, where its TMPDIR points: a short path like /run/anycastlb-edge
    (ExaBGP's API socket lives below it, and a Unix socket path has at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="alb-cap-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[BgpPair]:
    topology = BgpPair(tmp_path, f"c{os.getpid()}", bfd=True).build()
    try:
        topology.start_router()
        topology.start_node()
        yield topology
    finally:
        topology.destroy()


def _start(pair: BgpPair, runtime: Path, capabilities: set[str]) -> None:
    pair.start_edge(pair.edge_config(), wrapper=_as_the_unit(capabilities), env={"TMPDIR": str(runtime)})


def test_the_units_capabilities_serve_a_privileged_port_announce_run_bfd_and_drain(
    pair: BgpPair, runtime: Path
) -> None:
    capabilities, missing = _granted()
    print(f"granted {sorted(capabilities)}; this machine cannot grant {sorted(missing) or 'none'}")
    _start(pair, runtime, capabilities)
    pair.wait_route(present=True, timeout=20)
    status = _supervisor_status(pair)
    effective = int(re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)  # type: ignore[union-attr]
    assert effective == sum(1 << _BITS[cap] for cap in capabilities), status
    assert re.search(r"^NoNewPrivs:\s*1$", status, re.MULTILINE), status

    answer = subprocess.run(  # the router's side: through the announced route to the VIP's port 80
        ["ip", "netns", "exec", pair.router, "curl", "-s", "-m", "2", f"http://{VIP}/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.stdout == "ok\n", f"{answer}\n{pair.log()[-2000:]}"
    assert _bfd_up_within(pair, 5), f"BFD not up:\n{_bfd_sessions(pair)}\n{pair.log()[-2000:]}"

    assert pair.edge is not None
    pair.edge.send_signal(signal.SIGTERM)
    pair.wait_route(present=False, timeout=2)
    assert pair.edge.wait(timeout=15) == 0, pair.log()[-2000:]


def test_without_cap_net_admin_bfd_never_comes_up(pair: BgpPair, runtime: Path) -> None:
    """Why the unit grants CAP_NET_ADMIN: BIRD's BFD sockets set SO_PRIORITY 7. Nothing in the
    edge's log says so (BIRD reports it to syslog); the router sees the session stay down."""
    capabilities, _ = _granted()
    _start(pair, runtime, capabilities - {"CAP_NET_ADMIN"})
    pair.wait_route(present=True, timeout=20)
    assert not _bfd_up_within(pair, 3), _bfd_sessions(pair)


def test_without_cap_net_bind_service_a_listener_on_port_80_fails_to_start(
    pair: BgpPair, runtime: Path
) -> None:
    capabilities, _ = _granted()
    _start(pair, runtime, capabilities - {"CAP_NET_BIND_SERVICE"})
    assert pair.edge is not None
    assert pair.edge.wait(timeout=20) != 0
    assert "cannot listen on 198.18.0.10 port 80: Permission denied" in pair.log()
