# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The limit check at accept, compiled: the shared tables, the bucket hash and the admission decision.

The theory of operation (rows per worker, sums across them, sliding windows, torn reads) is in
``limits.py`` and ``rate_limits.py``; this file implements it on raw ``uint32_t`` words of the same
anonymous ``MAP_SHARED`` blocks, with the same layout. The decision itself, :c:func:`admit_peer`,
is C that runs without the interpreter on the ``sockaddr`` accept4 returns, for the compiled loop of
issue 12 (the C API is ``_shared_limits.pxd``); :meth:`Admission.admit` is the same function behind
a text address, for today's Python worker and the tests. The Python implementation this replaced
is kept as a test oracle (``tests/support/limits_oracle.py``): property tests run both on random
operations and demand identical answers and identical memory.

**Buckets** are the low bits of SipHash-2-4 (:c:func:`siphash24`) of a *packed key*, keyed with the
table's 16 bytes: the supervisor draws them once per agent (``os.urandom``) and gives the same key
to both tables before forking, so every worker, a respawned one too, agrees on every bucket, and an
outsider, who does not know the key, cannot pick sources that share a bucket. A reload never changes
the key (a new key would move every bucket under the open connections).

**Packed keys** (bytes; a first "tag" byte keeps the kinds apart):

=====================  ==========================================================================
listener (counters)    ``01`` + the listener's name (UTF-8): its open connections
listener rate (rates)  ``02`` + the listener's name: its new connections
IPv4 source            ``04`` + prefix length (1 byte, 0..32) + the address masked to it (4 bytes)
IPv6 source            ``06`` + prefix length (0..128) + the address masked to it (16 bytes)
source rate (rates)    ``03`` + the listener's id (8 bytes, little-endian) + the source's key; the id
                       is the 64-bit hash of the listener-rate key: a source's rate is per listener
=====================  ==========================================================================

