"""What a PoP reports to the control plane, built from what it runs and what its health says (pure).

Inputs are the state the edge runs (its last-known-good), the health process's latest view (the
board), whether it drains, the versions it refused, and a function that counts a listener's open
connections. The follower does the I/O around it.
"""

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from anycastlb.bgp.policy import Prefix
from anycastlb.edge.desired_listeners import listener_origins, listeners_for
from anycastlb.edge.vips import vip_serving
from anycastlb.model.addresses import parse_address
from anycastlb.model.config import Listener, MetricsEndpoint
from anycastlb.model.desired import (
    BackendStatus,
    BgpSession,
    ListenerStatus,
    PopDesiredState,
    PopProblem,
    PopStatusReport,
    ProblemListener,
)
from anycastlb.wire.health_view import HealthView, ListenerHealth

__all__ = ["Refusal", "pop_status"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A version of the desired state the edge did not apply, and why."""

    version: int
    error: str


def _listener_status(
    listener: Listener, load_balancer: str, health: ListenerHealth | None, active_connections: int
) -> ListenerStatus:
    down = health.down if health is not None else frozenset()
    weights = health.weights if health is not None else {}
    reasons = health.reasons if health is not None else {}
    backends = tuple(
        BackendStatus(
            address=backend.address,
            port=backend.port,
            up=backend.key not in down,
            weight=weights.get(backend.key),
            reason=reasons.get(backend.key)
            or ("" if backend.key not in down else "down (health checks or failed connects)"),
        )
        for backend in listener.backends
    )
    return ListenerStatus(
        load_balancer=load_balancer,
        address=listener.address,
        port=listener.port,
        protocol=listener.protocol,
        serving=health.serving if health is not None else False,
        reason="" if health is not None else "no health verdict yet",
        active_connections=active_connections,
        backends=backends,
    )


def _announced(listeners: Sequence[Listener], view: HealthView | None) -> tuple[str, ...]:
    """The VIPs the announce policy would announce: those with a serving listener. (A VIP held down
    by flap dampening is announced a little later than this says: that state lives in the bgp
    helper.)"""
    vips: dict[Prefix, list[str]] = {}
    for listener in listeners:
        if not listener.address.is_unspecified:
            vips.setdefault(ipaddress.ip_network(listener.address), []).append(listener.name)
    return tuple(sorted(str(prefix) for prefix, serving in vip_serving(vips, view).items() if serving))


def pop_status(
    pop: str,
    applied: PopDesiredState | None,
    view: HealthView | None,
    *,
    bgp: bool,
    draining: bool,
    refusals: Sequence[Refusal],
    active_connections: Callable[[str], int],
    unbound: Mapping[str, str] | None = None,
    metrics: MetricsEndpoint | None = None,
    sessions: Sequence[BgpSession] = (),
) -> PopStatusReport:
    """The report for ``applied`` (None: nothing applied yet, version 0, no listeners)."""
    applied_version = applied.version if applied is not None else 0
    statuses: list[ListenerStatus] = []
    problems: list[PopProblem] = []
    listeners: tuple[Listener, ...] = ()
    if applied is not None:
        listeners, skipped = listeners_for(applied, metrics)
        origins = listener_origins(applied, metrics)
        unbound = unbound or {}
        for listener in listeners:
            load_balancer = origins[listener.name].load_balancer_id
            reason = unbound.get(listener.name)
            if reason is not None:  # in the state, but its socket could not be opened here
                statuses.append(
                    ListenerStatus(
                        load_balancer=load_balancer,
                        address=listener.address,
                        port=listener.port,
                        protocol=listener.protocol,
                        serving=False,
                        reason=reason,
                    )
                )
                problems.append(
                    PopProblem(
                        kind="listener_unbound",
                        message=f"{listener.address} port {listener.port}/{listener.protocol} "
                        f"is not served: {reason}",
                        load_balancer=load_balancer,
                        listener=ProblemListener(
                            address=listener.address, port=listener.port, protocol=listener.protocol
                        ),
                    )
                )
                continue
            health = view.listeners.get(listener.name) if view is not None else None
            statuses.append(
                _listener_status(listener, load_balancer, health, active_connections(listener.name))
            )
        listeners = tuple(listener for listener in listeners if listener.name not in unbound)
        for item in skipped:
            statuses.append(
                ListenerStatus(
                    load_balancer=item.load_balancer_id,
                    address=parse_address(item.address),
                    port=item.port,
                    protocol=item.protocol,
                    serving=False,
                    supported=False,
                    reason=item.reason,
                )
            )
            problems.append(
                PopProblem(
                    kind="listener_unsupported",
                    message=f"{item.address} port {item.port}/{item.protocol} is not served: {item.reason}",
                    load_balancer=item.load_balancer_id,
                    listener=ProblemListener(
                        address=parse_address(item.address), port=item.port, protocol=item.protocol
                    ),
                )
            )
    for refusal in refusals:
        if refusal.version > applied_version:  # names no load balancer: PoP-wide, the admin's
            problems.append(
                PopProblem(
                    kind="version_rejected", message=f"version {refusal.version} rejected: {refusal.error}"
                )
            )
    return PopStatusReport(
        pop=pop,
        applied_version=applied_version,
        draining=draining,
        announced=_announced(listeners, view) if bgp and not draining else (),
        listeners=tuple(statuses),
        problems=tuple(problems),
        bgp_sessions=tuple(sessions) if bgp else (),
    )
