"""Bodies of the clusters API (``/v1/tenants/{tenant}/clusters/…``) and a PoP's tunnel endpoint.

No answer here carries a PoP's private key: a tenant reads its nodes' configs (each node's own
private key, the PoPs' public keys), never the PoPs' side.
"""

import ipaddress
import re
from datetime import datetime

from pydantic import Field, field_validator

from anycastlb.model.base import Frozen, check_name
from anycastlb.model.tunnel import NodeTunnelConfig

__all__ = [
    "ClusterNodeOut",
    "ClusterNodes",
    "ClusterNodesOut",
    "ClusterOut",
    "ClusterPut",
    "ClusterTunnelOut",
    "PopTunnelEndpoint",
    "check_tunnel_endpoint",
]

MAX_NODES = 5000
_NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # Kubernetes' largest supported cluster


class ClusterPut(Frozen):
    tunnels: bool = Field(default=True, description="Nodes reach the PoPs through WireGuard tunnels")


class ClusterOut(Frozen):
    name: str
    tunnels: bool
    network: str = Field(description="The cluster's tunnel network (PoPs and nodes hold addresses in it)")
    listen_port: int = Field(description="The UDP port every PoP listens on for this cluster's nodes")
    version: int = Field(description="Grows with every change a node's config shows")
    nodes: int
    rotating: int = Field(description="Nodes whose previous key is still a peer (rotation grace)")
    created_at: datetime


class ClusterNodes(Frozen):
    """``PUT …/nodes``: the cluster's complete node set (names as Kubernetes has them)."""

    nodes: tuple[str, ...] = Field(max_length=MAX_NODES)

    @field_validator("nodes")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if len(name) > 253 or not _NODE_NAME.fullmatch(name):
                raise ValueError(f"node name {name!r} is not a Kubernetes node name (DNS subdomain)")
        if len(set(value)) != len(value):
            raise ValueError("nodes lists a node twice")
        return value


class ClusterNodeOut(Frozen):
    name: str
    address: str = Field(description="The node's tunnel address: its backend address")
    backend_addresses: tuple[str, ...] = Field(
        description="Every address to list as this node's backends: the current one first, then "
        "during a rotation the previous one (one of the two answers, whichever key the node runs)"
    )
    public_key: str
    previous_until: datetime | None = Field(description="End of the rotation grace (null: none)")


class ClusterNodesOut(Frozen):
    cluster: str
    version: int
    nodes: tuple[ClusterNodeOut, ...]


class ClusterTunnelOut(Frozen):
    """Every node's tunnel config: what the controller writes into the ``anycastlb-tunnel`` Secret."""

    cluster: str
    version: int
    nodes: tuple[NodeTunnelConfig, ...]


def check_tunnel_endpoint(value: str | None) -> str | None:
    """A PoP's public tunnel address: an IP address nodes can reach (the port is each cluster's)."""
    if value is None:
        return None
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            f"tunnel_endpoint {value!r} is not an IP address (give the address only: the port is each "
            "cluster's listen_port)"
        ) from None
    if parsed.is_unspecified or parsed.is_loopback or parsed.is_multicast or parsed.is_link_local:
        raise ValueError(f"tunnel_endpoint {value}: give an address nodes can reach")
    return str(parsed)


class PopTunnelEndpoint(Frozen):
    tunnel_endpoint: str | None = Field(
        description="The PoP's public address nodes dial (each cluster's port); null: none"
    )

    @field_validator("tunnel_endpoint")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return check_tunnel_endpoint(value)


def check_cluster_name(value: str) -> str:
    return check_name(value, "cluster name")
