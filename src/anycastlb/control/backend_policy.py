"""Which backends a tenant may point its load balancers at (pure: no store, no I/O).

Why: a PoP connects to whatever a backend says. A tenant that names ``127.0.0.1:<edge metrics
port>`` makes its VIP serve the edge's own metrics; one that names the control plane, another
PoP or a VIP makes the platform attack itself. So the control plane refuses, when a load balancer
is created or changed, every backend that is not a host of the tenant's own out on the network.

The rules, in the order they are checked (the first that matches is the answer, named in the 422):

====================  ==========================================  =====================================
rule                  refused                                     lifted by
====================  ==========================================  =====================================
not-unicast           0.0.0.0, ::, multicast, 255.255.255.255     nothing
reserved              240.0.0.0/4 (no host may have one)           nothing
ipv4-mapped           ::ffff:a.b.c.d (write a.b.c.d)              nothing
vip                   inside any pool's network (a VIP)           nothing
tunnel                inside another tenant's cluster tunnel      nothing
                      network (its nodes, through its tunnel)
control-plane         the control plane's listen address          the lab switch
platform-network      a ``--platform-network`` (PoP hosts)        the lab switch
loopback              127.0.0.0/8, ::1                            the lab switch
link-local            169.254.0.0/16, fe80::/10                   the lab switch
private               RFC 1918, 100.64.0.0/10, fc00::/7           the lab switch, the tenant's
                                                                  ``allowed_backend_networks``, or
                                                                  its own clusters' tunnel networks
====================  ==========================================  =====================================

"The lab switch" is ``anycastlb control --allow-backend-network CIDR``: a process-wide choice of the
operator for labs and tests that run every node on loopback; it is printed as a warning at start.
A tenant's allow-list (set by the admin) may hold private networks only: loopback and link-local
are the PoP itself whichever tenant asks.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from anycastlb.model.addresses import Address, Network, parse_network

__all__ = [
    "PRIVATE_NETWORKS",
    "BackendPolicy",
    "BackendRefusal",
    "PlatformAddresses",
    "backend_refusal",
    "check_tenant_allow_list",
    "spec_refusals",
]

PRIVATE_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(text)
    for text in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_RESERVED_V4 = ipaddress.IPv4Network("240.0.0.0/4")
_LINK_LOCAL: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)


@dataclass(frozen=True, slots=True)
class PlatformAddresses:
    """What the operator told this control plane process (command line, environment)."""

    control_plane: tuple[Address, ...] = ()  # its listen address, unless it listens on every address
    platform_networks: tuple[Network, ...] = ()  # --platform-network: PoP hosts, routers, the store
    lab_networks: tuple[Network, ...] = ()  # --allow-backend-network: the lab switch


@dataclass(frozen=True, slots=True)
class BackendPolicy:
    """Everything one check needs: the process's platform addresses, the pools, the tenant's list."""

    platform: PlatformAddresses
    pools: tuple[tuple[str, Network], ...] = ()  # (pool name, network)
    tenant_allowed: tuple[Network, ...] = ()  # its allow-list and its own clusters' tunnel networks
    foreign_tunnels: tuple[Network, ...] = ()  # other tenants' clusters' tunnel networks


@dataclass(frozen=True, slots=True)
class BackendRefusal:
    rule: str
    reason: str
    fix: str


@lru_cache(maxsize=4096)
def _span(network: Network) -> tuple[int, int, int]:
    """(version, first address, netmask) as integers: ``address in network`` costs ~1 µs in
    ``ipaddress`` and a spec at the backend limit asks it 5,000 times per network."""
    return network.version, int(network.network_address), int(network.netmask)


def _inside(address: Address, networks: Iterable[Network]) -> Network | None:
    version, value = address.version, int(address)
    for network in networks:
        network_version, first, mask = _span(network)
        if network_version == version and value & mask == first:
            return network
    return None


@lru_cache(maxsize=65536)
def _classify(address: Address) -> tuple[BackendRefusal | None, BackendRefusal | None, Network | None]:
    """What the address is, whoever asks: (a refusal nothing lifts, a refusal the lab switch lifts,
    the private range it is in). Cached: the same node addresses recur in every spec of a cluster,
    and ``ipaddress``'s range properties cost ~1 µs each."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        hard = BackendRefusal(
            "ipv4-mapped",
            "is an IPv4-mapped IPv6 address",
            f"write the IPv4 address {address.ipv4_mapped} (and it must pass these rules too)",
        )
        return hard, None, None
    if address.is_unspecified or address.is_multicast or address == _BROADCAST:
        hard = BackendRefusal(
            "not-unicast", "is not a unicast address of a host", "name a node's own unicast address"
        )
        return hard, None, None
    if address in _RESERVED_V4:
        hard = BackendRefusal(
            "reserved",
            "is in 240.0.0.0/4, reserved by RFC 1112: no host has such an address",
            "name a node's own unicast address",
        )
        return hard, None, None
    if address.is_loopback:
        soft = BackendRefusal(
            "loopback",
            "is a loopback address: it would reach the PoP itself",
            "name a node's routable address",
        )
        return None, soft, None
    if _inside(address, _LINK_LOCAL) is not None:
        soft = BackendRefusal(
            "link-local", "is link-local: it would reach the PoP's own link", "name a node's routable address"
        )
        return None, soft, None
    return None, None, _inside(address, PRIVATE_NETWORKS)


