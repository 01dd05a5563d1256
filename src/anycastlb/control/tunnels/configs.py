"""What a PoP and a node each receive for one cluster's tunnel (pure: plain values in, models out).

A PoP's interface for the cluster listens on the cluster's port with the PoP's own key and
address and has one peer per node key in use (two per node during a rotation, rotation.py), no
endpoint: the PoP learns each node's NATed endpoint from its handshake. A node's interface has one
peer per PoP that has a public tunnel endpoint, dialled with a keepalive so the node's NAT keeps
the mapping open.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from anycastlb.control.tunnels.rotation import NodeKeyState, peers
from anycastlb.model.tunnel import NodeTunnelConfig, TunnelInterface, TunnelPeer

__all__ = [
    "KEEPALIVE",
    "NODE_INTERFACE",
    "ClusterTunnel",
    "PopSide",
    "node_config",
    "pop_interface",
]

NODE_INTERFACE = "anycastlb0"  # the node's one interface, whatever the cluster
KEEPALIVE = 25  # seconds: under every common NAT's UDP timeout (30 s and up)


@dataclass(frozen=True, slots=True)
class ClusterTunnel:
    tenant: str
    name: str
    network: ipaddress.IPv4Network
    listen_port: int
    interface: str  # the PoP-side interface name
    version: int


@dataclass(frozen=True, slots=True)
class PopSide:
    pop: str
    private: str = field(repr=False)
    public: str
    address: str
    endpoint: str | None  # the PoP's public tunnel address (no port); None: nodes cannot dial it


def _host(address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(address)  # a bare address is its /32


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def pop_interface(
    cluster: ClusterTunnel, pop: PopSide, nodes: Iterable[tuple[str, NodeKeyState]]
) -> TunnelInterface:
    node_peers = []
    for name, state in sorted(nodes):
        for index, (public, address) in enumerate(peers(state)):
            node_peers.append(
                TunnelPeer(
                    name=name if index == 0 else f"{name}.previous",
                    public_key=public,
                    allowed_ips=(_host(address),),
                )
            )
    return TunnelInterface(
        name=cluster.interface,
        private_key=pop.private,
        addresses=(ipaddress.IPv4Interface(f"{pop.address}/{cluster.network.prefixlen}"),),
        listen_port=cluster.listen_port,
        peers=tuple(node_peers),
    )


def node_config(
    cluster: ClusterTunnel, name: str, state: NodeKeyState, pops: Iterable[PopSide]
) -> NodeTunnelConfig:
    return NodeTunnelConfig(
        cluster=cluster.name,
        node=name,
        version=cluster.version,
        interface=TunnelInterface(
            name=NODE_INTERFACE,
            private_key=state.current.private,
            addresses=(ipaddress.IPv4Interface(f"{state.current.address}/{cluster.network.prefixlen}"),),
            peers=tuple(
                TunnelPeer(
                    name=pop.pop,
                    public_key=pop.public,
                    allowed_ips=(_host(pop.address),),
                    endpoint=_endpoint(pop.endpoint, cluster.listen_port),
                    persistent_keepalive=KEEPALIVE,
                )
                for pop in sorted(pops, key=lambda side: side.pop)
                if pop.endpoint is not None
            ),
        ),
    )
