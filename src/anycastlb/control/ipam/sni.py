"""When two load balancers may listen on the same VIP and port: the SNI-sharing rule.

Theory of operation
-------------------
The edge routes a connection on a shared VIP:port by the ClientHello's server name to the listener
that names it (model/hostnames.py). So two load balancers' listeners on one (port, protocol) of
one address can coexist exactly when the edge can always tell them apart:

1. both name their hostnames (a listener without hostnames takes every connection on the port, so
   it shares the port with nobody);
2. no hostname pattern is named by both (identical patterns clash);
3. at most one of them is the ``sni_default`` (the listener that takes an unknown or missing SNI).

Overlapping patterns: ``*.a.com`` and ``shop.a.com`` both match ``shop.a.com``. Within one tenant
they do not clash: the edge prefers the exact name (the most specific match, as web servers and
certificate stores do), which is how one tenant carves a name out of its own wildcard. Across
tenants they clash: otherwise a tenant could take a name another tenant's wildcard already serves,
or cover another tenant's names with a wildcard, and that is the other tenant's traffic. Two
wildcards never overlap unless identical (``*`` matches exactly one label).

What is compared is one :class:`PortClaim` per load balancer and listener; the functions are pure,
used by the allocator (``plan.py``, for addresses it may join) and by the control plane after an
update (the new spec against every other user of the address).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from anycastlb.model.hostnames import hostname_matches

__all__ = ["Clash", "PortClaim", "clash_text", "first_clash"]

ClashReason = Literal["port", "hostname", "default"]


@dataclass(frozen=True, slots=True)
class PortClaim:
    """One load balancer's listener on a port of a shared address: who, which port, which names."""

    tenant: str
    load_balancer: str
    port: int
    protocol: str
    hostnames: frozenset[str] = field(default_factory=frozenset)
    sni_default: bool = False

    @property
    def owner(self) -> tuple[str, str]:
        """(tenant, load balancer): load balancer names are unique within a tenant only."""
        return self.tenant, self.load_balancer

    @property
    def port_text(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class Clash:
    """Why ``mine`` cannot sit beside ``theirs``: the port itself, one hostname, or both defaults."""

    mine: PortClaim
    theirs: PortClaim
    reason: ClashReason
    hostname: str | None = None


def _overlap(mine: PortClaim, theirs: PortClaim) -> str | None:
    """The first (sorted) hostname of ``mine`` the edge could not route apart from ``theirs``."""
    same = sorted(mine.hostnames & theirs.hostnames)
    if same:
        return same[0]
    if mine.tenant == theirs.tenant:
        return None  # an exact name beside its own wildcard: the exact one wins at the edge
    for name in sorted(mine.hostnames):
        for other in sorted(theirs.hostnames):
            if hostname_matches(name, other) or hostname_matches(other, name):
                return name
    return None


def _clash(mine: PortClaim, theirs: PortClaim) -> Clash | None:
    if not mine.hostnames or not theirs.hostnames:
        return Clash(mine, theirs, "port")
    name = _overlap(mine, theirs)
    if name is not None:
        return Clash(mine, theirs, "hostname", name)
    if mine.sni_default and theirs.sni_default:
        return Clash(mine, theirs, "default")
    return None


def first_clash(mine: Iterable[PortClaim], theirs: Iterable[PortClaim]) -> Clash | None:
    """The first clash between the asking load balancer's claims and other users' claims of one
    address (claims of the asker itself among ``theirs`` are ignored: an update replaces them), in
    port order so the message is stable; None when every shared port can be routed by SNI."""
    own = list(mine)
    owners = {claim.owner for claim in own}
    by_port: dict[tuple[int, str], list[PortClaim]] = {}
    for claim in theirs:
        if claim.owner not in owners:
            by_port.setdefault((claim.port, claim.protocol), []).append(claim)
    for claim in sorted(own, key=lambda item: (item.port, item.protocol)):
        for other in sorted(by_port.get((claim.port, claim.protocol), ()), key=lambda item: item.owner):
            found = _clash(claim, other)
            if found is not None:
                return found
    return None


def clash_text(clash: Clash, address: str) -> str:
    """What is taken on ``address``, as a clause for a 409. The other load balancer is named only
    when it belongs to the asking tenant: another tenant's names are none of the asker's business."""
    if clash.mine.tenant != clash.theirs.tenant:
        return _foreign_text(clash, address)
    return _own_text(clash, address)


def _foreign_text(clash: Clash, address: str) -> str:
    port = clash.mine.port_text
    if clash.reason == "hostname":
        return (
            f"hostname {clash.hostname} on port {port} is already taken on {address} (by another "
            "tenant); name other hostnames, or use another sharing key for an address of your own"
        )
    if clash.reason == "default":
        return (
            f"the SNI default of port {port} on {address} is already taken (by another tenant); "
            "drop sni_default, or use another sharing key"
        )
    return (
        f"port {port} is already taken on {address} (by another tenant) and cannot be shared by SNI"
        + ("" if clash.mine.hostnames else "; name this listener's hostnames to share it by SNI")
        + ", or use another sharing key for an address of your own"
    )


def _own_text(clash: Clash, address: str) -> str:
    mine, theirs, port = clash.mine, clash.theirs, clash.mine.port_text
    other = f"load balancer {theirs.load_balancer}"
    if clash.reason == "hostname":
        return (
            f"{address} is shared with {other}, which already serves hostname {clash.hostname} on "
            f"{port}; name other hostnames or use another port"
        )
    if clash.reason == "default":
        return (
            f"{address} is shared with {other}, which is already the SNI default on {port}; "
            "only one sharer of a port may be the default: drop sni_default on one of them"
        )
    if not mine.hostnames and theirs.hostnames:
        return (
            f"{address} is shared with {other}, which already listens on {port} (routed by SNI); "
            f"name this load balancer's hostnames on {port} to share it, or use another port"
        )
    return f"{address} is shared with {other}, which already listens on {port}; use another port"
