"""The contract between the tiers: load balancer specs, what one PoP must serve, and what it reports.

The Kubernetes controller (or a person with the CLI) writes a :class:`LoadBalancerSpec`; the control
plane validates it with these models, allocates its VIPs and versions it; every edge agent receives a
:class:`PopDesiredState` (all load balancers that PoP serves, with their VIPs) and reports a
:class:`PopStatusReport` back. Nothing else crosses a tier boundary (shared/DESIGN.md).

A listener's serving settings (:class:`ListenerSettings`) are the same model the edge's config file
uses, so a spec the control plane accepts is one the edge can run, field for field. The exception is
``protocol: udp``: the spec accepts it (Kubernetes Services have UDP ports), the edge reports such a
listener as unsupported instead of failing the whole state.
"""

import hashlib
import ipaddress
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from anycastlb.model.base import Frozen, IPAddress, check_name
from anycastlb.model.bounds import check_spec_size, spec_bounds
from anycastlb.model.config import ListenerSettings
from anycastlb.model.tunnel import TunnelInterface
from anycastlb.model.usage import UsageReport

__all__ = [
    "MAX_IPS_PER_LOAD_BALANCER",
    "BackendStatus",
    "BgpSession",
    "DesiredLoadBalancer",
    "IPFamily",
    "IPRequest",
    "ListenerStatus",
    "LoadBalancerSpec",
    "PopDesiredState",
    "PopProblem",
    "PopStatusReport",
    "ProblemKind",
    "ProblemListener",
]

IPFamily = Literal["ipv4", "ipv6"]
MAX_IPS_PER_LOAD_BALANCER = 16


class IPRequest(Frozen):
    """Which VIPs a load balancer gets.

    ``addresses`` asks for specific IPs (each must be free, or reserved by the same tenant, in a pool
    the tenant may use); otherwise ``count`` addresses of each family in ``families`` are allocated
    from ``pool`` (or the first pool with room: the tenant's own prefixes before the platform's).
    Load balancers of one tenant with the same ``sharing_key`` may share an IP if their ports differ,
    or on one port when every sharer's listener there names ``hostnames`` (SNI-routed sharing:
    no hostname twice, at most one ``sni_default``); tenants share only on a pool whose admin
    allows it, named in ``pool`` (docs/control-plane.md "Sharing one port by SNI").
    """

    addresses: tuple[IPAddress, ...] = ()
    families: tuple[IPFamily, ...] = ("ipv4",)
    count: Annotated[int, Field(ge=1, le=MAX_IPS_PER_LOAD_BALANCER)] = 1
    pool: str | None = None
    sharing_key: str | None = None

    @field_validator("families")
    @classmethod
    def _families(cls, value: tuple[IPFamily, ...]) -> tuple[IPFamily, ...]:
        if not value:
            raise ValueError("families must name at least one of ipv4, ipv6")
        if len(set(value)) != len(value):
            raise ValueError("families lists a family twice")
        return value

    @field_validator("addresses")
    @classmethod
    def _addresses(
        cls, value: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]
    ) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
        if len(set(value)) != len(value):
            raise ValueError("addresses lists an address twice")
        if len(value) > MAX_IPS_PER_LOAD_BALANCER:
            raise ValueError(f"at most {MAX_IPS_PER_LOAD_BALANCER} addresses per load balancer")
        return value

    @field_validator("pool")
    @classmethod
    def _pool(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "pool")

    @field_validator("sharing_key")
    @classmethod
    def _sharing_key(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "sharing_key")

    @model_validator(mode="after")
    def _total(self) -> "IPRequest":
        if not self.addresses and self.count * len(self.families) > MAX_IPS_PER_LOAD_BALANCER:
            raise ValueError(
                f"count {self.count} x {len(self.families)} families exceeds "
                f"{MAX_IPS_PER_LOAD_BALANCER} addresses per load balancer"
            )
        return self


