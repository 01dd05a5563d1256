"""What a PoP's desired state means for the data plane: edge listeners with stable names (pure).

The control plane sends load balancers; the data plane serves listeners. Each (load balancer, VIP,
listener settings) becomes one edge :class:`Listener` whose address is the VIP and whose settings
are copied field for field. Its name is what metrics, logs and the health board key on, so it is
readable and stable across versions: ``{tenant}-{lb name}-{port}``, plus ``-{vip index}`` for
every VIP after the first (adding a VIP renames no listener) and ``-udp`` for UDP. A name that
would be longer than 63 characters, or that two listeners would share, gets a short hash of the
listener's identity (load balancer id, VIP index, port, protocol) instead of its tail, so it stays
unique and stable.

Several load balancers may share one VIP and port when every one of them names its hostnames
(SNI routing, ``dataplane/sni_group.py``): each becomes its own listener (its own name, backends,
limits and counters) on the shared endpoint, in the order of the state.

What the data plane cannot serve is returned as :class:`Skipped` (UDP; an endpoint two load
balancers claim without hostnames, or with a hostname or the SNI default in common, which the
control plane should prevent: the first claim wins; a backend that is the edge itself, its
metrics endpoint or one of its VIPs; settings the edge refuses), never as an
error: one tenant's odd listener must not stop a PoP from following the rest of its state.
"""

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from pydantic import ValidationError

from anycastlb.edge.own_endpoints import OwnEndpoints, self_backend_reason
from anycastlb.model.config import ConfigError, EdgeConfig, Listener, ListenerSettings, MetricsEndpoint
from anycastlb.model.desired import DesiredLoadBalancer, PopDesiredState

__all__ = [
    "ListenerOrigin",
    "Skipped",
    "edge_config_for",
    "listener_name",
    "listener_origins",
    "listeners_for",
]

_MAX_NAME = 63
_HASH_LENGTH = 8
_INVALID = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A listener of the desired state this edge does not serve, and why."""

    load_balancer_id: str
    address: str
    port: int
    protocol: str
    reason: str


@dataclass(frozen=True, slots=True)
class ListenerOrigin:
    """Where an edge listener came from: what a status report names it by."""

    load_balancer_id: str
    address: str
    port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class _Planned:
    load_balancer: DesiredLoadBalancer
    vip_index: int
    settings: ListenerSettings

    @property
    def address(self) -> str:
        return str(self.load_balancer.vips[self.vip_index])

    @property
    def identity(self) -> str:
        lb, settings = self.load_balancer, self.settings
        return f"{lb.id}|{self.vip_index}|{settings.port}|{settings.protocol}"


def _slug(text: str) -> str:
    return _DASHES.sub("-", _INVALID.sub("-", text.lower())).strip("-")


def _name_parts(planned: _Planned) -> tuple[str, str]:
    """``(stem, tail)``: who (tenant, load balancer) and which socket (port, VIP index, protocol)."""
    lb, settings = planned.load_balancer, planned.settings
    tail = [str(settings.port)]
    if planned.vip_index > 0:  # the first VIP keeps its name when a second one is added
        tail.append(str(planned.vip_index))
    if settings.protocol != "tcp":
        tail.append(settings.protocol)
    stem = "-".join(part for part in (_slug(lb.tenant), _slug(lb.name)) if part)
    return stem, "-".join(tail)


def _readable_name(planned: _Planned) -> str:
    stem, tail = _name_parts(planned)
    return f"{stem}-{tail}" if stem else tail


def _hashed_name(planned: _Planned) -> str:
    """The stem cut short and a hash of the identity before the tail: unique, and still says which
    port it is (``a-long-tenant-a-long-l-1f2e3d4c-443``)."""
    stem, tail = _name_parts(planned)
    digest = hashlib.sha256(planned.identity.encode()).hexdigest()[:_HASH_LENGTH]
    room = _MAX_NAME - len(tail) - _HASH_LENGTH - 2
    head = stem[:room].rstrip("-")
    return "-".join(part for part in (head, digest, tail) if part)


def listener_name(load_balancer: DesiredLoadBalancer, vip_index: int, settings: ListenerSettings) -> str:
    """The name of one listener on its own (without the uniqueness pass of :func:`listeners_for`)."""
    planned = _Planned(load_balancer, vip_index, settings)
    readable = _readable_name(planned)
    return readable if len(readable) <= _MAX_NAME else _hashed_name(planned)


def _own_endpoints(state: PopDesiredState, metrics: MetricsEndpoint | None) -> OwnEndpoints:
    return OwnEndpoints.of(
        (
            (vip, settings.port)
            for lb in state.load_balancers
            for vip in lb.vips
            for settings in lb.listeners
            if settings.protocol == "tcp"
        ),
        metrics,
    )


def _sharing_refusal(owner: str, held: ListenerSettings, settings: ListenerSettings, where: str) -> str:
    """Why ``settings`` may not share ``where`` with the listener of load balancer ``owner``, or ""."""
    if not held.hostnames or not settings.hostnames:
        return f"{where} is served by load balancer {owner}"
    common = sorted(set(held.hostnames) & set(settings.hostnames))
    if common:
        return f"hostname {common[0]!r} on {where} is served by load balancer {owner}"
    if held.sni_default and settings.sni_default:
        return f"load balancer {owner} is already the sni_default of {where}"
    return ""


def _plan(state: PopDesiredState, metrics: MetricsEndpoint | None) -> tuple[list[_Planned], list[Skipped]]:
    """Every (load balancer, VIP, listener) the edge can serve; of clashing claims on one endpoint
    the first wins (sharers naming disjoint hostnames all get it)."""
    planned: list[_Planned] = []
    skipped: list[Skipped] = []
    owners: dict[tuple[str, int, str], list[tuple[str, ListenerSettings]]] = {}
    own = _own_endpoints(state, metrics)
    for lb in state.load_balancers:
        for vip_index, vip in enumerate(lb.vips):
            for settings in lb.listeners:
                endpoint = (str(vip), settings.port, settings.protocol)
                where = f"{vip} port {settings.port}/{settings.protocol}"
                held = owners.get(endpoint, [])
                reason = ""
                if settings.protocol == "udp":
                    reason = "udp listeners are not supported by this data plane yet"
                for owner, other in held:
                    reason = reason or _sharing_refusal(owner, other, settings, where)
                reason = reason or self_backend_reason(settings.backends, own) or ""
                if reason:
                    skipped.append(Skipped(lb.id, str(vip), settings.port, settings.protocol, reason))
                    continue
                owners.setdefault(endpoint, []).append((lb.id, settings))
                planned.append(_Planned(lb, vip_index, settings))
    return planned, skipped


def _names(planned: list[_Planned]) -> list[str]:
    """Readable names; every name two listeners would share, or too long, gets its identity's hash."""
    readable = [_readable_name(item) for item in planned]
    counts: dict[str, int] = {}
    for name in readable:
        counts[name] = counts.get(name, 0) + 1
    return [
        name if len(name) <= _MAX_NAME and counts[name] == 1 else _hashed_name(item)
        for name, item in zip(readable, planned, strict=True)
    ]


