"""Tunnel networks, addresses, interface names and UDP ports (pure: the caller says what is taken).

Layout: every cluster with tunnels gets its own IPv4 network (``--tunnel-prefix``, /22 by default:
1,022 addresses) from the platform's tunnel range (``--tunnel-range``, 100.64.0.0/10 by default:
4,096 clusters). Inside it each PoP and each node holds one address (a node being rotated holds
two for the grace period). A PoP names its interface for a cluster ``albwg<cluster id>`` and
listens on the cluster's own UDP port, so one PoP serves many clusters side by side; both are
stable for the cluster's lifetime (a node's config names them). Allocation is lowest-free-first:
deterministic, so tests and operators can predict it.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "TunnelAllocationError",
    "TunnelSettings",
    "allocate_host",
    "allocate_network",
    "allocate_port",
    "interface_name",
]

DEFAULT_RANGE = ipaddress.IPv4Network("100.64.0.0/10")
DEFAULT_PREFIX = 22
DEFAULT_PORT_BASE = 51820
DEFAULT_PORT_COUNT = 4096
DEFAULT_GRACE = 900.0  # seconds a rotated node's old key and address stay a peer of every PoP


class TunnelAllocationError(Exception):
    """No room left; the message says which space is full and how to widen it."""


@dataclass(frozen=True, slots=True)
class TunnelSettings:
    """The operator's choices for tunnels (``anycastlb control --tunnel-*``), checked at start."""

    range: ipaddress.IPv4Network = DEFAULT_RANGE
    prefix: int = DEFAULT_PREFIX
    port_base: int = DEFAULT_PORT_BASE
    port_count: int = DEFAULT_PORT_COUNT
    grace: float = DEFAULT_GRACE

    def __post_init__(self) -> None:
        if not 16 <= self.prefix <= 24 or self.prefix < self.range.prefixlen:
            raise ValueError(
                f"tunnel prefix /{self.prefix}: give a length between /{max(16, self.range.prefixlen)} "
                "and /24 (a PoP finds the clusters it serves by its backends' /24 blocks)"
            )
        if not self.port_base >= 1 or self.port_base + self.port_count - 1 > 65535 or self.port_count < 1:
            raise ValueError(
                f"tunnel ports {self.port_base}+{self.port_count}: the range must lie within 1-65535"
            )
        if self.grace < 0:
            raise ValueError("tunnel rotation grace must be >= 0 seconds")


def interface_name(cluster_id: int) -> str:
    """A PoP's interface for one cluster: ``albwg`` and the cluster's id, at most 15 characters."""
    name = f"albwg{cluster_id}"
    if len(name) > 15:  # ids above 10 digits: never from an integer primary key in practice
        raise TunnelAllocationError(f"cluster id {cluster_id} makes an interface name over 15 characters")
    return name


def allocate_network(settings: TunnelSettings, taken: Iterable[str]) -> ipaddress.IPv4Network:
    """The lowest subnet of ``settings.prefix`` in the range that overlaps none of ``taken``."""
    used = [ipaddress.ip_network(text) for text in taken]
    for candidate in settings.range.subnets(new_prefix=settings.prefix):
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise TunnelAllocationError(
        f"the tunnel range {settings.range} has no free /{settings.prefix} left; delete unused clusters "
        "or start the control plane with a wider --tunnel-range (or a longer --tunnel-prefix)"
    )


def allocate_host(network: ipaddress.IPv4Network, taken: Iterable[str]) -> ipaddress.IPv4Address:
    """The lowest host address of ``network`` not in ``taken``."""
    used = {ipaddress.IPv4Address(text) for text in taken}
    for host in network.hosts():
        if host not in used:
            return host
    raise TunnelAllocationError(
        f"the tunnel network {network} is full ({network.num_addresses - 2} addresses for PoPs and "
        "nodes, two per node during a key rotation); remove nodes, or recreate the cluster after "
        "starting the control plane with a shorter --tunnel-prefix"
    )


def allocate_port(settings: TunnelSettings, taken: Iterable[int]) -> int:
    """The lowest UDP port of the tunnel port range not in ``taken``."""
    used = set(taken)
    for port in range(settings.port_base, settings.port_base + settings.port_count):
        if port not in used:
            return port
    raise TunnelAllocationError(
        f"every tunnel port {settings.port_base}-{settings.port_base + settings.port_count - 1} is taken "
        "by a cluster; widen --tunnel-port-count"
    )