A source's key is its address *as the socket reports it*: an IPv4-mapped IPv6 peer
(``::ffff:a.b.c.d``) is an IPv6 source (tag ``06``, masked with ``source_prefix_v6``), exactly as
the text key ``"::ffff:a.b.c.d"`` was before; it is never unmapped to IPv4. (IPv6 listeners are
``IPV6_V6ONLY``, ``sockets.py``, so an IPv4 client never arrives that way; such a peer sent an IPv6
packet with a mapped source.) A link-local peer's scope id is not part of the source. A socket of
any other family (never seen from a TCP listener) is the source ``00 00``: all such peers share it.
"""

import mmap

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from anycastlb.dataplane._c_net cimport (
    AF_INET,
    AF_INET6,
    htons,
    sockaddr,
    sockaddr_in,
    sockaddr_in6,
    sockaddr_storage,
)

cdef extern from *:
    """
    #ifndef ANYCASTLB_SOURCE_SHA256
    #error "build with setup.py: it defines ANYCASTLB_SOURCE_SHA256 (the .pyx's and .pxd's digest)"
    #endif
    """
    const char *ANYCASTLB_SOURCE_SHA256

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)

cdef extern from "<endian.h>" nogil:
    uint64_t le64toh(uint64_t)
    uint64_t htole64(uint64_t)

SOURCE_SHA256 = ANYCASTLB_SOURCE_SHA256.decode("ascii")  # checked against the .pyx and .pxd at import

BUCKETS = 1 << 18
RATE_BUCKETS = 1 << 16
KEY_BYTES = 16
REFUSAL_REASONS = ("", "source_rate", "source_limit", "listener_rate", "listener_limit")

cdef tuple _REASONS = REFUSAL_REASONS

cdef enum:
    _BUCKETS = 1 << 18
    _RATE_BUCKETS = 1 << 16
    _COUNTER_MASK = _BUCKETS - 1
    _RATE_MASK = _RATE_BUCKETS - 1
    _WORDS = 4  # per rate bucket: two slots of (window number, count)
    _TAG_LISTENER = 1
    _TAG_LISTENER_RATE = 2
    _TAG_SOURCE_RATE = 3
    _TAG_IPV4 = 4
    _TAG_IPV6 = 6
    _SOURCE_KEY_MAX = 18  # tag + prefix length + 16 address bytes
    _LISTENER_ID = 9  # tag + 8 bytes
    _KEY_BYTES = 16


# ---- SipHash-2-4 -------------------------------------------------------------------------------------
# From the SipHash paper (Aumasson, Bernstein 2012): 64-bit little-endian words, 2 rounds per word,
# the length mod 256 in the last word's top byte, 4 rounds to finish. The reference vectors are a test.

cdef inline uint64_t _rotl(uint64_t value, int bits) noexcept nogil:
    return (value << bits) | (value >> (64 - bits))


cdef inline uint64_t _load64(const uint8_t *at) noexcept nogil:
    cdef uint64_t word
    memcpy(&word, at, 8)
    return le64toh(word)


cdef inline uint64_t _load32(const uint8_t *at) noexcept nogil:
    return <uint64_t>at[0] | <uint64_t>at[1] << 8 | <uint64_t>at[2] << 16 | <uint64_t>at[3] << 24


cdef inline uint64_t _load_tail(const uint8_t *at, Py_ssize_t left) noexcept nogil:
    """The last ``left`` (0..7) bytes as a little-endian word, in two loads that may overlap (the
    bytes they share are the same bytes at the same places, so OR-ing them is exact)."""
    if left >= 4:
        return _load32(at) | _load32(at + left - 4) << (8 * (left - 4))
    if left > 0:
        return (<uint64_t>at[0] | <uint64_t>at[left >> 1] << (8 * (left >> 1))
                | <uint64_t>at[left - 1] << (8 * (left - 1)))
    return 0


ctypedef struct _Sip:
    uint64_t v0, v1, v2, v3


cdef inline void _rounds(_Sip *s, int count) noexcept nogil:
    cdef int round_
    for round_ in range(count):
        s.v0 += s.v1
        s.v1 = _rotl(s.v1, 13) ^ s.v0
        s.v0 = _rotl(s.v0, 32)
        s.v2 += s.v3
        s.v3 = _rotl(s.v3, 16) ^ s.v2
        s.v0 += s.v3
        s.v3 = _rotl(s.v3, 21) ^ s.v0
        s.v2 += s.v1
        s.v1 = _rotl(s.v1, 17) ^ s.v2
        s.v2 = _rotl(s.v2, 32)


cdef uint64_t siphash24(const uint8_t *key16, const uint8_t *data, Py_ssize_t n) noexcept nogil:
    """SipHash-2-4 of ``data[0:n]`` (n >= 0) under the 16-byte key ``key16``."""
    cdef uint64_t k0 = _load64(key16), k1 = _load64(key16 + 8), word
    cdef _Sip s
    s.v0 = k0 ^ 0x736F6D6570736575ULL
    s.v1 = k1 ^ 0x646F72616E646F6DULL
    s.v2 = k0 ^ 0x6C7967656E657261ULL
    s.v3 = k1 ^ 0x7465646279746573ULL
    cdef Py_ssize_t whole = n & ~(<Py_ssize_t>7), index
    for index in range(0, whole, 8):
        word = _load64(data + index)
        s.v3 ^= word
        _rounds(&s, 2)
        s.v0 ^= word
    word = _load_tail(data + whole, n - whole) | (<uint64_t>(n & 0xFF)) << 56
    s.v3 ^= word
    _rounds(&s, 2)
    s.v0 ^= word
    s.v2 ^= 0xFF
    _rounds(&s, 4)
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3


def siphash(bytes key not None, bytes data not None):
    """SipHash-2-4 of ``data`` under the 16-byte ``key`` (the bucket hash, for Python and the tests)."""
    if PyBytes_GET_SIZE(key) != KEY_BYTES:
        raise ValueError(f"a SipHash key is {KEY_BYTES} bytes, not {len(key)}")
    return siphash24(<const uint8_t *>PyBytes_AS_STRING(key), <const uint8_t *>PyBytes_AS_STRING(data),
                     PyBytes_GET_SIZE(data))


# ---- the tables, in C ---------------------------------------------------------------------------------

cdef inline uint64_t _bucket_hash(const TableC *table, const uint8_t *data, Py_ssize_t n) noexcept nogil:
    return siphash24(table.key, data, n)


cdef inline uint64_t _total(const TableC *counters, Py_ssize_t bucket) noexcept nogil:
    """Sum of the bucket over all workers."""
    cdef uint64_t total = 0
    cdef Py_ssize_t worker
    for worker in range(counters.workers):
        total += counters.words[worker * _BUCKETS + bucket]
    return total


cdef inline void _add(TableC *counters, Py_ssize_t bucket, int64_t delta) noexcept nogil:
    """Change this worker's count for the bucket."""
    counters.words[counters.mine + bucket] += <uint32_t>delta


