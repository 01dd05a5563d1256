"""The Python implementation of the shared limit tables, kept as the oracle of the compiled one.

``anycastlb.dataplane._shared_limits`` (Cython) replaced these classes on the production path
(issue 12); the property tests run both on the same random operations and compare answers and
memory word for word. Read ``limits.py`` and ``rate_limits.py`` for the theory of operation.
"""

import mmap
import socket
from collections.abc import Hashable

from anycastlb.dataplane.limits import BUCKETS
from anycastlb.dataplane.rate_limits import RATE_BUCKETS, RateLimit
from anycastlb.model.config import Listener

__all__ = ["Admission", "RateWindows", "SharedCounters", "source_key"]

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


def source_key(address: str, prefix_v4: int, prefix_v6: int) -> str | bytes:
    """What identifies the source ``address`` for the per-source limits.

    A whole address stays its text (the cheapest key); a prefix becomes ``b"<length>/"`` plus the
    masked packed address, so ``/24`` and ``/32`` keys of one address never coincide."""
    if ":" in address:
        family, prefix, bits = socket.AF_INET6, prefix_v6, 128
        address = address.partition("%")[0]  # a link-local peer's scope is not part of the source
    else:
        family, prefix, bits = socket.AF_INET, prefix_v4, 32
    if prefix >= bits:
        return address
    packed = int.from_bytes(socket.inet_pton(family, address), "big") >> (bits - prefix) << (bits - prefix)
    return b"%d/" % prefix + packed.to_bytes(bits // 8, "big")


class Admission:
    """One listener's limits as a worker checks them at accept (rebuilt when its config changes)."""

    __slots__ = (
        "counters",
        "listener_bucket",
        "listener_rate",
        "listener_rate_bucket",
        "max_connections",
        "max_per_source",
        "prefix_v4",
        "prefix_v6",
        "rate_key",
        "rates",
        "source_rate",
    )

    def __init__(self, config: Listener, counters: SharedCounters, rates: RateWindows) -> None:
        self.counters = counters
        self.rates = rates
        name = config.name.encode()
        self.listener_bucket = SharedCounters.bucket(b"listener\0" + name)
        self.max_connections = config.max_connections
        self.max_per_source = config.max_connections_per_source
        self.prefix_v4 = config.source_prefix_v4
        self.prefix_v6 = config.source_prefix_v6
        self.listener_rate = RateLimit.of(config.new_connections_per_second, config.new_connections_burst)
        self.listener_rate_bucket = RateWindows.bucket(b"listener-rate\0" + name)
        self.source_rate = RateLimit.of(
            config.new_connections_per_second_per_source, config.new_connections_burst_per_source
        )
        self.rate_key = b"source-rate\0" + name  # a source's rate is counted per listener

    def updated(self, config: Listener) -> "Admission":
        """The limits of a reloaded config for the same socket. Open connections were counted under
        this listener's bucket and give their slots back there, even if the listener was renamed."""
        admission = Admission(config, self.counters, self.rates)
        admission.listener_bucket = self.listener_bucket
        return admission

    def admit(self, address: str, now: float) -> tuple[str, int]:
        """``("", source bucket)`` when admitted (and counted), else ``(reason, 0)``.

        The source bucket must be handed back to :meth:`release` when the connection closes."""
        key = source_key(address, self.prefix_v4, self.prefix_v6)
        counters, rates = self.counters, self.rates
        source_bucket = counters.bucket(key)
        source_rate = self.source_rate
        rate_bucket = 0
        if source_rate is not None:
            rate_bucket = rates.bucket((self.rate_key, key))
            if not rates.admits(rate_bucket, source_rate, now):
                return "source_rate", 0
        if counters.total(source_bucket) >= self.max_per_source:
            return "source_limit", 0
        listener_rate = self.listener_rate
        if listener_rate is not None and not rates.admits(self.listener_rate_bucket, listener_rate, now):
            return "listener_rate", 0
        if counters.total(self.listener_bucket) >= self.max_connections:
            return "listener_limit", 0
        if source_rate is not None:
            rates.record(rate_bucket, source_rate, now)
        if listener_rate is not None:
            rates.record(self.listener_rate_bucket, listener_rate, now)
        counters.add(self.listener_bucket, 1)
        counters.add(source_bucket, 1)
        return "", source_bucket

    def release(self, source_bucket: int) -> None:
        """A connection admitted here closed: give its open-connection slots back."""
        self.counters.add(self.listener_bucket, -1)
        self.counters.add(source_bucket, -1)
