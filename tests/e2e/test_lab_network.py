"""The netns anycast lab (``anycastlb lab``): a client, a BIRD router, PoPs fra and par, three nodes.

One lab per module, built through the CLI (its processes must outlive the command), under a name of
its own so a developer's ``alb`` lab is never touched. Every test starts from the lab as built:
``up`` is idempotent, so it is called before each one and only repairs what a test left behind.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from anycastlb.lab.anycast import AnycastLab
from anycastlb.lab.failover import FailoverResult, client_requests, run_failover
from anycastlb.lab.netns import (
    ip,
    missing_capability,
    namespace_exists,
    namespace_inode,
    namespace_pids,
    processes_in,
)
from anycastlb.lab.observe import collect_status
from anycastlb.lab.timeline import Attempt, open_across, switched_to
from tests.support.peers import BIRD, EXABGP, NETNS, NGINX, absent, require

# One worker runs these in order (pytest-xdist group "netns", with test_bgp_announce): they share
# the module's lab, and their failover bounds are not shared with another BGP topology of this run.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("netns")]

require(NETNS, BIRD, EXABGP, NGINX)
_missing = missing_capability()
if _missing is not None:
    absent(f"the netns lab cannot run here: {_missing}")

NAME = f"lt{os.getpid() % 100000}"
HOLD_TIME = 3.0


def _cli(lab: AnycastLab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "anycastlb.cli",
            "lab",
            *args,
            "--name",
            NAME,
            "--state-root",
            str(lab.state_root),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def built() -> Iterator[AnycastLab]:
    # A short state root, not tmp_path: an edge's ExaBGP API socket lives 60 characters below it
    # (pops/fra/tmp/anycastlb-run-<pid>-<random>/bgp/api.sock) and an AF_UNIX path ends at 107;
    # under pytest-xdist tmp_path alone (/tmp/pytest-of-root/pytest-N/popen-gwN/...) takes the rest.
    state_root = Path(tempfile.mkdtemp(prefix="alb-labs-", dir="/tmp"))
    lab = AnycastLab(NAME, state_root)
    done = _cli(lab, "up")  # fails by itself if the lab is not ready within AnycastLab.up's 25 s
    try:
        # A failed `lab up` can leave BIRD and namespaces behind: the teardown removes them too.
        assert done.returncode == 0, f"lab up failed:\n{done.stdout}\n{done.stderr}"
        yield lab
    finally:
        lab.down()
        shutil.rmtree(state_root, ignore_errors=True)


@pytest.fixture
def lab(built: AnycastLab) -> AnycastLab:
    built.up()  # a no-op when the lab is as built; repairs what an earlier test broke
    return built


def _edge_log(lab: AnycastLab, pop: str, since: str = "") -> str:
    text = (lab.pop_dir(pop) / "edge.log").read_text(errors="replace")
    return text[text.index(since) :] if since and since in text else text


def _bgp_lines(lab: AnycastLab, pop: str) -> str:
    words = (
        "vip_",
        "bgp_session",
        "drain",
        "child_",
        "helper_",
        "edge_st",
        "backend_down",
        "listener_serving",
    )
    lines = [line for line in _edge_log(lab, pop).splitlines() if any(word in line for word in words)]
    return "\n".join(lines[-25:])


def _describe(lab: AnycastLab, result: FailoverResult, failed: tuple[Attempt, ...]) -> str:
    """Each failed request, timed against the route switch, and what the PoP's edge logged."""
    switch = next((c.at for c in result.routes if c.pop not in (result.pop, None)), None)
    rows = []
    for attempt in failed:
        where = f"{attempt.started - switch:+.4f}s..{attempt.ended - switch:+.4f}s" if switch else "?"
        rows.append(f"  {where} around the route switch, from {attempt.source}: {attempt.error}")
    return "\n".join(rows) + f"\n{result.pop}'s edge log (BGP lines):\n{_bgp_lines(lab, result.pop)}"


