"""A provider migration under load, as the controller sees it: every node replaced, nobody notices.

Theory of operation
-------------------
The cluster starts on provider A's nodes (reached directly by the PoP). Clients open new
connections at a fixed rate, and a few long-lived connections sit on old nodes. Then, step by step,
each step timed and each wait a condition (never a fixed sleep):

1. **new nodes start** in provider B's network, behind NAT: nginx answering first, and each node's
   tunnel agent waiting for its config;
2. **new Nodes join**: Node objects are created; the controller registers them with the control
   plane, which gives each a key and a tunnel address, puts them as peers in the PoP's desired
   state and (through the controller's Secret) in the node's config; the agents dial the PoP, the
   controller makes the tunnel addresses the backends; done once the edge runs old + new and every
   new node has served a new connection (through its tunnel);
3. **old Nodes tainted** ``ToBeDeletedByClusterAutoscaler`` (what the cluster autoscaler does before
   it deletes a node): the controller drops them from the backends; done once the edge runs only
   the new nodes. From then on no new connection may reach an old node, while the long-lived ones
   keep answering on theirs: the edge never cuts a connection because its backend left the set;
4. **long-lived connections finish**: each asks once more, then the client closes it; done once
   the edge reports no open connection to an old node (what an operator waits for);
5. **old Nodes deleted**: the Node objects go (the backends do not change: they had left already);
6. **old nodes removed**: their nginx stops and their namespaces (the machines) are deleted.

The load runs through all of it, for ``hold`` seconds' worth of new connections before, between the
old and the new backend sets and after; :func:`~anycastlb.lab.migration_counts.tally`
counts what the clients saw. What the cluster is (the Kubernetes API, the controller, the control
plane, the edge) is behind :class:`Cluster`, so this module holds no Kubernetes client. Nodes
advertise their own address; which address the PoP connects to for a node is
:meth:`Cluster.reach` (the node's own for provider A, its tunnel address for provider B, known once
the control plane registered it), and every wait on the edge's backend set is phrased in those.
"""

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from anycastlb.lab.migration_counts import MigrationCounts, SessionLog, Step, tally
from anycastlb.lab.migration_lab import MigrationLab
from anycastlb.lab.migration_load import LongLived, NewConnections
from anycastlb.lab.migration_net import LabNodeSpec

__all__ = ["Cluster", "Migration", "MigrationError"]

_STEP_TIMEOUT = 20.0


class MigrationError(RuntimeError):
    """A step did not reach its condition in time; the message says which and what was seen."""


class Cluster(Protocol):
    """The cluster as the migration drives it (Kubernetes objects) and observes it (the PoP)."""

    def join(self, node: LabNodeSpec) -> None:
        """Create the Node object: its name, its own address, its labels (a tunnelled one's included)."""

    def taint(self, name: str) -> None:
        """Taint the Node ``ToBeDeletedByClusterAutoscaler`` (the autoscaler's deletion mark)."""

    def remove(self, name: str) -> None:
        """Delete the Node object."""

    def reach(self, node: LabNodeSpec, timeout: float) -> str:
        """The backend address the PoP connects to for ``node`` (waits until it has one)."""

    def wait_edge_backends(self, addresses: frozenset[str], timeout: float) -> None:
        """Return once the PoP's edge runs exactly ``addresses`` as the Service's backends."""

    def open_connections(self, addresses: frozenset[str]) -> int:
        """Connections the PoP's edge holds open to these nodes (what an operator watches before
        deleting them: ``anycastlb_backend_connections_active``)."""