cdef inline double _estimate(const TableC *rates, Py_ssize_t bucket, double window, double now) noexcept nogil:
    """Connections admitted in the last ``window`` seconds, as the sliding window estimates it."""
    cdef double position = now / window
    cdef int64_t number = <int64_t>position
    cdef uint32_t current = <uint32_t>number, previous = <uint32_t>(number - 1), seen
    cdef uint64_t in_current = 0, in_previous = 0
    cdef Py_ssize_t worker, index, slot
    for worker in range(rates.workers):
        index = (worker * _RATE_BUCKETS + bucket) * _WORDS
        for slot in range(index, index + 4, 2):
            seen = rates.words[slot]
            if seen == current:
                in_current += rates.words[slot + 1]
            elif seen == previous:
                in_previous += rates.words[slot + 1]
    return <double>in_current + <double>in_previous * (1.0 - (position - <double>number))


cdef inline void _record(TableC *rates, Py_ssize_t bucket, double window, double now) noexcept nogil:
    """Count one admitted connection in this worker's row."""
    cdef int64_t number = <int64_t>(now / window)
    cdef Py_ssize_t index = rates.mine + bucket * _WORDS + (number & 1) * 2
    if rates.words[index] == <uint32_t>number:
        rates.words[index + 1] += 1
    else:  # the slot held the window before last: the number first, see "torn read"
        rates.words[index] = <uint32_t>number
        rates.words[index + 1] = 1


cdef int _check_table(int workers, bytes key) except -1:
    if workers < 1:
        raise ValueError(f"a table needs at least one worker row, not {workers}")
    if key is None or PyBytes_GET_SIZE(key) != KEY_BYTES:
        raise ValueError(f"the bucket key is {KEY_BYTES} bytes (os.urandom({KEY_BYTES}), drawn once per agent)")
    return 0


cdef void _init_table(TableC *table, uint32_t[::1] view, int workers, bytes key) noexcept:
    table.words = &view[0]
    table.workers = workers
    table.mine = 0
    memcpy(table.key, PyBytes_AS_STRING(key), _KEY_BYTES)


cdef int _check_row(const TableC *table, int worker) except -1:
    if not 0 <= worker < table.workers:
        raise ValueError(f"worker {worker} has no row: the table has {table.workers}")
    return 0


cdef uint64_t _hash_of(const TableC *table, bytes key) noexcept:
    return _bucket_hash(table, <const uint8_t *>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key))


cdef class SharedCounters:
    """Per-worker rows of 32-bit counters in shared memory, summed across workers when read.

    ``key``: the agent's 16 random bytes; every process that shares the table buckets with it."""

    def __init__(self, int workers, bytes key):
        _check_table(workers, key)
        self.workers = workers
        self._memory = mmap.mmap(-1, workers * _BUCKETS * 4)  # anonymous + MAP_SHARED
        self._view = memoryview(self._memory).cast("I")
        _init_table(&self.t, self._view, workers, key)

    @property
    def key(self):
        """The bucket key (SipHash-2-4), as given."""
        return (<char *>self.t.key)[:_KEY_BYTES]

    def bind_worker(self, int worker):
        """Called in a worker after fork: writes go to its row from now on."""
        _check_row(&self.t, worker)
        self.t.mine = worker * _BUCKETS

    def reset_worker(self, int worker):
        """Zero a dead worker's row: its connections died with it."""
        _check_row(&self.t, worker)
        memset(&self.t.words[worker * _BUCKETS], 0, _BUCKETS * 4)

    def bucket(self, bytes key not None):
        """Bucket of a packed key (see the module docstring); the same in every process of the agent."""
        return _hash_of(&self.t, key) & _COUNTER_MASK

    def total(self, Py_ssize_t bucket):
        """Sum of the bucket over all workers."""
        return _total(&self.t, bucket & _COUNTER_MASK)

    def add(self, Py_ssize_t bucket, int64_t delta):
        """Change this worker's count for the bucket."""
        _add(&self.t, bucket & _COUNTER_MASK, delta)