def _temp_dirs_of(pids: set[str]) -> set[Path]:
    """/tmp dirs an edge with one of ``pids`` made (``anycastlb-<kind>-<pid>-*``), had it ignored the
    TMPDIR the lab gives it. Only these: other tests' edges (another pytest-xdist worker, another
    run) make and remove theirs in /tmp at any time."""
    return {path for path in Path("/tmp").glob("anycastlb-*-*-*") if path.name.split("-")[2] in pids}


def test_lab_up_builds_the_network_and_the_client_reaches_the_vip_through_fra(lab: AnycastLab) -> None:
    assert lab.kernel_pop() == "fra", "the router must forward the VIP to fra (par prepends its AS twice)"
    attempts = client_requests(lab, 12)
    assert all(a.ok for a in attempts), [a.error for a in attempts if not a.ok]
    assert {a.pop for a in attempts} == {"fra"}
    assert all(a.client_seen == a.source and a.source.startswith("10.10.0.") for a in attempts)
    assert len({a.node for a in attempts}) >= 2, "Maglev spreads the 12 client addresses over the nodes"
    for attempt in attempts:
        log = (lab.dir / "nodes" / f"nginx-{attempt.node}" / "access.log").read_text()
        assert f"{attempt.source} /\n" in log, f"{attempt.node} did not log the client's real address"


def test_status_shows_each_pops_session_announcement_and_backends_and_the_routers_choice(
    lab: AnycastLab,
) -> None:
    status = collect_status(lab)
    assert status.problem is None
    for pop in status.pops:
        assert pop.edge_alive and pop.cluster_link_up and pop.metrics is not None, pop
        assert pop.metrics.session_up == {"10.20.0.1": True}
        assert pop.metrics.announced == {"198.18.0.10/32": True}
        assert len(pop.metrics.backend_up) == 3 and all(pop.metrics.backend_up.values())
        assert pop.router_session == "up Established"
    assert [(r.protocol, r.best, r.via, r.as_path) for r in status.routes] == [
        ("pop_fra", True, "10.20.0.11", "65001"),
        ("pop_par", False, "10.20.0.12", "65001 65001"),
    ]
    assert (status.kernel_next_hop, status.kernel_pop) == ("10.20.0.11", "fra")
    shown = _cli(lab, "status")
    assert shown.returncode == 0 and "Established" in shown.stdout, shown.stdout + shown.stderr


def test_up_twice_is_idempotent(lab: AnycastLab) -> None:
    before = lab.processes()
    inodes = {ns: namespace_inode(ns) for ns in lab.topology.namespaces()}
    again = _cli(lab, "up")
    assert again.returncode == 0 and "already up" in again.stdout, again.stdout + again.stderr
    assert lab.processes() == before
    assert {ns: namespace_inode(ns) for ns in lab.topology.namespaces()} == inodes
    assert lab.problem() is None


def test_draining_fra_moves_traffic_to_par_without_a_failed_connection_and_back(lab: AnycastLab) -> None:
    result = run_failover(lab, "fra", "drain")
    moved, back = result.moved, result.returned
    assert moved.route_after is not None and moved.route_after < 1.0, f"route moved after {moved.route_after}"
    assert moved.answered_by.get("par", 0) > 0
    # Every connection started after the drain request, and every one that was not open at the very
    # moment the router switched, must succeed. A connection open at that moment (mid-handshake or
    # mid-request) has its next packets routed to par, which resets it: plain anycast's limit, which
    # docs/bgp.md names and bench/anycast_failover.py measures.
    switch = switched_to(result.routes, "par")
    assert switch is not None
    cut_by_the_switch = open_across(result.attempts, switch)
    unexplained = tuple(attempt for attempt in moved.failed if attempt not in cut_by_the_switch)
    assert unexplained == (), f"{len(unexplained)} failed connections:\n{_describe(lab, result, unexplained)}"
    assert back is not None and back.route_after is not None, "traffic never returned to fra"
    assert client_requests(lab, 5)[-1].pop == "fra"