class Migration:
    """Replace ``old`` nodes by ``new`` ones under load; :meth:`run` returns the counts.

    ``node_port`` is the Service's nodePort, ``health_port`` its healthCheckNodePort (None unless
    ``externalTrafficPolicy: Local``): the new nodes serve both before they join."""

    def __init__(
        self,
        lab: MigrationLab,
        cluster: Cluster,
        target: tuple[str, int],
        node_port: int,
        health_port: int | None,
        old: Sequence[LabNodeSpec],
        new: Sequence[LabNodeSpec],
        sources: Sequence[str],
        *,
        rate: float = 60.0,
        hold: float = 1.0,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.lab, self.cluster, self.target = lab, cluster, target
        self.node_port, self.health_port = node_port, health_port
        self.old, self.new, self.sources = tuple(old), tuple(new), tuple(sources)
        self.rate, self.hold, self.progress = rate, hold, progress
        self.steps: list[Step] = []

    def _addresses(self, nodes: Sequence[LabNodeSpec]) -> frozenset[str]:
        return frozenset(self.cluster.reach(node, _STEP_TIMEOUT) for node in nodes)

    def _step(self, name: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        action()
        self.steps.append(Step(name, started, time.monotonic()))
        self.progress(f"{name}: {self.steps[-1].seconds:.2f} s")

    def open_long_lived(self) -> list[LongLived]:
        """One long-lived connection per old node: sources are tried until each node holds one."""
        held: dict[str, LongLived] = {}
        try:
            for source in self.sources:
                session = LongLived(*self.target, source)
                if session.node is None or session.node in held:
                    session.finish()
                    continue
                held[session.node] = session
                if len(held) == len(self.old):
                    break
        except BaseException:
            for session in held.values():
                session.abort()
            raise
        return list(held.values())

    def run(self) -> MigrationCounts:
        load = NewConnections(*self.target, self.sources, self.rate).start()
        sessions: list[LongLived] = []
        logs: list[SessionLog] = []
        drained_at: float | None = None
        try:
            sessions = self.open_long_lived()
            self._hold(load, "before the migration")
            self._step("new nodes start (provider B)", self._start_new)
            self._step("new Nodes join the backends", lambda: self._join(load))
            self._hold(load, "with old and new nodes")
            self._step("old Nodes tainted ToBeDeletedByClusterAutoscaler", self._taint)
            drained_at = time.monotonic()
            self._hold(load, "after the old nodes left the backends")
            self._step("long-lived connections finish", lambda: self._finish(sessions, logs))
            self._step("old Node objects deleted", self._delete_objects)
            self._step("old nodes stopped, namespaces removed", self._remove_old)
            self._hold(load, "after the old nodes went")
        finally:
            attempts = load.stop()
            for session in sessions:
                session.abort()
        return tally(attempts, logs, self.steps, frozenset(node.name for node in self.old), drained_at)

    def _hold(self, load: NewConnections, when: str) -> None:
        """Let the load run for ``hold`` seconds' worth of new connections (counted, not slept)."""
        since = time.monotonic()
        wanted = max(1, round(self.rate * self.hold))
        _wait_for(lambda: len(load.served_since(since)) >= wanted, f"{wanted} new connections {when}")

    def _start_new(self) -> None:
        for node in self.new:
            self.lab.start_node(node, self.node_port, self.health_port)

    def _join(self, load: NewConnections) -> None:
        since = time.monotonic()
        for node in self.new:
            self.cluster.join(node)
        self.cluster.wait_edge_backends(self._addresses((*self.old, *self.new)), _STEP_TIMEOUT)
        wanted = {node.name for node in self.new}
        _wait_for(
            lambda: wanted <= {attempt.node for attempt in load.served_since(since)},
            f"new connections answered by every new node ({', '.join(sorted(wanted))})",
        )

    def _taint(self) -> None:
        for node in self.old:
            self.cluster.taint(node.name)
        self.cluster.wait_edge_backends(self._addresses(self.new), _STEP_TIMEOUT)

    def _finish(self, sessions: list[LongLived], logs: list[SessionLog]) -> None:
        """The clients end their long-lived connections; done once the edge holds none to an old
        node (the signal to delete them)."""
        old = self._addresses(self.old)
        held = self.cluster.open_connections(old)
        if held < len(sessions):
            raise MigrationError(
                f"the edge reports {held} open connections to the old nodes while the clients hold "
                f"{len(sessions)}: it cut some, or its metric misses connections to removed backends"
            )
        logs.extend(session.finish() for session in sessions)
        _wait_for(
            lambda: self.cluster.open_connections(old) == 0, "the edge to hold no connection to an old node"
        )

    def _delete_objects(self) -> None:
        for node in self.old:
            self.cluster.remove(node.name)
        self.cluster.wait_edge_backends(self._addresses(self.new), _STEP_TIMEOUT)

    def _remove_old(self) -> None:
        for node in self.old:
            self.lab.remove_node(node)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = _STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise MigrationError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)
