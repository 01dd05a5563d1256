"""The sockets this edge itself listens on, and the backends that would point back at them (pure).

Defence in depth behind the control plane's backend policy (``control/backend_policy.py``): a
desired state from an older or a misconfigured control plane must still not make a tenant's VIP
serve the edge's own metrics, or a VIP relay into another VIP of the same PoP (a loop that costs
two connections per client connection until the limits trip). Such a listener is skipped and
reported (``edge/desired_listeners.py``); the other listeners are served as usual.

What counts as "this edge": the metrics endpoint, and every VIP:port of the desired state. A metrics
endpoint bound to every address (0.0.0.0 or ::) is reached by any local address with its port: a
loopback address, or any VIP. Unspecified, multicast and broadcast backends never reach the model
(``model/addresses.py`` refuses them), so there is nothing to check for them here.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from anycastlb.model.addresses import Address
from anycastlb.model.config import Backend, MetricsEndpoint

__all__ = ["OwnEndpoints", "self_backend_reason"]


@dataclass(frozen=True, slots=True)
class OwnEndpoints:
    listeners: frozenset[tuple[Address, int]]  # every VIP:port of the desired state (tcp)
    metrics: MetricsEndpoint | None

    @classmethod
    def of(cls, listeners: Iterable[tuple[Address, int]], metrics: MetricsEndpoint | None) -> "OwnEndpoints":
        return cls(frozenset(listeners), metrics)

    def is_metrics(self, backend: Backend) -> bool:
        """An unspecified metrics address is matched on either family (``::`` is often dual-stack)."""
        metrics = self.metrics
        if metrics is None or backend.port != metrics.port:
            return False
        if metrics.address.is_unspecified:
            vips = {address for address, _ in self.listeners}
            return backend.address.is_loopback or backend.address in vips
        return backend.address == metrics.address


def self_backend_reason(backends: Iterable[Backend], own: OwnEndpoints) -> str | None:
    """Why a listener with these backends must not be served here, or None."""
    for backend in backends:
        if own.is_metrics(backend):
            return f"backend {backend.key} is this edge's metrics endpoint; the listener is not served"
        if (backend.address, backend.port) in own.listeners:
            return f"backend {backend.key} is a listener of this edge (a VIP); the listener is not served"
    return None
