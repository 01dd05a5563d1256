"""TLS server names a listener answers to when several load balancers share one VIP and port.

Why a module of its own: the same rules are enforced by the control plane (a request naming a bad
or clashing hostname gets a 400/409), by the edge's config check, and by the data plane's SNI
router, so they must agree on what a name is and when one matches.

A hostname is a DNS name in lowercase ASCII (IDNs in their ``xn--`` form), or a wildcard whose
first label is ``*`` and which then matches exactly one more label: ``*.example.com`` matches
``shop.example.com`` but not ``example.com`` nor ``a.b.example.com`` (RFC 6125 §6.4.3, the rule
certificates follow, so a route never claims names its certificate could not serve).
"""

import re
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "MAX_HOSTNAMES",
    "SniRouted",
    "check_hostname",
    "check_hostnames",
    "hostname_matches",
    "route_for",
]

MAX_HOSTNAMES = 64  # per listener; a load balancer with more should use a wildcard
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_hostname(value: str) -> str:
    """The name in canonical form (lowercase, no trailing dot), or a ValueError saying what is wrong."""
    name = value.strip().lower().removesuffix(".")
    if not name or len(name) > 253:
        raise ValueError(f"hostname {value!r} must be 1-253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError(
            f"hostname {value!r} needs at least two labels (shop.example.com); a TLS client sends "
            "a fully qualified name"
        )
    for index, label in enumerate(labels):
        if label == "*" and index == 0:
            continue
        if not _LABEL.match(label):
            where = "only as the whole first label (*.example.com)" if "*" in label else ""
            raise ValueError(
                f"hostname {value!r}: label {label!r} must be 1-63 letters, digits or '-' "
                f"(IDNs in their xn-- form){'; a wildcard is allowed ' + where if where else ''}"
            )
    if labels[0] == "*" and len(labels) < 3:
        raise ValueError(f"hostname {value!r}: a wildcard needs a parent of two labels (*.example.com)")
    return name


def check_hostnames(values: tuple[str, ...]) -> tuple[str, ...]:
    """Each name checked, duplicates refused, at most :data:`MAX_HOSTNAMES`, order kept."""
    if len(values) > MAX_HOSTNAMES:
        raise ValueError(f"at most {MAX_HOSTNAMES} hostnames per listener; use a wildcard (*.example.com)")
    names: list[str] = []
    for value in values:
        name = check_hostname(value)
        if name in names:
            raise ValueError(f"hostname {name!r} is listed twice")
        names.append(name)
    return tuple(names)


def hostname_matches(pattern: str, server_name: str) -> bool:
    """Whether a ClientHello's server name (any case) is served by ``pattern`` (canonical form)."""
    name = server_name.lower().removesuffix(".")
    if not pattern.startswith("*."):
        return name == pattern
    head, _, parent = name.partition(".")
    return bool(head) and head != "*" and parent == pattern[2:]


class SniRouted(Protocol):
    """What routing needs of a listener sharing a port (``ListenerSettings`` has both)."""

    @property
    def hostnames(self) -> tuple[str, ...]: ...

    @property
    def sni_default(self) -> bool: ...


def route_for(server_name: str | None, members: Sequence[SniRouted]) -> int | None:
    """Which member of a sharing group serves a ClientHello's server name: its index, or None (reset).

    An exact name wins over a wildcard (``shop.example.com`` over ``*.example.com``), whatever the
    order; the config check guarantees no name appears twice, so the answer never depends on order.
    No name (not TLS, no SNI, a ClientHello cut short) or no match goes to the ``sni_default`` member,
    if there is one. The compiled core's ``route_of`` (``_core.pyx``) is the same rule; a unit test
    runs both on one table of cases.
    """
    default = next((index for index, member in enumerate(members) if member.sni_default), None)
    name = (server_name or "").lower().removesuffix(".")
    if not name:
        return default
    for index, member in enumerate(members):
        if any(pattern == name and not pattern.startswith("*.") for pattern in member.hostnames):
            return index  # (a name "*.example.com" is no exact match of the pattern: "*" is not a label)
    for index, member in enumerate(members):
        if any(pattern.startswith("*.") and hostname_matches(pattern, name) for pattern in member.hostnames):
            return index
    return default