cdef class RateWindows:
    """Per-worker rows of two-slot sliding windows in shared memory (see ``rate_limits.py``)."""

    def __init__(self, int workers, bytes key):
        _check_table(workers, key)
        self.workers = workers
        self._memory = mmap.mmap(-1, workers * _RATE_BUCKETS * _WORDS * 4)  # anonymous + MAP_SHARED
        self._view = memoryview(self._memory).cast("I")
        _init_table(&self.t, self._view, workers, key)

    @property
    def key(self):
        """The bucket key (SipHash-2-4), as given."""
        return (<char *>self.t.key)[:_KEY_BYTES]

    def bind_worker(self, int worker):
        """Called in a worker after fork: records go to its row (a replacement keeps the row as is)."""
        _check_row(&self.t, worker)
        self.t.mine = worker * _RATE_BUCKETS * _WORDS

    def bucket(self, bytes key not None):
        """Bucket of a packed key; the same in every process of the agent."""
        return _hash_of(&self.t, key) & _RATE_MASK

    def admits(self, Py_ssize_t bucket, limit, double now):
        """Would one more connection keep the bucket's estimate below the burst? Reads only."""
        return _estimate(&self.t, bucket & _RATE_MASK, limit.window, now) < limit.burst

    def estimate(self, Py_ssize_t bucket, double window, double now):
        """Connections admitted in the last ``window`` seconds, as the sliding window estimates it."""
        return _estimate(&self.t, bucket & _RATE_MASK, window, now)

    def record(self, Py_ssize_t bucket, limit, double now):
        """Count one admitted connection in this worker's row."""
        _record(&self.t, bucket & _RATE_MASK, limit.window, now)


# ---- sources ------------------------------------------------------------------------------------------

cdef inline int _clamp(int prefix, int bits) noexcept nogil:
    return 0 if prefix < 0 else (bits if prefix > bits else prefix)


cdef Py_ssize_t _pack_source(const sockaddr *peer, int prefix_v4, int prefix_v6, uint8_t *out) noexcept nogil:
    """Write the source key of ``peer`` to ``out`` (room for 18 bytes); returns its length.

    The prefixes must be clamped (0..32, 0..128): the caller keeps them so."""
    cdef const uint8_t *address
    cdef Py_ssize_t length, index
    cdef int prefix, bits
    if peer.sa_family == AF_INET:
        address = <const uint8_t *>&(<const sockaddr_in *>peer).sin_addr
        out[0], length, prefix = _TAG_IPV4, 4, prefix_v4
    elif peer.sa_family == AF_INET6:
        address = <const uint8_t *>&(<const sockaddr_in6 *>peer).sin6_addr  # the scope id is not read
        out[0], length, prefix = _TAG_IPV6, 16, prefix_v6
    else:
        out[0] = 0
        out[1] = 0
        return 2
    out[1] = <uint8_t>prefix
    for index in range(length):
        bits = prefix - 8 * <int>index
        if bits >= 8:
            out[2 + index] = address[index]
        elif bits <= 0:
            out[2 + index] = 0
        else:
            out[2 + index] = address[index] & <uint8_t>(0xFF << (8 - bits))
    return 2 + length


cdef int _parse_peer(str address, sockaddr_storage *peer) except -1:
    """The text form of a peer (as ``socket.accept`` reports it; a ``%scope`` is dropped) as a sockaddr."""
    cdef bytes text
    cdef Py_ssize_t scope
    memset(peer, 0, sizeof(sockaddr_storage))
    if ":" in address:
        scope = address.find("%")
        text = (address[:scope] if scope >= 0 else address).encode("ascii")
        (<sockaddr_in6 *>peer).sin6_family = AF_INET6
        if b"\0" in text or inet_pton(AF_INET6, text, &(<sockaddr_in6 *>peer).sin6_addr) != 1:
            raise ValueError(f"{address!r} is not an IPv6 address")
    else:
        text = address.encode("ascii")
        (<sockaddr_in *>peer).sin_family = AF_INET
        if b"\0" in text or inet_pton(AF_INET, text, &(<sockaddr_in *>peer).sin_addr) != 1:
            raise ValueError(f"{address!r} is not an IPv4 address")
    return 0


def source_key(str address, int prefix_v4, int prefix_v6):
    """The packed key of the source ``address`` for the per-source limits (see the module docstring)."""
    cdef sockaddr_storage peer
    cdef uint8_t out[_SOURCE_KEY_MAX]
    _parse_peer(address, &peer)
    cdef Py_ssize_t length = _pack_source(<sockaddr *>&peer, _clamp(prefix_v4, 32), _clamp(prefix_v6, 128), out)
    return (<char *>out)[:length]


def listener_key(str name):
    """The packed key of a listener's open-connection count (in :class:`SharedCounters`)."""
    return bytes((_TAG_LISTENER,)) + name.encode()


