"""Gathering ``lab status``: each edge's metrics, BIRD's view, the router's kernel, the nodes."""

import sys

from anycastlb.lab.anycast import AnycastLab
from anycastlb.lab.bird import BirdProtocol, BirdRoute, bgp_protocol_name, parse_protocols, parse_routes
from anycastlb.lab.faults import cluster_link_up
from anycastlb.lab.netns import LabError, run_inside
from anycastlb.lab.processes import ProcessRecord
from anycastlb.lab.status import LabStatus, NodeStatus, PopStatus, parse_edge_metrics
from anycastlb.lab.topology import METRICS_PORT, NODE_PORT, Pop

__all__ = ["collect_status", "edge_metrics_text"]

_FETCH = (
    "import sys, urllib.request;"
    " sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())"
)


def edge_metrics_text(lab: AnycastLab, pop: str) -> str:
    """The PoP's ``/metrics`` page, fetched from inside its namespace (the edge binds its loopback)."""
    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    return run_inside(lab.topology.pop_namespace(pop), [sys.executable, "-c", _FETCH, url], timeout=5).stdout


def _router_view(lab: AnycastLab) -> tuple[list[BirdProtocol], list[BirdRoute], str]:
    try:
        protocols = parse_protocols(lab.birdc("show", "protocols"))
        route_text = lab.birdc("show", "route", f"{lab.topology.vip}/32", "all")
    except LabError as error:
        return [], [], str(error)
    return protocols, parse_routes(route_text), route_text


def _pop_status(
    lab: AnycastLab, pop: Pop, edge: ProcessRecord | None, session: BirdProtocol | None
) -> PopStatus:
    alive = edge is not None and edge.alive()
    metrics, error = None, "edge not running"
    if alive:
        try:
            metrics, error = parse_edge_metrics(edge_metrics_text(lab, pop.name)), ""
        except (LabError, ValueError) as failure:
            error = f"metrics unreadable: {str(failure).splitlines()[0][:80]}"
    return PopStatus(
        pop.name,
        lab.topology.pop_namespace(pop.name),
        edge.pid if edge else None,
        alive,
        cluster_link_up(lab, pop.name),
        metrics,
        error,
        f"{session.state} {session.info}".strip() if session else "-",
    )


def collect_status(lab: AnycastLab) -> LabStatus:
    processes = lab.processes()
    if not processes:
        raise LabError(
            f"lab {lab.topology.name} is not up (no state in {lab.dir}): `anycastlb lab up` builds it"
        )
    bird = processes.get("bird")
    bird_alive = bird is not None and bird.alive()
    protocols, routes, route_text = _router_view(lab) if bird_alive else ([], [], "BIRD is not running")
    sessions = {p.name: p for p in protocols}
    pops = tuple(
        _pop_status(lab, pop, processes.get(f"edge-{pop.name}"), sessions.get(bgp_protocol_name(pop.name)))
        for pop in lab.topology.pops
    )
    nodes = []
    for node in lab.topology.nodes:
        record = processes.get(node.name)
        alive = record is not None and record.alive()
        listening = alive and lab.listening(record, node.address, NODE_PORT)
        nodes.append(NodeStatus(node.name, node.address, record.pid if record else None, alive, listening))
    hop = lab.kernel_next_hop() if bird_alive else None
    return LabStatus(
        name=lab.topology.name,
        state_dir=str(lab.dir),
        problem=lab.problem(),
        vip=lab.topology.vip,
        pops=pops,
        nodes=tuple(nodes),
        bird_alive=bird_alive,
        protocols=tuple(protocols),
        routes=tuple(routes),
        route_text=route_text,
        kernel_next_hop=hop,
        kernel_pop=None if hop is None else lab.topology.pop_by_transit_address(hop),
    )