def _vip_refusal(address: Address, policy: BackendPolicy) -> BackendRefusal | None:
    version, value = address.version, int(address)
    for name, network in policy.pools:
        network_version, first, mask = _span(network)
        if network_version == version and value & mask == first:
            return BackendRefusal(
                "vip",
                f"is inside pool {name!r} ({network}): it is a VIP of this platform",
                "name the nodes behind the other load balancer instead of its VIP",
            )
    return None


def _platform_refusal(address: Address, policy: BackendPolicy) -> BackendRefusal | None:
    vip = _vip_refusal(address, policy)
    if vip is not None:
        return vip
    if _inside(address, policy.foreign_tunnels) is not None:
        return BackendRefusal(
            "tunnel",
            "is inside another tenant's cluster tunnel network: it would reach that tenant's nodes",
            "name a node of your own cluster (its tunnel address from PUT …/clusters/{cluster}/nodes)",
        )
    if address in policy.platform.control_plane:
        return BackendRefusal(
            "control-plane", "is the control plane's own address", "name one of your own nodes"
        )
    platform = _inside(address, policy.platform.platform_networks)
    if platform is not None:
        return BackendRefusal(
            "platform-network",
            f"is inside the platform network {platform} (PoPs and their infrastructure)",
            "name one of your own nodes",
        )
    return None


def backend_refusal(address: Address, policy: BackendPolicy) -> BackendRefusal | None:
    """Why ``address`` may not be a backend of this tenant, or None (allowed): the first row of the
    table above that matches."""
    hard, soft, private = _classify(address)
    if hard is not None:
        return hard
    if _inside(address, policy.platform.lab_networks) is not None:  # the operator's lab switch
        return _vip_refusal(address, policy) or (
            _platform_refusal(address, policy) if _inside(address, policy.foreign_tunnels) else None
        )
    refusal = _platform_refusal(address, policy) or soft
    if refusal is not None or private is None or _inside(address, policy.tenant_allowed) is not None:
        return refusal
    return BackendRefusal(
        "private",
        f"is in the private range {private}, which this tenant is not allowed to use",
        "use the node's public address, or ask the admin to allow the network for this tenant "
        "(`anycastlb tenants update NAME --allow-backend-network CIDR`)",
    )


def spec_refusals(
    policy: BackendPolicy, listeners: Iterable[tuple[int, Iterable[tuple[Address, int]]]]
) -> list[str]:
    """One line per refused backend: ``listeners[port 443]: backend 127.0.0.1:9100 is ... (rule
    loopback); fix``. ``listeners``: (port, (address, port) of each backend). Each distinct address is
    judged once (a spec at 500 nodes names each node once per port)."""
    verdicts: dict[Address, BackendRefusal | None] = {}
    lines: list[str] = []
    for listener_port, backends in listeners:
        for address, port in backends:
            if address not in verdicts:
                verdicts[address] = backend_refusal(address, policy)
            refusal = verdicts[address]
            if refusal is not None:
                shown = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
                lines.append(
                    f"listener port {listener_port}: backend {shown} {refusal.reason} "
                    f"(rule {refusal.rule}); {refusal.fix}"
                )
    return lines


def check_tenant_allow_list(networks: tuple[str, ...]) -> tuple[str, ...]:
    """A tenant's allow-list lifts the private rule only: each network must lie in a private range."""
    for text in networks:
        network = parse_network(text)  # canonical already (schemas._networks)
        if not any(
            network.version == private.version and network.subnet_of(private)  # type: ignore[arg-type]
            for private in PRIVATE_NETWORKS
        ):
            raise ValueError(
                f"allowed_backend_networks: {text} is not inside a private range "
                f"({', '.join(str(n) for n in PRIVATE_NETWORKS)}); public backends need no allowance, and "
                "loopback or link-local ones are the PoP itself (a lab uses `anycastlb control "
                "--allow-backend-network`)"
            )
    return networks
