"""The Python implementation of the shared limit tables, kept as the oracle of the compiled one.

``anycastlb.dataplane._shared_limits`` (Cython) replaced these classes on the production path
(issue 12); the property tests run both on the same random operations and compare answers and
memory word for word. Read ``limits.py`` and ``rate_limits.py`` for the theory of operation.
"""

import mmap
from collections.abc import Hashable

from anycastlb.dataplane.limits import BUCKETS
from anycastlb.dataplane.rate_limits import RATE_BUCKETS, RateLimit

__all__ = ["RateWindows", "SharedCounters"]

_MASK = BUCKETS - 1
_RATE_MASK = RATE_BUCKETS - 1
_WORDS_PER_BUCKET = 4  # two slots of (window number, count)
_U32 = 0xFFFFFFFF


class SharedCounters:
    """Per-worker rows of 32-bit counters in shared memory, summed across workers when read."""

    __slots__ = ("_memory", "_mine", "_offsets", "_view", "workers")

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._memory = mmap.mmap(
            -1, workers * BUCKETS * 4
        )  # anonymous + MAP_SHARED: forked children share it
        self._view = memoryview(self._memory).cast("I")
        self._offsets = tuple(worker * BUCKETS for worker in range(workers))
        self._mine = 0

    def bind_worker(self, worker: int) -> None:
        """Called in a worker after fork: writes go to its row from now on."""
        self._mine = self._offsets[worker]

    def reset_worker(self, worker: int) -> None:
        """Zero a dead worker's row: its connections died with it."""
        start = self._offsets[worker]
        self._view[start : start + BUCKETS] = memoryview(bytes(BUCKETS * 4)).cast("I")

    @staticmethod
    def bucket(key: str | bytes) -> int:
        """Bucket of a key (a source address, or a listener's name); stable within one agent."""
        return hash(key) & _MASK

    def total(self, bucket: int) -> int:
        """Sum of the bucket over all workers."""
        view = self._view
        total = 0
        for offset in self._offsets:  # a plain loop: ~3x cheaper than sum() over a generator here
            total += view[offset + bucket]
        return total

    def add(self, bucket: int, delta: int) -> None:
        """Change this worker's count for the bucket."""
        index = self._mine + bucket
        self._view[index] += delta


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
        return hash(key) & _RATE_MASK

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
