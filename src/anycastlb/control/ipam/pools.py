"""Pools as the allocator sees them, which of them a tenant may use, and which addresses never go out.

A pool is *platform* (``owner`` None: every tenant may use it) or *BYOIP* (owned by one tenant, whose
prefix it is: only that tenant may use it). A tenant's own prefixes come first: a customer who
brought addresses expects its load balancers to get them.

Addresses never handed out, even when asked for by name: the pool's reserved ranges, the network and
broadcast addresses of an IPv4 network shorter than /31 (some hosts and firewalls still treat them
as special) and the subnet-router anycast address (the network address, RFC 4291 2.6.1) of an IPv6
network shorter than /127.
"""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from anycastlb.control.ipam.errors import AllocationError, InvalidPoolError
from anycastlb.model.desired import IPFamily

__all__ = [
    "Address",
    "AddressRange",
    "Network",
    "PoolView",
    "SniSharing",
    "blocked_reason",
    "check_new_pool",
    "family_label",
    "family_of",
    "pool_containing",
    "skipped",
    "usable_pools",
    "version_of",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
AddressRange = tuple[Address, Address]
SniSharing = Literal["tenant", "pool"]  # who may share an address of the pool by SNI (ipam/plan.py)

_VERSIONS: dict[IPFamily, int] = {"ipv4": 4, "ipv6": 6}
_FAMILIES: dict[int, IPFamily] = {4: "ipv4", 6: "ipv6"}


def version_of(family: IPFamily) -> int:
    return _VERSIONS[family]


def family_of(address: Address | Network) -> IPFamily:
    return _FAMILIES[address.version]


def family_label(family: IPFamily) -> str:
    """``IPv4``/``IPv6``, as people write it in a sentence."""
    return "IPv4" if family == "ipv4" else "IPv6"


@dataclass(frozen=True, slots=True)
class PoolView:
    """One pool: its prefixes, the ranges inside them never handed out, its owner, whether automatic
    allocation may draw from it (a pool with ``auto_assign`` False is used only when named)."""

    name: str
    networks: tuple[Network, ...]
    reserved: tuple[AddressRange, ...] = ()  # inclusive first-last ranges never handed out
    owner: str | None = None  # tenant name for a BYOIP pool, None for a platform pool
    auto_assign: bool = True
    sni_sharing: SniSharing = "tenant"  # "pool": tenants may share an address under one sharing key

    def usable_by(self, tenant: str) -> bool:
        return self.owner is None or self.owner == tenant


def usable_pools(pools: Sequence[PoolView], tenant: str) -> tuple[PoolView, ...]:
    """The tenant's own BYOIP pools, then the platform pools, each by name; never another's BYOIP."""
    own = sorted((pool for pool in pools if pool.owner == tenant), key=lambda pool: pool.name)
    platform = sorted((pool for pool in pools if pool.owner is None), key=lambda pool: pool.name)
    return (*own, *platform)


def pool_containing(pools: Sequence[PoolView], address: Address) -> PoolView | None:
    """The pool whose networks contain ``address`` (pools never overlap, see :func:`check_new_pool`)."""
    for pool in pools:
        if any(address in network for network in pool.networks):
            return pool
    return None


def skipped(network: Network) -> tuple[Address, ...]:
    """The addresses of ``network`` that are never handed out whatever the reserved ranges say."""
    if isinstance(network, ipaddress.IPv4Network):
        return (network.network_address, network.broadcast_address) if network.prefixlen < 31 else ()
    return (network.network_address,) if network.prefixlen < 127 else ()


def blocked_reason(pool: PoolView, address: Address) -> str | None:
    """Why ``address`` (inside ``pool``) is never handed out, as a phrase after "is", or None."""
    for first, last in pool.reserved:
        if first.version == address.version and first <= address <= last:  # type: ignore[operator]
            return f"in reserved range {first}-{last} of pool {pool.name}"
    for network in pool.networks:
        if address in network and address in skipped(network):
            what = "network" if address == network.network_address else "broadcast"
            return f"the {what} address of {network} in pool {pool.name}"
    return None


def check_new_pool(pool: PoolView, existing: Sequence[PoolView]) -> None:
    """Refuse a pool whose networks overlap each other or another pool (an address must belong to
    exactly one pool, or ownership and usability would be ambiguous), or whose reserved ranges are
    malformed. ``existing`` may hold the pool's previous version (same name); it is ignored.

    Overlaps raise ``AllocationError("conflict")``, naming the other pool: this is an admin call.
    Malformed reserved ranges raise :class:`InvalidPoolError` (a ``ValueError``).
    """
    for i, network in enumerate(pool.networks):
        for other in pool.networks[i + 1 :]:
            if network.version == other.version and network.overlaps(other):
                raise AllocationError(
                    "conflict",
                    f"networks {network} and {other} of pool {pool.name} overlap; list each prefix once",
                )
    for other_pool in existing:
        if other_pool.name == pool.name:
            continue
        for network in pool.networks:
            for other in other_pool.networks:
                if network.version == other.version and network.overlaps(other):
                    raise AllocationError(
                        "conflict",
                        f"network {network} of pool {pool.name} overlaps {other} of pool {other_pool.name}; "
                        "an address belongs to one pool only: pick a prefix outside it or change that pool",
                    )
    for first, last in pool.reserved:
        _check_range(pool, first, last)


def _check_range(pool: PoolView, first: Address, last: Address) -> None:
    text = f"reserved range {first}-{last} of pool {pool.name}"
    if first.version != last.version:
        raise InvalidPoolError(f"{text} mixes IPv4 and IPv6; write FIRST-LAST of one family")
    if first > last:  # type: ignore[operator]
        raise InvalidPoolError(f"{text} ends before it starts; write it as {last}-{first}")
    if not any(first in network and last in network for network in pool.networks):
        networks = ", ".join(str(network) for network in pool.networks) or "none"
        raise InvalidPoolError(
            f"{text} is not inside one network of the pool ({networks}); "
            "reserve only addresses of the pool, one range per network"
        )
