"""A sharing group: the listeners on one endpoint that the core routes between by SNI (pure).

Several listeners (of several load balancers) may bind one address and port when each names its
hostnames (``EdgeConfig`` checks the rule). The worker then opens ONE socket for the endpoint and
installs a group snapshot on it; the core reads the ClientHello's server name and hands the
connection to the member that names it (``model/hostnames.py``'s :func:`route_for`, the same rule
in C), and from then on the connection lives on that member's own snapshot: its backends, Maglev
table, PROXY version, timeouts, limits and counters.

What the group's socket itself needs is decided here, before any SNI is known:

- admission at accept: the group admits under limits no stricter than any member's (the sum of the
  members' ``max_connections`` and rates, the largest per-source limits, the finest source prefix),
  a coarse guard against a flood of connections that never say a name; once routed, the group's
  open-connection slots are given back and the member's own limits apply (a refusal is counted on
  the member, under its reason, and is a reset);
- waiting for the first bytes: the longest ``first_data_timeout`` / ``client_hello_wait`` /
  ``idle_timeout`` of the members (a member's own apply from the moment of routing);
- its metrics row, named :func:`group_name` (``sni:203.0.113.10:443``): connections that never
  reached a member (``no_route``, clients that left or stayed silent); a routed connection counts
  on its member only, so summing the series over listeners counts each connection once.
"""

from collections.abc import Sequence

from anycastlb.model.config import Listener

__all__ = ["default_member", "group_listener", "group_name", "is_shared", "routes"]


def is_shared(listeners: Sequence[Listener]) -> bool:
    """Whether an endpoint's listeners are served as a group: any of them routes by hostname (a lone
    listener with hostnames too: a name it does not serve is refused, as on a shared port)."""
    return any(listener.hostnames for listener in listeners)


def group_name(listener: Listener) -> str:
    """The group's name in metrics and logs; no listener can have it (names have no ':')."""
    if listener.address.version == 6:
        return f"sni:[{listener.address}]:{listener.port}"
    return f"sni:{listener.address}:{listener.port}"


def _total(values: Sequence[float | None]) -> float | None:
    return None if any(value is None for value in values) else sum(value for value in values if value)


def _largest(values: Sequence[float | None]) -> float | None:
    return None if any(value is None for value in values) else max(value for value in values if value)


def group_listener(members: Sequence[Listener]) -> Listener:
    """The settings of the group's socket (see the module docstring), as a Listener the core and
    the Admission take; built without validation from already validated members."""
    first = members[0]
    rate = _total([member.new_connections_per_second for member in members])
    burst = _total([member.new_connections_burst for member in members])  # None: one second's worth
    source_rate = _largest([member.new_connections_per_second_per_source for member in members])
    source_burst = _largest([member.new_connections_burst_per_source for member in members])
    return first.model_copy(
        update={
            "name": group_name(first),
            "backends": (),
            "hostnames": (),
            "sni_default": False,
            "max_connections": sum(member.max_connections for member in members),
            "max_connections_per_source": max(member.max_connections_per_source for member in members),
            "new_connections_per_second": rate,
            "new_connections_burst": int(burst) if rate is not None and burst is not None else None,
            "new_connections_per_second_per_source": source_rate,
            "new_connections_burst_per_source": (
                int(source_burst) if source_rate is not None and source_burst is not None else None
            ),
            "source_prefix_v4": max(member.source_prefix_v4 for member in members),
            "source_prefix_v6": max(member.source_prefix_v6 for member in members),
            "backlog": max(member.backlog for member in members),
            "first_data_timeout": max(member.first_data_timeout for member in members),
            "client_hello_wait": max(member.client_hello_wait for member in members),
            "idle_timeout": max(member.idle_timeout for member in members),
        }
    )


def routes(members: Sequence[Listener]) -> list[tuple[str, int]]:
    """``(hostname pattern, member index)`` for every name of every member, for the core's table."""
    return [(pattern, index) for index, member in enumerate(members) for pattern in member.hostnames]


def default_member(members: Sequence[Listener]) -> int:
    """The index of the ``sni_default`` member, or -1: unmatched connections are reset."""
    return next((index for index, member in enumerate(members) if member.sni_default), -1)
