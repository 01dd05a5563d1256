# The C API of the limit check at accept (_shared_limits.pyx), for the compiled loop of issue 12.
#
# The loop keeps an ``Admission`` (Python object, built and replaced by the worker's Python side on
# start and reload) alive for as long as it uses ``&admission.c``, and calls, without the GIL:
#
#     code = admit_peer(&admission.c, <sockaddr *>&peer, now, &source_bucket)   # after accept4
#     ...
#     release_peer(&admission.c, source_bucket)   # when a connection admitted with code 0 closes
#
# ``now`` is CLOCK_MONOTONIC in seconds (as ``time.monotonic()``); ``code`` indexes
# ``REFUSAL_REASONS`` (the metric label values); only ADMITTED connections are counted, and only they
# get a ``source_bucket`` (it is 0 after a refusal). The tables are the ``MAP_SHARED`` blocks the
# supervisor maps before forking (layouts in limits.py and rate_limits.py); buckets are SipHash-2-4 of
# packed keys under the agent's 16-byte key (the packed formats are in the .pyx's docstring).

from libc.stdint cimport uint32_t, uint64_t, uint8_t
from anycastlb.dataplane._c_net cimport sockaddr

cdef enum:
    ADMITTED = 0
    REFUSED_SOURCE_RATE = 1
    REFUSED_SOURCE_LIMIT = 2
    REFUSED_LISTENER_RATE = 3
    REFUSED_LISTENER_LIMIT = 4

ctypedef struct TableC:
    uint32_t *words          # the shared block: native-endian uint32, layout in limits.py / rate_limits.py
    Py_ssize_t workers       # rows
    Py_ssize_t mine          # index of this worker's first word (bind_worker; 0 before)
    uint8_t key[16]          # the agent's SipHash-2-4 key (drawn once by the supervisor)

ctypedef struct AdmissionC:
    TableC *counters                # SharedCounters.t: open connections, BUCKETS per row
    TableC *rates                   # RateWindows.t: sliding windows, RATE_BUCKETS * 4 words per row
    uint32_t listener_bucket        # counters: the listener's open connections (kept across renames)
    uint32_t listener_rate_bucket   # rates: the listener's new connections
    uint8_t source_rate_prefix[9]   # tag 3 + the listener's id (8 bytes LE): prepended to a source key
    int prefix_v4                   # bits of an IPv4 / IPv6 address that make a source, clamped to
    int prefix_v6                   #   0..32 / 0..128
    int listener_limited            # a listener rate is configured
    int source_limited              # a per-source rate is configured
    uint64_t max_connections
    uint64_t max_per_source
    double listener_burst
    double listener_window          # seconds: burst / rate
    double source_burst
    double source_window

cdef uint64_t siphash24(const uint8_t *key16, const uint8_t *data, Py_ssize_t n) noexcept nogil
cdef int admit_peer(AdmissionC *admission, const sockaddr *peer, double now, uint32_t *source_bucket) noexcept nogil
cdef void release_peer(AdmissionC *admission, uint32_t source_bucket) noexcept nogil

cdef class SharedCounters:
    cdef TableC t                   # the loop may read it; only this worker's row is written
    cdef readonly int workers
    cdef readonly object _memory    # the mmap: tests compare its words with the oracle
    cdef uint32_t[::1] _view

cdef class RateWindows:
    cdef TableC t
    cdef readonly int workers
    cdef readonly object _memory    # the mmap: tests compare its words with the oracle
    cdef uint32_t[::1] _view

cdef class Admission:
    cdef AdmissionC c     # the loop takes &admission.c; valid while the object lives
    cdef readonly SharedCounters counters   # hold the tables (and so c.counters / c.rates) alive
    cdef readonly RateWindows rates
    cdef readonly object listener_rate, source_rate   # RateLimit or None, as configured