def _build(
    state: PopDesiredState, metrics: MetricsEndpoint | None
) -> tuple[list[tuple[Listener, _Planned]], list[Skipped]]:
    planned, skipped = _plan(state, metrics)
    built: list[tuple[Listener, _Planned]] = []
    for name, item in zip(_names(planned), planned, strict=True):
        try:
            listener = Listener.model_validate(
                {**item.settings.model_dump(), "name": name, "address": item.address}
            )
        except ValidationError as error:
            message = "; ".join(problem["msg"].removeprefix("Value error, ") for problem in error.errors())
            reason = f"the edge refuses these settings: {message}"
            settings = item.settings
            skipped.append(
                Skipped(item.load_balancer.id, item.address, settings.port, settings.protocol, reason)
            )
            continue
        built.append((listener, item))
    return built, skipped


def listeners_for(
    state: PopDesiredState, metrics: MetricsEndpoint | None
) -> tuple[tuple[Listener, ...], tuple[Skipped, ...]]:
    """The edge listeners of a desired state, and what it skipped (with reasons). ``metrics``: the
    edge's own metrics endpoint, which no backend may name (``edge/own_endpoints.py``)."""
    built, skipped = _build(state, metrics)
    return tuple(listener for listener, _ in built), tuple(skipped)


def listener_origins(state: PopDesiredState, metrics: MetricsEndpoint | None) -> dict[str, ListenerOrigin]:
    """Listener name → the load balancer, VIP, port and protocol it serves (for status reports)."""
    built, _ = _build(state, metrics)
    return {
        listener.name: ListenerOrigin(
            item.load_balancer.id, str(listener.address), listener.port, listener.protocol
        )
        for listener, item in built
    }


def edge_config_for(base: EdgeConfig, state: PopDesiredState) -> EdgeConfig:
    """The config the edge runs: the base's workers, metrics, bgp, drain and relay settings, and the
    listeners of the desired state; its tunnels are the base's (if any) and the desired state's.

    Per-VIP BGP attributes (``bgp.vips``) of the base apply to the VIPs the state has; those of VIPs
    it does not have (yet, or any more) are left out instead of making every state invalid.
    """
    if base.listeners:
        raise ConfigError(
            "in --control mode listeners come from the control plane; remove listeners: from base.yaml"
        )
    if state.pop != base.pop:
        raise ConfigError(
            f"the desired state is for PoP {state.pop!r} but this edge is PoP {base.pop!r}; "
            "check --pop and pop: in base.yaml"
        )
    listeners, _ = listeners_for(state, base.metrics)
    bgp = base.bgp
    if bgp is not None:
        vips = {str(ipaddress.ip_network(listener.address)) for listener in listeners}
        bgp = bgp.model_copy(update={"vips": tuple(vip for vip in bgp.vips if vip.prefix in vips)})
    tunnels = (*base.tunnels, *state.tunnels)
    base_names = {tunnel.name for tunnel in base.tunnels}
    for tunnel in state.tunnels:
        if tunnel.name in base_names:
            raise ConfigError(
                f"desired state version {state.version}: tunnel interface {tunnel.name!r} is also in "
                "base.yaml; remove it from base.yaml (the control plane manages it)"
            )
    try:
        # dumped, not dict(base): a dump writes durations with their unit, as validation wants them
        kept = base.model_dump(exclude={"listeners", "bgp", "tunnels"})
        return EdgeConfig.model_validate({**kept, "listeners": listeners, "bgp": bgp, "tunnels": tunnels})
    except ValidationError as error:
        problems = "; ".join(problem["msg"].removeprefix("Value error, ") for problem in error.errors())
        raise ConfigError(f"desired state version {state.version} is invalid: {problems}") from None
