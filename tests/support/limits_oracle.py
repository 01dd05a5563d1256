"""The Python implementation of the shared limit tables, kept as the oracle of the compiled one.

``anycastlb.dataplane._shared_limits`` (Cython) replaced these classes on the production path
(issue 12); the property tests run both on the same random operations and compare answers and
memory word for word. Read ``limits.py`` and ``rate_limits.py`` for the theory of operation, and the
``.pyx``'s docstring for the packed keys; buckets here come from the plain-Python SipHash-2-4 of
``tests/support/siphash.py`` under the same key, so the compiled hash is checked too.
"""

import mmap
import socket

from anycastlb.dataplane.limits import BUCKETS
from anycastlb.dataplane.rate_limits import RATE_BUCKETS, RateLimit
from anycastlb.model.config import Listener
from tests.support.siphash import siphash24

__all__ = [
    "REFUSAL_REASONS",
    "Admission",
    "RateWindows",
    "SharedCounters",
    "listener_key",
    "listener_rate_key",
    "source_key",
]

REFUSAL_REASONS = ("", "source_rate", "source_limit", "listener_rate", "listener_limit")

_MASK = BUCKETS - 1
_RATE_MASK = RATE_BUCKETS - 1
_WORDS_PER_BUCKET = 4  # two slots of (window number, count)
_U32 = 0xFFFFFFFF


class SharedCounters:
    """Per-worker rows of 32-bit counters in shared memory, summed across workers when read."""

    __slots__ = ("_memory", "_mine", "_offsets", "_view", "key", "workers")

    def __init__(self, workers: int, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("the bucket key is 16 bytes")
        self.workers = workers
        self.key = key
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

    def bucket(self, key: bytes) -> int:
        """Bucket of a packed key; the same in every process that shares the table's key."""
        return siphash24(self.key, key) & _MASK

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

    __slots__ = ("_memory", "_mine", "_rows", "_view", "key", "workers")

    def __init__(self, workers: int, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("the bucket key is 16 bytes")
        self.workers = workers
        self.key = key
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

    def bucket(self, key: bytes) -> int:
        """Bucket of a packed key; the same in every process that shares the table's key."""
        return siphash24(self.key, key) & _RATE_MASK

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


def source_key(address: str, prefix_v4: int, prefix_v6: int) -> bytes:
    """The packed key of the source ``address``: a family tag (4 or 6), the prefix length, the address
    masked to it. ``::ffff:a.b.c.d`` is an IPv6 address like any other; a ``%scope`` is dropped."""
    if ":" in address:
        family, tag, prefix, bits = socket.AF_INET6, 6, prefix_v6, 128
        address = address.partition("%")[0]  # a link-local peer's scope is not part of the source
    else:
        family, tag, prefix, bits = socket.AF_INET, 4, prefix_v4, 32
    prefix = min(max(prefix, 0), bits)
    packed = int.from_bytes(socket.inet_pton(family, address), "big") >> (bits - prefix) << (bits - prefix)
    return bytes((tag, prefix)) + packed.to_bytes(bits // 8, "big")


def listener_key(name: str) -> bytes:
    return b"\x01" + name.encode()


def listener_rate_key(name: str) -> bytes:
    return b"\x02" + name.encode()


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
    # rate_key: what a source's key is appended to for its rate: tag 3 + the listener's id, the
    # 64-bit hash of the listener-rate key (little-endian), so a source's rate is per listener.

    def __init__(self, config: Listener, counters: SharedCounters, rates: RateWindows) -> None:
        self.counters = counters
        self.rates = rates
        self.listener_bucket = counters.bucket(listener_key(config.name))
        self.max_connections = config.max_connections
        self.max_per_source = config.max_connections_per_source
        self.prefix_v4 = config.source_prefix_v4
        self.prefix_v6 = config.source_prefix_v6
        self.listener_rate = RateLimit.of(config.new_connections_per_second, config.new_connections_burst)
        self.listener_rate_bucket = rates.bucket(listener_rate_key(config.name))
        self.source_rate = RateLimit.of(
            config.new_connections_per_second_per_source, config.new_connections_burst_per_source
        )
        listener_id = siphash24(rates.key, listener_rate_key(config.name))
        self.rate_key = b"\x03" + listener_id.to_bytes(8, "little")

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
            rate_bucket = rates.bucket(self.rate_key + key)
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
