"""lab status: the edge's metrics page read into sessions, announcements and backend health."""

from rich.console import Console

from anycastlb.lab.bird import parse_protocols, parse_routes
from anycastlb.lab.status import (
    EdgeMetrics,
    LabStatus,
    NodeStatus,
    PopStatus,
    parse_edge_metrics,
    render_status,
)
from tests.unit.test_lab_bird import PROTOCOLS, ROUTES

METRICS = """# HELP anycastlb_backend_up 1 while the node gets new connections
# TYPE anycastlb_backend_up gauge
anycastlb_backend_up{backend="10.30.0.21:8080",listener="web"} 1.0
anycastlb_backend_up{backend="10.30.0.22:8080",listener="web"} 0.0
# HELP anycastlb_bgp_session_up 1 while the BGP session with the peer is established
# TYPE anycastlb_bgp_session_up gauge
anycastlb_bgp_session_up{peer="10.20.0.1"} 1.0
# HELP anycastlb_bgp_announced 1 while the PoP announces the VIP prefix
# TYPE anycastlb_bgp_announced gauge
anycastlb_bgp_announced{prefix="198.18.0.10/32"} 0.0
# HELP anycastlb_workers Running data-plane worker processes
# TYPE anycastlb_workers gauge
anycastlb_workers 1.0
"""


def test_the_bgp_and_backend_gauges_are_picked_out() -> None:
    metrics = parse_edge_metrics(METRICS)
    assert metrics.session_up == {"10.20.0.1": True}
    assert metrics.announced == {"198.18.0.10/32": False}
    assert metrics.backend_up == {"web 10.30.0.21:8080": True, "web 10.30.0.22:8080": False}


def test_the_tables_show_each_pop_the_routes_and_the_backends() -> None:
    status = LabStatus(
        name="alb",
        state_dir="/run/anycastlb-lab/alb",
        problem=None,
        vip="198.18.0.10",
        pops=(
            PopStatus("fra", "alb-fra", 101, True, True, parse_edge_metrics(METRICS), "", "up Established"),
            PopStatus("par", "alb-par", None, False, False, None, "edge not running", "start Active"),
        ),
        nodes=(
            NodeStatus("node1", "10.30.0.21", 99, True, True),
            NodeStatus("node2", "10.30.0.22", None, False, False),
        ),
        bird_alive=True,
        protocols=tuple(parse_protocols(PROTOCOLS)),
        routes=tuple(parse_routes(ROUTES)),
        route_text=ROUTES,
        kernel_next_hop="10.20.0.11",
        kernel_pop="fra",
    )
    console = Console(width=200, record=True, color_system=None)
    render_status(status, console)
    text = console.export_text()
    assert "lab alb is up" in text
    assert "up Established (best)" in text and "edge not running" in text
    assert "10.20.0.11 (fra)" in text and "65001 65001" in text
    assert EdgeMetrics().announced == {}
