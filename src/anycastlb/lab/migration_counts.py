"""What a provider migration cost the clients, counted from what they saw. No I/O.

The load client records every new connection it attempted (:class:`Attempt`) and every request on
each long-lived connection (:class:`SessionLog`); the orchestration records when each step started
and ended (:class:`Step`). :func:`tally` turns those records into :class:`MigrationCounts`, the
numbers the test asserts and the demo prints. The bar ("customers notice nothing"):

- every new connection succeeded (``failed == 0``), before, during and after the node swap;
- every long-lived connection opened on an old node kept answering on that node after the node had
  left the backends, and ended by the client's own close (``sessions_clean == sessions``);
- at the end new connections are served by the new nodes only.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Attempt", "MigrationCounts", "SessionLog", "Step", "render_counts", "tally"]


@dataclass(frozen=True)
class Attempt:
    """One new connection: when it started (monotonic s), which node answered, or why it failed."""

    started: float
    node: str | None
    error: str | None = None
    via: str | None = None  # the address the node saw the PoP's connection come from

    @property
    def ok(self) -> bool:
        return self.error is None and self.node is not None


@dataclass
class SessionLog:
    """One long-lived connection: the node of each answer (None: that request failed), whether the
    client closed it itself after its last answer, and any error that ended it."""

    source: str
    answers: list[tuple[float, str | None]] = field(default_factory=list)
    closed_by_client: bool = False
    error: str | None = None

    @property
    def nodes(self) -> set[str | None]:
        return {node for _, node in self.answers}

    def clean(self, old_nodes: frozenset[str], drained_at: float | None) -> bool:
        """Answered every time, always by the same old node, at least once after ``drained_at``
        (the node had left every backend set by then), and closed by the client."""
        if self.error is not None or not self.closed_by_client or not self.answers:
            return False
        nodes = self.nodes
        if len(nodes) != 1 or None in nodes or not nodes <= old_nodes:
            return False
        return drained_at is not None and self.answers[-1][0] > drained_at


@dataclass(frozen=True)
class Step:
    """One step of the migration, with its wall-clock duration (monotonic seconds)."""

    name: str
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class MigrationCounts:
    attempted: int
    failed: int
    errors: tuple[tuple[str, int], ...]  # (error, count), most frequent first
    served_by: tuple[tuple[str, int], ...]  # (node, new connections it answered), by node name
    paths: tuple[tuple[str, str], ...]  # (node, the PoP address it saw: its LAN one or a tunnel's)
    sessions: int
    sessions_clean: int
    session_requests: int
    old_nodes_after_drain: int  # new connections an old node answered after the drain step ended
    steps: tuple[Step, ...]
    rate: float  # new connections per second over the whole run

    @property
    def ok(self) -> bool:
        return (
            self.attempted > 0
            and self.failed == 0
            and self.sessions_clean == self.sessions > 0
            and self.old_nodes_after_drain == 0
        )


def tally(
    attempts: Sequence[Attempt],
    sessions: Iterable[SessionLog],
    steps: Sequence[Step],
    old_nodes: frozenset[str],
    drained_at: float | None,
) -> MigrationCounts:
    """Count ``attempts`` and ``sessions``; ``drained_at`` is when the last old node had left the
    backends (an old node answering a new connection after it is a routing failure)."""
    failed = [attempt for attempt in attempts if not attempt.ok]
    errors = Counter(attempt.error or "no answer" for attempt in failed)
    served = Counter(attempt.node for attempt in attempts if attempt.ok and attempt.node is not None)
    late = sum(
        1
        for attempt in attempts
        if attempt.ok
        and attempt.node in old_nodes
        and drained_at is not None
        and attempt.started > drained_at
    )
    listed = list(sessions)
    span = (attempts[-1].started - attempts[0].started) if len(attempts) > 1 else 0.0
    return MigrationCounts(
        attempted=len(attempts),
        failed=len(failed),
        errors=tuple(errors.most_common()),
        served_by=tuple(sorted(served.items())),
        paths=tuple(
            sorted({(attempt.node, attempt.via) for attempt in attempts if attempt.node and attempt.via})
        ),
        sessions=len(listed),
        sessions_clean=sum(1 for session in listed if session.clean(old_nodes, drained_at)),
        session_requests=sum(len(session.answers) for session in listed),
        old_nodes_after_drain=late,
        steps=tuple(steps),
        rate=(len(attempts) - 1) / span if span > 0 else 0.0,
    )


def render_counts(counts: MigrationCounts) -> list[str]:
    """The counts as lines for a terminal or a log (the demo prints them, the test on failure)."""
    return [
        f"new connections: {counts.attempted} attempted at {counts.rate:.0f}/s, {counts.failed} failed",
        *(f"  failure: {count} x {error}" for error, count in counts.errors),
        "  served by: " + ", ".join(f"{node} {count}" for node, count in counts.served_by),
        "  the PoP as each node saw it: " + ", ".join(f"{node} via {via}" for node, via in counts.paths),
        f"  answered by an old node after the drain: {counts.old_nodes_after_drain}",
        f"long-lived connections on old nodes: {counts.sessions_clean}/{counts.sessions} finished cleanly "
        f"({counts.session_requests} requests)",
        "steps:",
        *(f"  {step.name:<50} {step.seconds:6.2f} s" for step in counts.steps),
        "migration ok" if counts.ok else "migration FAILED",
    ]
