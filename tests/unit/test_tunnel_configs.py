"""What a PoP and a node receive for a cluster (control/tunnels/configs.py, served.py)."""

import ipaddress
from datetime import UTC, datetime, timedelta

from anycastlb.control.tunnels.configs import ClusterTunnel, PopSide, node_config, pop_interface
from anycastlb.control.tunnels.keys import new_keypair
from anycastlb.control.tunnels.rotation import NodeKey, NodeKeyState, rotate
from anycastlb.control.tunnels.served import backend_blocks
from anycastlb.model.config import Backend, ListenerSettings

CLUSTER = ClusterTunnel("acme", "k1", ipaddress.IPv4Network("100.64.4.0/22"), 51821, "albwg2", 7)


def _pop(name: str, address: str, endpoint: str | None) -> PopSide:
    pair = new_keypair()
    return PopSide(name, pair.private, pair.public, address, endpoint)


def _node(address: str) -> NodeKeyState:
    pair = new_keypair()
    return NodeKeyState(NodeKey(pair.private, pair.public, address))


def test_a_pops_interface_listens_on_the_clusters_port_with_a_peer_per_node_key() -> None:
    pop = _pop("fra", "100.64.4.1", "192.0.2.1")
    n1 = _node("100.64.4.3")
    n2 = rotate(_node("100.64.4.4"), NodeKey(*_keys(), "100.64.4.5"), datetime.now(UTC), timedelta(minutes=1))
    interface = pop_interface(CLUSTER, pop, [("n2", n2), ("n1", n1)])
    assert (interface.name, interface.listen_port, interface.private_key) == ("albwg2", 51821, pop.private)
    assert [str(a) for a in interface.addresses] == ["100.64.4.1/22"]
    assert [(p.name, str(p.allowed_ips[0]), p.endpoint) for p in interface.peers] == [
        ("n1", "100.64.4.3/32", None),
        ("n2", "100.64.4.5/32", None),
        ("n2.previous", "100.64.4.4/32", None),
    ]


def _keys() -> tuple[str, str]:
    pair = new_keypair()
    return pair.private, pair.public


def test_a_nodes_config_dials_every_pop_with_an_endpoint_and_keeps_nat_open() -> None:
    node = _node("100.64.4.3")
    pops = [
        _pop("par", "100.64.4.2", "2001:db8::1"),
        _pop("fra", "100.64.4.1", "192.0.2.1"),
        _pop("ams", "100.64.4.6", None),
    ]
    config = node_config(CLUSTER, "n1", node, pops)
    assert (config.cluster, config.node, config.version) == ("k1", "n1", 7)
    assert config.interface.private_key == node.current.private
    assert config.interface.listen_port is None
    assert [
        (p.name, p.endpoint, p.persistent_keepalive, str(p.allowed_ips[0])) for p in config.interface.peers
    ] == [
        ("fra", "192.0.2.1:51821", 25, "100.64.4.1/32"),
        ("par", "[2001:db8::1]:51821", 25, "100.64.4.2/32"),
    ]
    dumped = config.model_dump_json()
    assert all(pop.private not in dumped for pop in pops)


def test_backend_blocks_are_the_slash_24s_of_ipv4_backends_only() -> None:
    listener = ListenerSettings(
        port=443,
        backends=(
            Backend(address="100.64.4.3", port=30443),
            Backend(address="100.64.5.200", port=30443),
            Backend(address="100.64.4.9", port=30443),
            Backend(address="2001:db8::5", port=30443),
        ),
    )
    assert backend_blocks([listener]) == {
        int(ipaddress.IPv4Address("100.64.4.0")) >> 8,
        int(ipaddress.IPv4Address("100.64.5.0")) >> 8,
    }
