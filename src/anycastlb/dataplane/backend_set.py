"""A listener's backends as the hot path needs them: socket addresses, stats, a Maglev table, health.

Built once per configuration change by a pure function of the listener's config, so every worker and
every PoP derives the same table for the same set. Health is an overlay, not a rebuild: unhealthy
backends keep their slots and the candidate walk passes over them (see ``MaglevTable.candidates``), so
an ejection costs the worker nothing and moves only the sick backend's clients. Only a change of
weight (a k8s check reporting a new count of local endpoints) builds a new table, and recent tables are
cached, so a weight that flaps between two values builds each table once.

Fail open: when every backend is unhealthy the set ignores health and offers all of them. Health
checks can be wrong (a firewall that drops only the check port), connects are retried anyway, and the
BGP announcer withdraws the VIP of a listener that is not serving, so this only covers the moments
before the network converges.

Connections keep a reference to the :class:`BackendTarget` they use, so swapping the set never
disturbs an open connection.
"""

import functools
import socket
from dataclasses import dataclass

from anycastlb.dataplane.maglev import MaglevBackend, MaglevTable, client_key
from anycastlb.dataplane.metrics import BackendStats
from anycastlb.model.config import Listener
from anycastlb.wire.health_view import ListenerHealth

__all__ = ["BackendSet", "BackendTarget"]


@dataclass(slots=True, eq=False)
class BackendTarget:
    """One backend: where to connect and what to count."""

    key: str
    family: int
    sockaddr: tuple[str, int]
    stats: BackendStats


@functools.lru_cache(maxsize=16)
def _table(weights: tuple[tuple[str, int], ...]) -> MaglevTable:
    return MaglevTable([MaglevBackend(key, weight) for key, weight in weights])


class BackendSet:
    """The backends a listener may pick from, and the Maglev table that picks."""

    __slots__ = ("_local_down", "_reported_down", "down", "healthy", "table", "targets")

    def __init__(
        self, listener: Listener, previous: "BackendSet | None" = None, health: ListenerHealth | None = None
    ) -> None:
        reuse = {target.key: target for target in previous.targets} if previous else {}
        targets: list[BackendTarget] = []
        weights: list[tuple[str, int]] = []
        reported = health.weights if health else {}
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
            weights.append((backend.key, reported.get(backend.key) or backend.weight))
        self.targets: tuple[BackendTarget, ...] = tuple(targets)
        self.table = _table(tuple(weights))
        # Local ejections by this worker's own failed connects: index -> when. Kept across a rebuild
        # until a health view shows the health process has read the report (see ``apply_view``).
        self._local_down: dict[int, float] = {}
        if previous is not None:
            index = {target.key: i for i, target in enumerate(targets)}
            for old, since in previous._local_down.items():
                new = index.get(previous.targets[old].key)
                if new is not None:
                    self._local_down[new] = since
        self._reported_down: frozenset[int] = frozenset()
        if health is not None:
            self._reported_down = frozenset(i for i, t in enumerate(targets) if t.key in health.down)
        self.down: frozenset[int] = frozenset()  # what the candidate walk skips
        self.healthy = True  # at least one backend is up
        self._refresh()

    def _refresh(self) -> None:
        down = self._reported_down | self._local_down.keys()
        self.healthy = len(down) < len(self.targets)
        self.down = down if self.healthy else frozenset()  # fail open when none is up

    def apply_view(self, health: ListenerHealth, reports_through: float) -> None:
        """Take the health process's verdicts; drop local ejections it has now taken into account."""
        self._local_down = {i: t for i, t in self._local_down.items() if t > reports_through}
        self._reported_down = frozenset(i for i, t in enumerate(self.targets) if t.key in health.down)
        self._refresh()

    def eject_locally(self, target: BackendTarget, now: float) -> None:
        """A connect to ``target`` failed here: skip it until the health process has ruled on it."""
        for index, candidate in enumerate(self.targets):
            if candidate is target:
                self._local_down[index] = now
                self._refresh()
                return

    def candidates(self, client_address: str, limit: int) -> list[BackendTarget]:
        """Backends to try for a client address, best first; empty when there is none."""
        if not self.targets:
            return []
        targets = self.targets
        indices = self.table.candidates(client_key(client_address), limit, self.down)
        return [targets[index] for index in indices]
