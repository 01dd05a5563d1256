# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled tables of the connection limits, shared by the workers (issue 12's first compiled piece).

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
        cdef int64_t number = <int64_t>(now / <double>limit.window)
        cdef Py_ssize_t index = self._mine + bucket * _WORDS + (number & 1) * 2
        if self._words[index] == <uint32_t>number:
            self._words[index + 1] += 1
        else:  # the slot held the window before last: the number first, see "torn read"
            self._words[index] = <uint32_t>number
            self._words[index + 1] = 1