def listener_rate_key(str name):
    """The packed key of a listener's new-connection rate (in :class:`RateWindows`)."""
    return bytes((_TAG_LISTENER_RATE,)) + name.encode()


# ---- the decision -------------------------------------------------------------------------------------

cdef int admit_peer(AdmissionC *admission, const sockaddr *peer, double now, uint32_t *source_bucket) noexcept nogil:
    """Decide on a new connection from ``peer``: ADMITTED (counted; ``*source_bucket`` is what
    :c:func:`release_peer` needs) or the first limit it is over, in the order of ``admission.py``
    (``*source_bucket`` = 0). Only admitted connections are counted."""
    cdef AdmissionC *a = admission
    cdef uint8_t key[_LISTENER_ID + _SOURCE_KEY_MAX]  # the source rate key, the source key at its end
    cdef Py_ssize_t length = _pack_source(peer, a.prefix_v4, a.prefix_v6, key + _LISTENER_ID)
    cdef Py_ssize_t bucket = _bucket_hash(a.counters, key + _LISTENER_ID, length) & _COUNTER_MASK
    cdef Py_ssize_t rate_bucket = 0
    source_bucket[0] = 0
    if a.source_limited:
        memcpy(key, a.source_rate_prefix, _LISTENER_ID)
        rate_bucket = _bucket_hash(a.rates, key, _LISTENER_ID + length) & _RATE_MASK
        if not _estimate(a.rates, rate_bucket, a.source_window, now) < a.source_burst:
            return REFUSED_SOURCE_RATE
    if _total(a.counters, bucket) >= a.max_per_source:
        return REFUSED_SOURCE_LIMIT
    if a.listener_limited and not (
        _estimate(a.rates, a.listener_rate_bucket, a.listener_window, now) < a.listener_burst
    ):
        return REFUSED_LISTENER_RATE
    if _total(a.counters, a.listener_bucket) >= a.max_connections:
        return REFUSED_LISTENER_LIMIT
    if a.source_limited:
        _record(a.rates, rate_bucket, a.source_window, now)
    if a.listener_limited:
        _record(a.rates, a.listener_rate_bucket, a.listener_window, now)
    _add(a.counters, a.listener_bucket, 1)
    _add(a.counters, bucket, 1)
    source_bucket[0] = <uint32_t>bucket
    return ADMITTED


cdef void release_peer(AdmissionC *admission, uint32_t source_bucket) noexcept nogil:
    """A connection :c:func:`admit_peer` admitted closed: give its open-connection slots back."""
    _add(admission.counters, admission.listener_bucket, -1)
    _add(admission.counters, source_bucket & _COUNTER_MASK, -1)


cdef class Admission:
    """One listener's limits as a worker checks them at accept (rebuilt when its config changes)."""

    def __init__(self, config, SharedCounters counters not None, RateWindows rates not None):
        from anycastlb.dataplane.rate_limits import RateLimit  # that module imports this one

        self.counters = counters
        self.rates = rates
        self.c.counters = &counters.t
        self.c.rates = &rates.t
        self.c.listener_bucket = counters.bucket(listener_key(config.name))
        listener_rate = listener_rate_key(config.name)
        self.c.listener_rate_bucket = rates.bucket(listener_rate)
        cdef uint64_t listener_id = htole64(_hash_of(&rates.t, listener_rate))
        self.c.source_rate_prefix[0] = _TAG_SOURCE_RATE
        memcpy(&self.c.source_rate_prefix[1], &listener_id, 8)
        self.c.max_connections = config.max_connections
        self.c.max_per_source = config.max_connections_per_source
        self.c.prefix_v4 = _clamp(config.source_prefix_v4, 32)
        self.c.prefix_v6 = _clamp(config.source_prefix_v6, 128)
        self.listener_rate = RateLimit.of(config.new_connections_per_second, config.new_connections_burst)
        self.source_rate = RateLimit.of(
            config.new_connections_per_second_per_source, config.new_connections_burst_per_source
        )
        self.c.listener_limited = self.listener_rate is not None
        if self.c.listener_limited:
            self.c.listener_burst, self.c.listener_window = self.listener_rate.burst, self.listener_rate.window
        self.c.source_limited = self.source_rate is not None
        if self.c.source_limited:
            self.c.source_burst, self.c.source_window = self.source_rate.burst, self.source_rate.window

    @property
    def listener_bucket(self):
        """The listener's open connections in ``counters``; kept by :meth:`updated`."""
        return self.c.listener_bucket

    @listener_bucket.setter
    def listener_bucket(self, Py_ssize_t bucket):
        self.c.listener_bucket = bucket & _COUNTER_MASK

    @property
    def listener_rate_bucket(self):
        return self.c.listener_rate_bucket

    @property
    def listener_id(self):
        """The 64-bit id of the listener in its sources' rate keys."""
        cdef uint64_t listener_id
        memcpy(&listener_id, &self.c.source_rate_prefix[1], 8)
        return le64toh(listener_id)

    @property
    def max_connections(self):
        return self.c.max_connections

    @property
    def max_per_source(self):
        return self.c.max_per_source

    @property
    def prefix_v4(self):
        return self.c.prefix_v4

    @property
    def prefix_v6(self):
        return self.c.prefix_v6

    def updated(self, config):
        """The limits of a reloaded config for the same socket. Open connections were counted under
        this listener's bucket and give their slots back there, even if the listener was renamed."""
        cdef Admission admission = Admission(config, self.counters, self.rates)
        admission.c.listener_bucket = self.c.listener_bucket
        return admission

    def admit(self, str address, double now):
        """``("", source bucket)`` when admitted (and counted), else ``(reason, 0)``: :c:func:`admit_peer`
        on the text address ``socket.accept`` reports (``ValueError`` if it is none)."""
        cdef sockaddr_storage peer
        cdef uint32_t bucket
        _parse_peer(address, &peer)
        cdef int code = admit_peer(&self.c, <sockaddr *>&peer, now, &bucket)
        return _REASONS[code], bucket

    def release(self, Py_ssize_t source_bucket):
        """A connection admitted here closed: give its open-connection slots back."""
        release_peer(&self.c, <uint32_t>(source_bucket & _COUNTER_MASK))


