"""Connection limits shared by all worker processes (per listener and per source address).

Workers accept from their own ``SO_REUSEPORT`` sockets, so a limit kept in one process would let
a client open ``limit * workers`` connections. Instead the supervisor maps one anonymous shared
memory block before forking: a row of counters per worker, a column per hash bucket. A worker
only ever writes its own row (no locks, no lost updates) and reads the column's sum to decide.

Keys are hashed into ``BUCKETS`` buckets with Python's own (SipHash, per-process random seed)
``hash()``: workers are forked from one supervisor, so they share the seed and agree on buckets,
while an outsider cannot pick source addresses that collide on purpose. Two keys that share a
bucket share a limit; with 2^18 buckets and 10,000 active sources the chance that a given source
shares one is ~4%, and it only matters when both are near the limit together. That is the price
of a lock-free, fixed-size table that a flood of spoofed sources cannot grow.
"""

import mmap

__all__ = ["BUCKETS", "SharedCounters"]

BUCKETS = 1 << 18
_MASK = BUCKETS - 1


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
