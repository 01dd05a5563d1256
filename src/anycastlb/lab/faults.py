"""The faults ``lab failover`` injects into a PoP, and how the PoP is brought back."""

import signal

from anycastlb.lab.anycast import EDGE_STOP_TIMEOUT, AnycastLab
from anycastlb.lab.netns import LabError, ip, namespace_exists, namespace_pids, set_link
from anycastlb.lab.processes import ProcessRecord, children_of, kill, running

__all__ = ["cluster_link_up", "drain_edge", "edge_processes", "kill_edge", "restart_edge", "set_cluster_link"]


def _not_running(pop: str) -> LabError:
    return LabError(f"the edge of {pop} is not running: `anycastlb lab up` restores the lab")


def drain_edge(lab: AnycastLab, pop: str) -> None:
    """SIGTERM: the edge withdraws the VIP, waits withdraw_delay, finishes its connections, exits."""
    if not lab.process(f"edge-{pop}").send(signal.SIGTERM):
        raise _not_running(pop)


def kill_edge(lab: AnycastLab, pop: str) -> list[int]:
    """SIGKILL the edge's supervisor and its children (workers, health, announcer) at once, as a
    crash would. ExaBGP, the announcer's child, is left to die by itself (PR_SET_PDEATHSIG)."""
    record = lab.process(f"edge-{pop}")
    if not record.alive():
        raise _not_running(pop)
    victims = [record.pid, *children_of(record.pid)]
    for pid in victims:
        kill(pid)
    return victims


def edge_processes(lab: AnycastLab, pop: str) -> list[int]:
    """Live processes in the PoP's namespace (only the edge and its children run there)."""
    return [pid for pid in namespace_pids(lab.topology.pop_namespace(pop)) if running(pid)]


def restart_edge(lab: AnycastLab, pop: str) -> ProcessRecord:
    """Wait for the old edge to finish (a drain takes a few seconds), clear leftovers, start anew."""
    old = lab.process(f"edge-{pop}")
    if not old.wait_gone(EDGE_STOP_TIMEOUT):
        old.stop(timeout=1.0, signum=signal.SIGKILL)
    for pid in edge_processes(lab, pop):
        kill(pid)
    return lab.start_edge(pop)


def set_cluster_link(lab: AnycastLab, pop: str, *, up: bool) -> None:
    """Cut a PoP off from every node (its cluster-side cable goes down inside it), or plug it back.
    The router and the other PoP see nothing: the switch port on the other side keeps carrier."""
    set_link(lab.topology.pop_namespace(pop), "cluster", up=up)


def set_transit_port(lab: AnycastLab, pop: str, *, up: bool) -> None:
    """The switch port of the PoP's transit cable goes dark (or comes back): the PoP is gone for the
    router without any carrier loss on the router's side, as when a PoP loses power behind a switch.
    Only the hold timer, or BFD, tells the router."""
    set_link(lab.topology.switch, f"{pop}-t", up=up)


def cluster_link_up(lab: AnycastLab, pop: str) -> bool | None:
    """Whether the PoP's cable to the nodes is up; None if its namespace is gone."""
    ns = lab.topology.pop_namespace(pop)
    if not namespace_exists(ns):
        return None
    flags = ip("-n", ns, "-o", "link", "show", "cluster", check=False).stdout
    return ",UP" in flags or "<UP" in flags