def test_a_killed_fra_moves_traffic_within_the_hold_time_plus_one_second_and_back(lab: AnycastLab) -> None:
    result = run_failover(lab, "fra", "kill")
    moved, back = result.moved, result.returned
    assert moved.route_after is not None and moved.route_after < HOLD_TIME + 1, _describe(
        lab, result, moved.failed
    )
    assert moved.traffic_after is not None and moved.traffic_after < HOLD_TIME + 1
    assert result.survivors == (), "a process outlived the killed edge (ExaBGP must die by PR_SET_PDEATHSIG)"
    assert back is not None and back.route_after is not None, "traffic never returned to fra"


def test_a_silently_dead_fra_is_left_by_the_router_within_bfds_300_ms(lab: AnycastLab) -> None:
    result = run_failover(lab, "fra", "silent")
    moved, back = result.moved, result.returned
    # BFD 3 x 100 ms; bench/anycast_failover.py gives the distribution (target 350 ms).
    assert moved.route_after is not None and moved.route_after < 0.6, _describe(lab, result, moved.failed)
    assert moved.answered_by.get("par", 0) > 0
    assert back is not None and back.route_after is not None, "traffic never returned to fra"


def test_fra_cut_off_from_its_nodes_withdraws_and_announces_again_once_reconnected(lab: AnycastLab) -> None:
    marker = f"cut-{time.time()}"
    with (lab.pop_dir("fra") / "edge.log").open("a") as log:
        log.write(f"{marker}\n")
    result = run_failover(lab, "fra", "cut")
    moved, back = result.moved, result.returned
    assert moved.route_after is not None and moved.route_after < 2.0, (
        f"fra never withdrew:\n{_bgp_lines(lab, 'fra')}"
    )
    after_cut = _edge_log(lab, "fra", since=marker)
    assert "vip_withdrawn prefix=198.18.0.10/32" in after_cut
    assert moved.answered_by.get("par", 0) > 0
    assert back is not None and back.route_after is not None, "traffic never returned to fra"
    assert "vip_announced prefix=198.18.0.10/32" in after_cut.split("vip_withdrawn", 1)[1]


def test_up_after_a_crash_cleans_the_leftovers_first(lab: AnycastLab) -> None:
    old = lab.processes()
    # A leftover no fresh lab has: the namespace must be rebuilt, not reused.
    ip("-n", lab.topology.client, "link", "add", "leftover", "type", "bridge")
    for ns in lab.topology.namespaces():  # the box crashed: every lab process died at once ...
        for pid in namespace_pids(ns):
            os.kill(pid, signal.SIGKILL)
    (lab.dir / "state.json").unlink()  # ... before the state was written
    again = _cli(lab, "up")
    assert again.returncode == 0 and "is up after" in again.stdout, again.stdout + again.stderr
    assert not any(record.alive() for record in old.values())
    assert "leftover" not in ip("-n", lab.topology.client, "-o", "link").stdout
    assert lab.problem() is None
    assert {a.pop for a in client_requests(lab, 3)} == {"fra"}


def test_down_leaves_no_namespace_veth_process_or_directory_behind(lab: AnycastLab) -> None:
    records = lab.processes()
    inodes = {inode for ns in lab.topology.namespaces() if (inode := namespace_inode(ns)) is not None}
    lab_pids = {str(record.pid) for record in records.values()}
    gone = _cli(lab, "down")
    assert gone.returncode == 0 and "removed" in gone.stdout, gone.stdout + gone.stderr
    assert not any(namespace_exists(ns) for ns in lab.topology.namespaces())
    assert not any(record.alive() for record in records.values())
    assert processes_in(inodes) == [], "a process still holds a deleted lab namespace (and its veths)"
    assert not lab.dir.exists()
    assert not _temp_dirs_of(lab_pids), "the edges left temp dirs in /tmp"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert not any(name in links for name in ("br-transit", "br-cluster", "fra-t", "par-c", "uplink"))
    assert "nothing to remove" in _cli(lab, "down").stdout
