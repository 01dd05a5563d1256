# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The limit check at accept, compiled: the shared tables and the admission decision (issue 12's first piece).

The theory of operation (rows per worker, sums across them, sliding windows, torn reads) is in
``limits.py`` and ``rate_limits.py``; this file only implements it on raw ``uint32_t`` words of the
same anonymous ``MAP_SHARED`` block, with the same layout, so the compiled loop of issue 12 can read
and update it without the interpreter. The Python implementation it replaced is kept as a test
oracle (``tests/support/limits_oracle.py``): the property tests run both on random operations and
demand identical answers and identical memory.

Bucket keys are still hashed with Python's ``hash()`` (per-agent SipHash seed); the compiled loop
needs a keyed hash of its own (docs/dataplane-core.md), which changes :meth:`bucket` only.
"""

import mmap
import socket

from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from *:
    """
    #ifndef ANYCASTLB_SOURCE_SHA256
    #error "build with setup.py: it defines ANYCASTLB_SOURCE_SHA256 (the .pyx's digest)"
    #endif
    """
    const char *ANYCASTLB_SOURCE_SHA256

SOURCE_SHA256 = ANYCASTLB_SOURCE_SHA256.decode("ascii")  # checked against the .pyx at import

BUCKETS = 1 << 18
RATE_BUCKETS = 1 << 16

cdef Py_ssize_t _COUNTER_MASK = BUCKETS - 1
cdef Py_ssize_t _RATE_MASK = RATE_BUCKETS - 1
cdef Py_ssize_t _WORDS = 4


cdef class SharedCounters:
    """Per-worker rows of 32-bit counters in shared memory, summed across workers when read."""

    cdef readonly int workers
    cdef readonly object _memory  # the mmap: tests compare its words with the oracle
    cdef uint32_t[::1] _view
    cdef uint32_t *_words
    cdef Py_ssize_t _mine

    def __init__(self, int workers):
        self.workers = workers
        self._memory = mmap.mmap(-1, workers * BUCKETS * 4)  # anonymous + MAP_SHARED
        self._view = memoryview(self._memory).cast("I")
        self._words = &self._view[0]
        self._mine = 0

    def bind_worker(self, int worker):
        """Called in a worker after fork: writes go to its row from now on."""
        self._mine = worker * BUCKETS

    def reset_worker(self, int worker):
        """Zero a dead worker's row: its connections died with it."""
        cdef Py_ssize_t start = worker * BUCKETS, index
        for index in range(start, start + BUCKETS):
            self._words[index] = 0

    @staticmethod
    def bucket(key):
        """Bucket of a key (a source address, or a listener's name); stable within one agent."""
        return hash(key) & _COUNTER_MASK

    cpdef uint64_t total(self, Py_ssize_t bucket):
        """Sum of the bucket over all workers."""
        cdef uint64_t total = 0
        cdef Py_ssize_t worker
        for worker in range(self.workers):
            total += self._words[worker * BUCKETS + bucket]
        return total

    cpdef void add(self, Py_ssize_t bucket, int64_t delta):
        """Change this worker's count for the bucket."""
        self._words[self._mine + bucket] += <uint32_t>delta


cdef class RateWindows:
    """Per-worker rows of two-slot sliding windows in shared memory (see ``rate_limits.py``)."""

    cdef readonly int workers
    cdef readonly object _memory  # the mmap: tests compare its words with the oracle
    cdef uint32_t[::1] _view
    cdef uint32_t *_words
    cdef Py_ssize_t _mine

    def __init__(self, int workers):
        self.workers = workers
        self._memory = mmap.mmap(-1, workers * RATE_BUCKETS * _WORDS * 4)  # anonymous + MAP_SHARED
        self._view = memoryview(self._memory).cast("I")
        self._words = &self._view[0]
        self._mine = 0

    def bind_worker(self, int worker):
        """Called in a worker after fork: records go to its row (a replacement keeps the row as is)."""
        self._mine = worker * RATE_BUCKETS * _WORDS

    @staticmethod
    def bucket(key):
        """Bucket of a key; stable within one agent (forked workers share the hash seed)."""
        return hash(key) & _RATE_MASK

    def admits(self, Py_ssize_t bucket, limit, double now):
        """Would one more connection keep the bucket's estimate below the burst? Reads only."""
        return self.estimate(bucket, limit.window, now) < limit.burst

    cpdef double estimate(self, Py_ssize_t bucket, double window, double now):
        """Connections admitted in the last ``window`` seconds, as the sliding window estimates it."""
        cdef double position = now / window
        cdef int64_t number = <int64_t>position
        cdef uint32_t current = <uint32_t>number, previous = <uint32_t>(number - 1), seen
        cdef uint64_t in_current = 0, in_previous = 0
        cdef Py_ssize_t worker, index, slot
        for worker in range(self.workers):
            index = (worker * RATE_BUCKETS + bucket) * _WORDS
            for slot in range(index, index + 4, 2):
                seen = self._words[slot]
                if seen == current:
                    in_current += self._words[slot + 1]
                elif seen == previous:
                    in_previous += self._words[slot + 1]
        return <double>in_current + <double>in_previous * (1.0 - (position - <double>number))

    def record(self, Py_ssize_t bucket, limit, double now):
        """Count one admitted connection in this worker's row."""
        self._record(bucket, limit.window, now)

    cdef void _record(self, Py_ssize_t bucket, double window, double now):
        cdef int64_t number = <int64_t>(now / window)
        cdef Py_ssize_t index = self._mine + bucket * _WORDS + (number & 1) * 2
        if self._words[index] == <uint32_t>number:
            self._words[index + 1] += 1
        else:  # the slot held the window before last: the number first, see "torn read"
            self._words[index] = <uint32_t>number
            self._words[index + 1] = 1


