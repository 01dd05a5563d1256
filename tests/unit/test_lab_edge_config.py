"""The lab PoPs' edge.yaml (golden): valid for the edge, fra preferred, short drain."""

import os
from pathlib import Path

import pytest
import yaml

from anycastlb.lab.edge_config import edge_config, edge_yaml
from anycastlb.lab.nodes import LabNode
from anycastlb.lab.topology import Topology
from anycastlb.model.config import parse_config

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("pop", ["fra", "par"])
def test_the_rendered_edge_yaml_matches_the_golden_file(pop: str) -> None:
    rendered = edge_yaml(Topology(), pop)
    golden = GOLDEN / f"lab_edge_{pop}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), "run with UPDATE_GOLDEN=1 after checking the diff"


@pytest.mark.parametrize("pop", ["fra", "par"])
def test_the_edge_accepts_it(pop: str) -> None:
    config = parse_config(yaml.safe_load(edge_yaml(Topology(), pop)))
    listener = config.listeners[0]
    assert (str(listener.address), listener.port, listener.proxy_protocol) == ("198.18.0.10", 80, "v2")
    assert [b.key for b in listener.backends] == ["10.30.0.21:8080", "10.30.0.22:8080", "10.30.0.23:8080"]
    assert listener.health.type == "http"
    assert config.drain_timeout == 5.0
    assert config.bgp is not None and config.bgp.withdraw_delay == 1.0
    peer = config.bgp.peers[0]
    assert (str(peer.address), peer.remote_as, peer.hold_time) == ("10.20.0.1", 65000, 3.0)


def test_par_prepends_twice_so_the_router_prefers_fra() -> None:
    assert edge_config(Topology(), "fra")["bgp"]["as_path_prepend"] == 0
    assert edge_config(Topology(), "par")["bgp"]["as_path_prepend"] == 2


def test_the_nodes_trust_proxy_headers_from_the_cluster_lan_and_name_the_pop(tmp_path: Path) -> None:
    topology = Topology()
    config = LabNode(tmp_path, topology.nodes[0], topology.cluster_subnet).config()
    assert "set_real_ip_from 10.30.0.0/24;" in config
    assert "listen 10.30.0.21:8080 proxy_protocol" in config
    assert 'return 200 "node=node1 client=$remote_addr via=$realip_remote_addr\\n";' in config
