"""``anycastlb lab status``: what each PoP, the router and the nodes say, as data and as tables.

The data comes from the places an operator would look: each edge's Prometheus endpoint (session,
announced VIPs, backend health), BIRD's ``show protocols`` and ``show route ... all`` (what the
router learnt and chose), and the router's kernel table (where packets really go).
"""

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from anycastlb.lab.bird import BirdProtocol, BirdRoute
from anycastlb.lab.wide import print_whole

__all__ = ["EdgeMetrics", "LabStatus", "NodeStatus", "PopStatus", "parse_edge_metrics", "render_status"]


@dataclass(frozen=True)
class EdgeMetrics:
    session_up: dict[str, bool] = field(default_factory=dict)  # peer -> established
    announced: dict[str, bool] = field(default_factory=dict)  # prefix -> announced
    backend_up: dict[str, bool] = field(default_factory=dict)  # "listener backend" -> up


def parse_edge_metrics(text: str) -> EdgeMetrics:
    """Pick the BGP and backend gauges out of an edge's ``/metrics`` page."""
    metrics = EdgeMetrics()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, up = sample.labels, sample.value >= 1
            if sample.name == "anycastlb_bgp_session_up":
                metrics.session_up[labels["peer"]] = up
            elif sample.name == "anycastlb_bgp_announced":
                metrics.announced[labels["prefix"]] = up
            elif sample.name == "anycastlb_backend_up":
                metrics.backend_up[f"{labels['listener']} {labels['backend']}"] = up
    return metrics


@dataclass(frozen=True)
class PopStatus:
    name: str
    namespace: str
    edge_pid: int | None
    edge_alive: bool
    cluster_link_up: bool | None  # None: the namespace is gone
    metrics: EdgeMetrics | None
    metrics_error: str = ""
    router_session: str = "-"  # BIRD's view: "up Established", "start Active", ...


@dataclass(frozen=True)
class NodeStatus:
    name: str
    address: str
    pid: int | None
    alive: bool
    listening: bool


@dataclass(frozen=True)
class LabStatus:
    name: str
    state_dir: str
    problem: str | None  # None: the lab is up as built; else the first thing that is not
    vip: str
    pops: tuple[PopStatus, ...]
    nodes: tuple[NodeStatus, ...]
    bird_alive: bool
    protocols: tuple[BirdProtocol, ...]
    routes: tuple[BirdRoute, ...]
    route_text: str
    kernel_next_hop: str | None  # the router's forwarding choice for the VIP (address)
    kernel_pop: str | None


def _yes(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    if value is None:
        return "[dim]-[/]"
    return f"[green]{yes}[/]" if value else f"[red]{no}[/]"


def _pop_table(status: LabStatus) -> Table:
    table = Table(title=f"PoPs (VIP {status.vip})")
    for column in ("PoP", "edge pid", "alive", "cluster link", "BGP session", "announced", "router sees"):
        table.add_column(column)
    for pop in status.pops:
        metrics = pop.metrics
        if metrics is None:
            session = announced = f"[red]{pop.metrics_error or 'no metrics'}[/]"
        else:
            session = (
                ", ".join(f"{peer} {_yes(up, 'up', 'down')}" for peer, up in metrics.session_up.items())
                or "-"
            )
            announced = (
                ", ".join(f"{prefix} {_yes(up)}" for prefix, up in metrics.announced.items()) or "nothing"
            )
        best = " (best)" if pop.name == status.kernel_pop else ""
        table.add_row(
            pop.name,
            str(pop.edge_pid or "-"),
            _yes(pop.edge_alive),
            _yes(pop.cluster_link_up, "up", "down"),
            session,
            announced,
            pop.router_session + best,
        )
    return table


def _backend_table(status: LabStatus) -> Table:
    table = Table(title="Backends (as each PoP's health checks see them)")
    table.add_column("node")
    table.add_column("nginx")
    for pop in status.pops:
        table.add_column(f"up at {pop.name}")
    for node in status.nodes:
        cells = [node.name, _yes(node.alive and node.listening, f"pid {node.pid}", "down")]
        for pop in status.pops:
            if pop.metrics is None:
                cells.append("[dim]?[/]")
                continue
            found = [
                up
                for key, up in pop.metrics.backend_up.items()
                if key.split(" ")[1].startswith(node.address + ":")
            ]
            cells.append(_yes(found[0] if found else None))
        table.add_row(*cells)
    return table


def _router_table(status: LabStatus) -> Table:
    table = Table(title=f"Router (BIRD {'running' if status.bird_alive else 'NOT running'})")
    for column in ("protocol", "type", "state", "since", "info"):
        table.add_column(column)
    for protocol in status.protocols:
        table.add_row(protocol.name, protocol.protocol, protocol.state, protocol.since, protocol.info)
    return table


def _route_table(status: LabStatus) -> Table:
    hop = f"{status.kernel_next_hop} ({status.kernel_pop})" if status.kernel_next_hop else "[red]none[/]"
    table = Table(title=f"Routes to {status.vip}/32 (kernel forwards via {hop})")
    for column in ("from", "best", "via", "AS path"):
        table.add_column(column)
    for route in status.routes:
        table.add_row(route.protocol, _yes(route.best, "*", ""), route.via or "-", route.as_path)
    return table


def render_status(status: LabStatus, console: Console) -> None:
    headline = (
        f"[green]lab {status.name} is up[/]"
        if status.problem is None
        else f"[yellow]lab {status.name} is not fully up: {status.problem}[/]"
    )
    print_whole(console, Panel(Group(headline, f"state: {status.state_dir}"), expand=False))
    for table in (_pop_table(status), _router_table(status), _route_table(status), _backend_table(status)):
        print_whole(console, table)