def source_key(str address, int prefix_v4, int prefix_v6):
    """What identifies the source ``address`` for the per-source limits (see ``admission.py``)."""
    cdef int family, prefix, bits
    if ":" in address:
        family, prefix, bits = socket.AF_INET6, prefix_v6, 128
        address = address.partition("%")[0]  # a link-local peer's scope is not part of the source
    else:
        family, prefix, bits = socket.AF_INET, prefix_v4, 32
    if prefix >= bits:
        return address
    packed = int.from_bytes(socket.inet_pton(family, address), "big") >> (bits - prefix) << (bits - prefix)
    return b"%d/" % prefix + packed.to_bytes(bits // 8, "big")


cdef class Admission:
    """One listener's limits as a worker checks them at accept (rebuilt when its config changes)."""

    cdef readonly SharedCounters counters
    cdef readonly RateWindows rates
    cdef public Py_ssize_t listener_bucket
    cdef readonly Py_ssize_t listener_rate_bucket
    cdef readonly uint64_t max_connections, max_per_source
    cdef readonly int prefix_v4, prefix_v6
    cdef readonly object listener_rate, source_rate, rate_key
    cdef bint _listener_limited, _source_limited
    cdef double _listener_burst, _listener_window, _source_burst, _source_window

    def __init__(self, config, SharedCounters counters, RateWindows rates):
        from anycastlb.dataplane.rate_limits import RateLimit  # that module imports this one

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
        self._listener_limited = self.listener_rate is not None
        if self._listener_limited:
            self._listener_burst, self._listener_window = self.listener_rate.burst, self.listener_rate.window
        self._source_limited = self.source_rate is not None
        if self._source_limited:
            self._source_burst, self._source_window = self.source_rate.burst, self.source_rate.window

    def updated(self, config):
        """The limits of a reloaded config for the same socket. Open connections were counted under
        this listener's bucket and give their slots back there, even if the listener was renamed."""
        admission = Admission(config, self.counters, self.rates)
        admission.listener_bucket = self.listener_bucket
        return admission

    def admit(self, str address, double now):
        """``("", source bucket)`` when admitted (and counted), else ``(reason, 0)``."""
        key = source_key(address, self.prefix_v4, self.prefix_v6)
        cdef SharedCounters counters = self.counters
        cdef RateWindows rates = self.rates
        cdef Py_ssize_t source_bucket = hash(key) & _COUNTER_MASK, rate_bucket = 0
        if self._source_limited:
            rate_bucket = hash((self.rate_key, key)) & _RATE_MASK
            if not rates.estimate(rate_bucket, self._source_window, now) < self._source_burst:
                return "source_rate", 0
        if counters.total(source_bucket) >= self.max_per_source:
            return "source_limit", 0
        if self._listener_limited and not (
            rates.estimate(self.listener_rate_bucket, self._listener_window, now) < self._listener_burst
        ):
            return "listener_rate", 0
        if counters.total(self.listener_bucket) >= self.max_connections:
            return "listener_limit", 0
        if self._source_limited:
            rates._record(rate_bucket, self._source_window, now)
        if self._listener_limited:
            rates._record(self.listener_rate_bucket, self._listener_window, now)
        counters.add(self.listener_bucket, 1)
        counters.add(source_bucket, 1)
        return "", source_bucket

    def release(self, Py_ssize_t source_bucket):
        """A connection admitted here closed: give its open-connection slots back."""
        self.counters.add(self.listener_bucket, -1)
        self.counters.add(source_bucket, -1)
