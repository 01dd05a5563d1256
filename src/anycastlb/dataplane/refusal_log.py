"""Log lines about refused connections at a bounded rate, whatever the flood.

A flood is thousands of refusals a second; one line each would fill the disk and cost more CPU
than the refusal itself. So a worker counts refusals per listener and reason, and on its
once-a-second sweep says what it refused since its last line, at most once per ``interval`` per
listener and reason: the first refusal is reported within a second, a lasting flood every
``interval`` seconds, with the count and the last source seen (the counters in Prometheus have
the exact totals).
"""

from dataclasses import dataclass

__all__ = ["RefusalLog"]


@dataclass(slots=True)
class _Tally:
    count: int = 0
    last_source: str = ""
    since: float = 0.0
    next_line: float = 0.0


class RefusalLog:
    """Refusals counted per ``(listener, reason)``, turned into a few lines by :meth:`lines`."""

    __slots__ = ("_tallies", "interval")

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._tallies: dict[tuple[str, str], _Tally] = {}

    def note(self, listener: str, reason: str, source: str, now: float) -> None:
        tally = self._tallies.get((listener, reason))
        if tally is None:
            tally = self._tallies[(listener, reason)] = _Tally(since=now)
        if tally.count == 0:
            tally.since = now
        tally.count += 1
        tally.last_source = source

    def note_many(self, listener: str, reason: str, count: int, source: str, now: float) -> None:
        """``count`` refusals at once (the compiled core counts them; it keeps only the last source)."""
        tally = self._tallies.get((listener, reason))
        if tally is None:
            tally = self._tallies[(listener, reason)] = _Tally(since=now)
        if tally.count == 0:
            tally.since = now
        tally.count += count
        tally.last_source = source

    def lines(self, now: float) -> list[str]:
        """The lines due at ``now`` (``key=value`` text), each tally restarting from zero."""
        due = []
        for (listener, reason), tally in self._tallies.items():
            if tally.count == 0 or now < tally.next_line:
                continue
            due.append(
                f"connections_refused listener={listener} reason={reason} count={tally.count} "
                f"seconds={max(0.0, now - tally.since):.1f} last_source={tally.last_source}"
            )
            tally.count = 0
            tally.next_line = now + self.interval
        return due
