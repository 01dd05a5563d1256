"""A listener's backends as the hot path needs them: socket addresses, stats, and a Maglev table.

Built once per configuration change (a reload, later a health transition) by a pure function of
the listener's config, so every worker and every PoP derives the same table for the same set.
Connections keep a reference to the :class:`BackendTarget` they use, so swapping the set never
disturbs an open connection.
"""

import socket
from dataclasses import dataclass

from anycastlb.dataplane.maglev import MaglevBackend, MaglevTable, client_key
from anycastlb.dataplane.metrics import BackendStats
from anycastlb.model.config import Listener

__all__ = ["BackendSet", "BackendTarget"]


@dataclass(slots=True, eq=False)
class BackendTarget:
    """One backend: where to connect and what to count."""

    key: str
    family: int
    sockaddr: tuple[str, int]
    stats: BackendStats


class BackendSet:
    """The backends a listener may pick from, and the Maglev table that picks."""

    __slots__ = ("table", "targets")

    def __init__(self, listener: Listener, previous: "BackendSet | None" = None) -> None:
        reuse = {target.key: target for target in previous.targets} if previous else {}
        targets: list[BackendTarget] = []
        for backend in listener.backends:
            if backend.weight == 0:
                continue  # weight 0 = administratively drained: no new connections
            target = reuse.get(backend.key)
            if target is None:
                family = socket.AF_INET6 if backend.address.version == 6 else socket.AF_INET
                target = BackendTarget(
                    key=backend.key,
                    family=family,
                    sockaddr=(str(backend.address), backend.port),
                    stats=BackendStats(listener=listener.name, backend=backend.key),
                )
            targets.append(target)
        weights = {backend.key: backend.weight for backend in listener.backends}
        self.targets: tuple[BackendTarget, ...] = tuple(targets)
        self.table = MaglevTable([MaglevBackend(t.key, weights[t.key]) for t in targets])

    def candidates(self, client_address: str, limit: int) -> list[BackendTarget]:
        """Backends to try for a client address, best first; empty when there is none."""
        if not self.targets:
            return []
        targets = self.targets
        return [targets[index] for index in self.table.candidates(client_key(client_address), limit)]
