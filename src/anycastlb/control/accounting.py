"""Traffic accounting's arithmetic (pure): cumulative reports in, per-interval deltas out; deltas
into the steps a query asks for.

A PoP sends, with each status report, the cumulative counters of each listener since its counter
*epoch* began (model/usage.py). The control plane keeps the values it last stored per (PoP,
listener), the *cursor*, and stores what grew since:

- same epoch, every value at or above the cursor: the difference;
- another epoch (the edge restarted), or the same epoch with any value below the cursor (its
  counters started again some other way): the counters began again from zero, so the whole new
  value is new traffic. All three values of a listener are treated together: they are reset
  together, and a reset hidden in one of them would count the others twice;
- a listener without a cursor: new, its whole value is new.

A report also carries a *sequence* that grows within an epoch. One whose sequence is not above the
stored one (same epoch) is stale: sent before a report already stored, delivered late (a request
the edge gave up on, committed by one replica after the next report was committed by another). It
is ignored: taken as counters, its lower values would read as a reset and count twice.

A report that never arrives loses nothing: the next carries the same totals and more. What is lost
is only what an edge counted after its last accepted report and before it stopped (the follower
sends a last report after the workers finished, so a clean stop loses nothing).

Deltas are stored in buckets of :data:`RESOLUTION` seconds by the time the control plane received
them; a query sums buckets into steps that are multiples of it, starting at ``since``.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "RESOLUTION",
    "Counts",
    "Window",
    "WindowError",
    "advance",
    "bucket_start",
    "into_steps",
    "is_stale",
    "window",
]

RESOLUTION = 60  # seconds: the stored buckets; a query's step is a multiple of it
MAX_POINTS = 10_000  # steps per query


@dataclass(frozen=True, slots=True)
class Counts:
    bytes_in: int = 0
    bytes_out: int = 0
    connections: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(
            self.bytes_in + other.bytes_in,
            self.bytes_out + other.bytes_out,
            self.connections + other.connections,
        )

    def __sub__(self, other: "Counts") -> "Counts":
        return Counts(
            self.bytes_in - other.bytes_in,
            self.bytes_out - other.bytes_out,
            self.connections - other.connections,
        )

    def covers(self, other: "Counts") -> bool:
        """Every value at least ``other``'s: the same counters, grown (or not)."""
        return (
            self.bytes_in >= other.bytes_in
            and self.bytes_out >= other.bytes_out
            and self.connections >= other.connections
        )

    def __bool__(self) -> bool:
        return bool(self.bytes_in or self.bytes_out or self.connections)


def advance(
    stored_epoch: str | None,
    cursors: Mapping[str, Counts],
    epoch: str,
    current: Mapping[str, Counts],
) -> dict[str, Counts]:
    """What each listener of a report adds: ``current`` (cumulative, under ``epoch``) against the
    ``cursors`` stored under ``stored_epoch``. The new cursors are ``current`` (under ``epoch``);
    cursors of listeners the report does not name are kept only while the epoch stays."""
    deltas: dict[str, Counts] = {}
    same_epoch = stored_epoch == epoch
    for listener, value in current.items():
        before = cursors.get(listener) if same_epoch else None
        if before is None or not value.covers(before):
            deltas[listener] = value  # new, or counting again from zero
        else:
            deltas[listener] = value - before
    return deltas


def is_stale(stored: tuple[str, int] | None, epoch: str, sequence: int) -> bool:
    """A report older than the one stored: same epoch, sequence not above (``stored``: the stored
    report's epoch and sequence; None: none yet)."""
    return stored is not None and stored[0] == epoch and sequence <= stored[1]


def bucket_start(moment: datetime) -> datetime:
    """The start of the stored bucket ``moment`` falls in (aware UTC in, aware UTC out)."""
    seconds = int(moment.timestamp()) // RESOLUTION * RESOLUTION
    return datetime.fromtimestamp(seconds, tz=moment.tzinfo)


class WindowError(ValueError):
    """A query window the store cannot answer; the message says what to send instead."""


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime  # aligned to RESOLUTION, inclusive
    until: datetime  # aligned to RESOLUTION, exclusive
    step: int  # seconds, a multiple of RESOLUTION

    def index(self, start: datetime) -> int:
        return int((start - self.since).total_seconds()) // self.step

    def step_start(self, index: int) -> datetime:
        return self.since + timedelta(seconds=index * self.step)


def window(since: datetime, until: datetime, step: float) -> Window:
    """The window a query covers: ``since`` rounded down and ``until`` up to whole buckets."""
    if step < RESOLUTION or step % RESOLUTION:
        raise WindowError(f"step must be a multiple of {RESOLUTION}s (the stored resolution), got {step:g}s")
    start, end = bucket_start(since), bucket_start(until)
    if end < until:
        end += timedelta(seconds=RESOLUTION)
    if end <= start:
        raise WindowError(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    points = -(-int((end - start).total_seconds()) // int(step))
    if points > MAX_POINTS:
        raise WindowError(
            f"{points} steps of {step:g}s between since and until; at most {MAX_POINTS}: ask for a "
            "larger step or a shorter window"
        )
    return Window(start, end, int(step))


def into_steps(window: Window, buckets: Iterable[tuple[datetime, Counts]]) -> dict[datetime, Counts]:
    """Sum stored buckets into the window's steps (keyed by each step's start); steps without
    traffic are left out, buckets outside the window ignored."""
    steps: dict[int, Counts] = {}
    for start, counts in buckets:
        if window.since <= start < window.until:
            index = window.index(start)
            steps[index] = steps.get(index, Counts()) + counts
    return {window.step_start(index): steps[index] for index in sorted(steps)}