class LoadBalancerSpec(Frozen):
    """What a tenant asks for: a name, its VIPs, its listeners (each with backends and a health
    check), and the PoPs that serve it (empty: every PoP)."""

    name: str
    ips: IPRequest = IPRequest()
    listeners: Annotated[tuple[ListenerSettings, ...], Field(min_length=1, max_length=256)]
    pops: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _within_bounds(cls, data: Any) -> Any:  # noqa: ANN401 - raw input, before validation
        """The control plane's size limits, counted before any backend is validated (model/bounds.py)."""
        bounds = spec_bounds.get()
        if bounds is not None:
            check_spec_size(data, bounds)
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "load balancer name")

    @field_validator("pops")
    @classmethod
    def _pops(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pop in value:
            check_name(pop, "pop")
        if len(set(value)) != len(value):
            raise ValueError("pops lists a PoP twice")
        return value

    @field_validator("listeners")
    @classmethod
    def _unique_ports(cls, value: tuple[ListenerSettings, ...]) -> tuple[ListenerSettings, ...]:
        seen: set[tuple[int, str]] = set()
        for listener in value:
            key = (listener.port, listener.protocol)
            if key in seen:
                raise ValueError(f"port {listener.port}/{listener.protocol} is listed twice")
            seen.add(key)
        return value

    @property
    def ports(self) -> frozenset[tuple[int, str]]:
        """``(port, protocol)`` pairs: what must not collide when load balancers share an IP."""
        return frozenset((listener.port, listener.protocol) for listener in self.listeners)

    def digest(self) -> str:
        """SHA-256 of the spec's JSON. The control plane stores it with each load balancer and a
        controller computes it from its own spec: equal digests mean the control plane already
        holds this spec, so a controller that just started need not PUT it. Both sides use this
        one function; a field added in another release only makes them differ, and then the
        spec is sent (never skipped wrongly)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


class DesiredLoadBalancer(Frozen):
    """One load balancer as a PoP receives it: its allocated VIPs and its listeners."""

    id: str
    tenant: str
    name: str
    version: int
    vips: tuple[IPAddress, ...]
    listeners: tuple[ListenerSettings, ...]


class PopDesiredState(Frozen):
    """Everything one PoP must serve. ``version`` grows with every change that concerns the PoP."""

    pop: str
    version: int
    load_balancers: tuple[DesiredLoadBalancer, ...] = ()
    # WireGuard interfaces to the nodes of the clusters this PoP serves (model/tunnel.py): one per
    # cluster, with only that cluster's node peers
    tunnels: tuple[TunnelInterface, ...] = ()


class BackendStatus(Frozen):
    address: IPAddress
    port: int
    up: bool
    weight: int | None = None  # from a k8s check (the node's ready endpoints)
    reason: str = ""


class ListenerStatus(Frozen):
    """One VIP:port of one load balancer as a PoP serves it right now."""

    load_balancer: str  # DesiredLoadBalancer.id
    address: IPAddress
    port: int
    protocol: str = "tcp"
    serving: bool  # at least one backend up (else the PoP fails open and withdraws the VIP)
    supported: bool = True  # false: the edge cannot serve this listener (the reason says why)
    reason: str = ""
    active_connections: int = 0
    backends: tuple[BackendStatus, ...] = ()


ProblemKind = Literal["listener_unsupported", "listener_unbound", "version_rejected", "other"]
_PROBLEM_KINDS: frozenset[str] = frozenset(get_args(ProblemKind))


class ProblemListener(Frozen):
    """The listener a problem concerns: one VIP:port of the load balancer named beside it."""

    address: IPAddress
    port: int
    protocol: str = "tcp"


class PopProblem(Frozen):
    """Something a PoP cannot do, named by identity so the control plane can show each tenant only
    its own: ``load_balancer`` is a :attr:`DesiredLoadBalancer.id` (None: the problem concerns the
    whole PoP, and only the admin sees it). The control plane filters on these fields, never on the
    message text: a text filter once showed a load balancer named ``a`` every other tenant's lines.

    ``kind`` is for machines (alerts, the CLI); a kind this release does not know (sent by a newer
    PoP) is read as ``other`` rather than refusing the whole report."""

    kind: ProblemKind = "other"
    message: str
    load_balancer: str | None = None
    listener: ProblemListener | None = None

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: object) -> object:
        return value if not isinstance(value, str) or value in _PROBLEM_KINDS else "other"


class BgpSession(Frozen):
    """One BGP peer of the PoP, as its speaker last said (the ``anycastlb_bgp_session_up`` gauge)."""

    peer: str
    up: bool


class PopStatusReport(Frozen):
    """What a PoP reports, every few seconds and after each change it applied."""

    pop: str
    applied_version: int  # the PopDesiredState.version the edge runs now
    draining: bool = False
    announced: tuple[str, ...] = ()  # VIP prefixes announced over BGP (empty without BGP)
    listeners: tuple[ListenerStatus, ...] = ()
    problems: tuple[PopProblem, ...] = ()
    bgp_sessions: tuple[BgpSession, ...] = ()  # empty without a bgp: block, or before a session state
    # Traffic accounting (model/usage.py); None from a PoP of an earlier release.
    usage: UsageReport | None = None

    @field_validator("problems", mode="before")
    @classmethod
    def _plain_lines(cls, value: Any) -> Any:  # noqa: ANN401 - raw JSON before validation
        """A PoP of the previous release sends problems as plain lines. They name no identity, so
        they are kept as PoP-wide problems: the admin sees them, no tenant does."""
        if isinstance(value, list | tuple):
            return [{"message": item} if isinstance(item, str) else item for item in value]
        return value