# ---- for tests and bench/limits_cost.py only: the C entry point on a real sockaddr ---------------------

cdef void _fill_sockaddr(sockaddr_storage *peer, str host, int port) except *:
    """A sockaddr as accept4 fills it, built through ``ipaddress`` (not the text path under test)."""
    import ipaddress

    address = ipaddress.ip_address(host)
    packed = address.packed
    memset(peer, 0, sizeof(sockaddr_storage))
    if address.version == 4:
        (<sockaddr_in *>peer).sin_family = AF_INET
        (<sockaddr_in *>peer).sin_port = htons(port)
        memcpy(&(<sockaddr_in *>peer).sin_addr, PyBytes_AS_STRING(packed), 4)
    else:
        (<sockaddr_in6 *>peer).sin6_family = AF_INET6
        (<sockaddr_in6 *>peer).sin6_port = htons(port)
        (<sockaddr_in6 *>peer).sin6_flowinfo = <uint32_t>port * 2654435761u  # arbitrary: never read
        scope = address.scope_id
        if scope:
            (<sockaddr_in6 *>peer).sin6_scope_id = int(scope) if scope.isdigit() else len(scope) + 1
        memcpy(&(<sockaddr_in6 *>peer).sin6_addr, PyBytes_AS_STRING(packed), 16)


def _admit_peer(Admission admission not None, str host, int port, double now):
    """Test only: :c:func:`admit_peer` on a sockaddr built from ``(host, port)``; ``(code, bucket)``."""
    cdef sockaddr_storage peer
    cdef uint32_t bucket
    cdef int code
    _fill_sockaddr(&peer, host, port)
    with nogil:
        code = admit_peer(&admission.c, <sockaddr *>&peer, now, &bucket)
    return code, bucket


def _admit_release_loop(Admission admission not None, list peers, Py_ssize_t calls, double start, double step):
    """Bench only: ``calls`` times admit_peer + release_peer (if admitted) over ``peers`` ((host, port)
    pairs, in turn) at ``start + i * step``, without the GIL; returns how many were refused."""
    cdef Py_ssize_t count = len(peers), index, refused = 0
    cdef uint32_t bucket
    if count == 0:
        raise ValueError("no peers")
    cdef sockaddr_storage *table = <sockaddr_storage *>malloc(count * sizeof(sockaddr_storage))
    if table == NULL:
        raise MemoryError()
    try:
        for index in range(count):
            _fill_sockaddr(&table[index], peers[index][0], peers[index][1])
        with nogil:
            for index in range(calls):
                if admit_peer(&admission.c, <sockaddr *>&table[index % count], start + index * step, &bucket):
                    refused += 1
                else:
                    release_peer(&admission.c, bucket)
    finally:
        free(table)
    return refused
