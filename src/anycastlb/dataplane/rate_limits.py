"""New-connection rate limits shared by all worker processes, without locks.

Theory of operation. A rate limit is given as a token bucket: ``rate`` connections per second and a
``burst``. A true token bucket keeps one level that every admission reads, refills and decrements:
a read-modify-write of one shared word, which needs an atomic compare-and-swap across processes,
and Python has none on an ``mmap``. So each key (a listener, or a listener and a source prefix) is
kept as a **sliding window** of length ``W = burst / rate`` in **per-worker rows**, the same shape as
the concurrent-connection counters in ``limits.py``: a worker writes only its own row (no lost
updates), and a decision reads the sum over all rows.

Per worker and bucket there are two slots, for the current fixed window and the previous one
(chosen by the window number's parity), each ``(window number mod 2^32, connections admitted)``.
With ``f`` the fraction of the current window already elapsed, the estimate of connections in
the last ``W`` seconds is ``current + previous * (1 - f)``; a connection is admitted while the
estimate is below ``burst``, and only admitted connections are recorded (a refused attempt takes
no token, as with a bucket, so a flooding source still gets its ``rate`` through).

Error bound, against an exact token bucket of the same rate and burst:

- *long run*: a fixed window never counts more than ``burst`` admissions (the estimate includes
  the whole current window), so the average rate is at most ``rate``, like the bucket;
- *short run*: any interval of length ``W`` spans two fixed windows, so it admits at most
  ``2 * burst``, which is exactly what a token bucket allows over ``W`` (``burst + rate * W``);
- *across workers*: reading the sum and recording are two steps, so workers deciding in the same
  instant may each admit the last token: at most ``workers - 1`` connections over the limit per
  window (each worker has at most one decision in flight);
- *buckets*: keys are hashed into :data:`RATE_BUCKETS` buckets (see ``limits.py`` for why hashed,
  fixed-size); two keys sharing a bucket share a limit.

A torn read costs nothing unsafe: a worker moving a slot to a new window writes the window number
first and then the count, so a reader in between sees the old count under the new number, an
overestimate that can only refuse. The clock is ``CLOCK_MONOTONIC`` (``time.monotonic``), one for
the whole machine, so every worker numbers windows alike.

Memory layout (for the compiled core of issue 12, which must read and update the same table):
one anonymous ``MAP_SHARED`` block of native-endian ``uint32``; the slot of ``(worker, bucket,
slot)`` starts at index ``((worker * RATE_BUCKETS + bucket) * 2 + slot) * 2`` and holds
``[window number mod 2^32, count]``; ``slot = window number & 1``, ``window number =
floor(CLOCK_MONOTONIC seconds / W)``.
"""

import mmap
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["RATE_BUCKETS", "RateLimit", "RateWindows"]

RATE_BUCKETS = 1 << 16
_MASK = RATE_BUCKETS - 1
_WORDS_PER_BUCKET = 4  # two slots of (window number, count)
_U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket's parameters, as the sliding window uses them."""

    burst: int
    window: float  # seconds: burst / rate

    @classmethod
    def of(cls, rate: float | None, burst: int | None) -> "RateLimit | None":
        """``None`` when there is no rate; the burst defaults to one second's worth (at least 1)."""
        if rate is None:
            return None
        burst = burst if burst is not None else max(1, round(rate))
        return cls(burst, burst / rate)


class RateWindows:
    """Per-worker rows of two-slot sliding windows in shared memory (see the module docstring)."""

    __slots__ = ("_memory", "_mine", "_rows", "_view", "workers")

    def __init__(self, workers: int) -> None:
        self.workers = workers
        row_words = RATE_BUCKETS * _WORDS_PER_BUCKET
        self._memory = mmap.mmap(-1, workers * row_words * 4)  # anonymous + MAP_SHARED
        self._view = memoryview(self._memory).cast("I")
        self._rows = tuple(worker * row_words for worker in range(workers))
        self._mine = 0

    def bind_worker(self, worker: int) -> None:
        """Called in a worker after fork: records go to its row from now on.

        A replacement for a dead worker takes over its row as it is: the connections it recorded
        were made, so they still count against the window."""
        self._mine = self._rows[worker]

    @staticmethod
    def bucket(key: Hashable) -> int:
        """Bucket of a key; stable within one agent (forked workers share the hash seed)."""
        return hash(key) & _MASK

    def admits(self, bucket: int, limit: RateLimit, now: float) -> bool:
        """Would one more connection keep the bucket's estimate below the burst? Reads only."""
        return self.estimate(bucket, limit.window, now) < limit.burst

    def estimate(self, bucket: int, window: float, now: float) -> float:
        """Connections admitted in the last ``window`` seconds, as the sliding window estimates it."""
        position = now / window
        number = int(position)
        current = number & _U32
        previous = (number - 1) & _U32
        view = self._view
        in_current = in_previous = 0
        start = bucket * _WORDS_PER_BUCKET
        for row in self._rows:
            index = row + start
            for slot in (index, index + 2):
                seen = view[slot]
                if seen == current:
                    in_current += view[slot + 1]
                elif seen == previous:
                    in_previous += view[slot + 1]
        return in_current + in_previous * (1.0 - (position - number))

    def record(self, bucket: int, limit: RateLimit, now: float) -> None:
        """Count one admitted connection in this worker's row."""
        number = int(now / limit.window)
        index = self._mine + bucket * _WORDS_PER_BUCKET + (number & 1) * 2
        view = self._view
        if view[index] == number & _U32:
            view[index + 1] += 1
        else:  # the slot held the window before last: the number first, see "torn read"
            view[index] = number & _U32
            view[index + 1] = 1
