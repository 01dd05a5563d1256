"""When to log a failure that repeats every few seconds: the first, each change of cause, then one
line per ``every`` seconds counting the repeats, and one line when it recovers.

Leader election retries the Lease every 2 s; an API server that is down for an hour would
otherwise write 1,800 identical warnings, burying the line that said what went wrong first.
Pure: the caller passes the clock and does the logging.
"""

from dataclasses import dataclass

__all__ = ["Recovery", "RepeatedFailure"]


@dataclass(frozen=True, slots=True)
class Recovery:
    failures: int  # failed attempts in a row, all told
    seconds: float  # from the first of them to the recovery
    cause: str  # the last one


@dataclass
class RepeatedFailure:
    every: float = 60.0  # at most one line per cause this often while it repeats
    _cause: str | None = None
    _first_at: float = 0.0
    _logged_at: float = 0.0
    _unlogged: int = 0  # failures since the last line
    _failures: int = 0  # in a row, since the first

    def failed(self, cause: str, now: float) -> int | None:
        """Record one failure; the number of repeats the line to log now stands for (0 for a first
        or changed cause), or None to log nothing."""
        if self._failures == 0:
            self._first_at = now
        self._failures += 1
        if cause != self._cause or now - self._logged_at >= self.every:
            repeats = self._unlogged if cause == self._cause else 0
            self._cause, self._logged_at, self._unlogged = cause, now, 0
            return repeats
        self._unlogged += 1
        return None

    def succeeded(self, now: float) -> Recovery | None:
        """Record a success; what to log if it ends a run of failures, else None."""
        if self._failures == 0:
            return None
        recovery = Recovery(self._failures, now - self._first_at, self._cause or "")
        self._cause, self._unlogged, self._failures = None, 0, 0
        return recovery
