# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: libraries = z
"""The Maglev pick per connection, compiled: client key, slot hash and candidate walk (issue 12, step 3).

The theory of operation (population, weights, why the walk) is in ``maglev.py``; the table is still
built there, in Python, once per backend set. This module only reads a built table, through a
:c:type:`MaglevView` of plain C arrays, so the compiled loop can pick a backend for a connection
without the interpreter: ``client_key`` (the packed address from the ``sockaddr`` accept4 returned)
then ``candidates`` (slot hash, walk, non-owners), both ``noexcept nogil``. ``MaglevTable.candidates``
and ``maglev.client_key`` stay as the oracle: the property tests (``tests/unit/test_maglev_c.py``)
demand identical answers on random tables, keys, limits and skip sets.

Slot hash, bit-exact with ``MaglevTable._slot``: ``(crc32(key) * 0x9E3779B97F4A7C15 >> 32) % M``.
Python multiplies with arbitrary precision: a 32-bit CRC times a 64-bit constant is a 96-bit product.
Its top 64 bits are computed exactly from the constant's two 32-bit halves,
``crc * hi + (crc * lo >> 32)``: both products fit in 64 bits, and the sum is the true
``product >> 32`` (below ``2**64``), so it cannot overflow either (no ``__int128`` needed).

CRC32 is zlib's own ``crc32`` (the function Python's ``zlib.crc32`` calls), linked with ``-lz``
(the ``distutils: libraries`` line above). ``zlib.h`` comes with ``zlib1g-dev``, which Debian's
``python3-dev`` already pulls in (python3-dev -> libpython3-dev -> libpython3.11-dev -> zlib1g-dev), so
the install instructions (``gcc python3-dev``) do not change.

Skip sets are N byte flags rather than a Python set; the compiled loop can keep one per listener (the
health view's down bitmap plus local ejections, ``BackendSet.down``).
"""

from array import array

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memcpy, memset
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

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
    #error "build with setup.py: it defines ANYCASTLB_SOURCE_SHA256 (the .pyx's digest)"
    #endif
    """
    const char *ANYCASTLB_SOURCE_SHA256

cdef extern from "zlib.h" nogil:
    unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int length)

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)

SOURCE_SHA256 = ANYCASTLB_SOURCE_SHA256.decode("ascii")  # checked against the .pyx at import

cdef uint64_t _GOLDEN_HI = 0x9E3779B9  # 0x9E3779B97F4A7C15 (maglev._GOLDEN64) in two halves
cdef uint64_t _GOLDEN_LO = 0x7F4A7C15
cdef uint8_t _V4_MAPPED_PREFIX[12]
memset(_V4_MAPPED_PREFIX, 0, 10)
_V4_MAPPED_PREFIX[10] = 0xFF
_V4_MAPPED_PREFIX[11] = 0xFF

cdef enum:
    _STACK_WORDS = 64  # the walk's "met already" bitmap lives on the stack up to 64 * 64 backends


cdef inline uint64_t _mix(uint64_t crc) noexcept nogil:
    """``crc * 0x9E3779B97F4A7C15 >> 32`` for ``crc < 2**32``, exactly (see the module docstring)."""
    return crc * _GOLDEN_HI + ((crc * _GOLDEN_LO) >> 32)


cdef inline uint32_t _slot(const uint8_t *key, int key_len, uint32_t size) noexcept nogil:
    cdef uint64_t crc = <uint32_t>crc32(0, key, <unsigned int>key_len)  # zlib returns it in a ulong
    return <uint32_t>(_mix(crc) % size)


cdef inline uint32_t _entry(const MaglevView *table, uint32_t slot) noexcept nogil:
    if table.entries16 != NULL:
        return table.entries16[slot]
    return table.entries32[slot]


cdef inline bint _met(const uint64_t *seen, uint32_t backend, const int *out, int count) noexcept nogil:
    """Is ``backend`` among the ``count`` found so far? The bitmap, or a scan when it could not be had."""
    cdef int index
    if seen != NULL:
        return (seen[backend >> 6] >> (backend & 63)) & 1
    for index in range(count):
        if out[index] == <int>backend:
            return True
    return False


cdef int client_key(const sockaddr *address, uint8_t *key) noexcept nogil:
    """The packed client address as ``maglev.client_key`` gives it: 4 bytes for IPv4 and IPv4-mapped
    IPv6 (``::ffff:a.b.c.d``), else 16; the port, flow label and scope id are not part of it.
    ``key`` needs room for 16 bytes. Returns the length, or -1 for a family other than AF_INET(6)."""
    cdef const uint8_t *raw
    if address.sa_family == AF_INET:
        memcpy(key, &(<const sockaddr_in *>address).sin_addr, 4)
        return 4
    if address.sa_family == AF_INET6:
        raw = <const uint8_t *>&(<const sockaddr_in6 *>address).sin6_addr
        if memcmp(raw, _V4_MAPPED_PREFIX, 12) == 0:
            memcpy(key, raw + 12, 4)
            return 4
        memcpy(key, raw, 16)
        return 16
    return -1


cdef int candidates(const MaglevView *table, const uint8_t *key, int key_len, int limit,
                    const uint8_t *skip, int *out) noexcept nogil:
    """``MaglevTable.candidates(key, limit, skip)`` on the view; ``out`` needs ``min(limit, N)`` ints.

    Same steps as the Python method: the walk forward from the key's slot collects distinct owners
    outside ``skip`` until it has ``min(limit, owners outside skip)`` of them (all met within one lap),
    then backends owning no slot are appended in name order. Python appends "not found and not
    skipped" from the whole name order; appending happens only when the walk ended short of
    ``limit``, i.e. with every owner outside ``skip`` found, so that is exactly "owns no slot and not
    skipped", the test used here. The walk also stops after one lap, which never ends it earlier on a
    view built by ``CompiledMaglev`` (owners and owns come from the entries themselves) and keeps a
    hand-made inconsistent view from looping forever. ``limit <= 0``, an empty table or ``key_len < 0``
    (``client_key``'s -1 passed on unchecked) gives 0: no backend rather than a read of 4 GiB of key.
    """
    cdef uint32_t n = table.backends, owners_left = table.owners, index, backend, slot, steps
    cdef uint32_t words = (n + 63) >> 6
    cdef int walk_to, count = 0
    cdef uint64_t stack_seen[_STACK_WORDS]
    cdef uint64_t *seen = stack_seen
    if limit <= 0 or n == 0 or key_len < 0:
        return 0
    if skip != NULL:
        for index in range(n):
            if skip[index] and table.owns[index]:
                owners_left -= 1
    walk_to = limit if <uint32_t>limit < owners_left else <int>owners_left
    if walk_to > 0:
        if words <= _STACK_WORDS:
            memset(stack_seen, 0, words * sizeof(uint64_t))
        else:
            seen = <uint64_t *>calloc(words, sizeof(uint64_t))  # NULL: _met scans ``out`` instead
        slot = _slot(key, key_len, table.size)
        steps = 0
        while count < walk_to and steps < table.size:
            backend = _entry(table, slot)
            if (skip == NULL or not skip[backend]) and not _met(seen, backend, out, count):
                if seen != NULL:
                    seen[backend >> 6] |= (<uint64_t>1) << (backend & 63)
                out[count] = <int>backend
                count += 1
            slot += 1
            if slot == table.size:
                slot = 0
            steps += 1
        if seen != stack_seen:
            free(seen)
    if count < limit and table.owners < n:
        for index in range(n):
            if count == limit:
                break
            backend = table.name_order[index]
            if table.owns[backend] or (skip != NULL and skip[backend]):
                continue
            out[count] = <int>backend
            count += 1
    return count


cdef class CompiledMaglev:
    """A built :class:`~anycastlb.dataplane.maglev.MaglevTable` as a :c:type:`MaglevView`.

    Zero-copy over the table's entries (its ``entries`` memoryview is kept, which also keeps the
    array from being resized); the name order and the owns flags are built once here, from the
    table's backend names (sorted as ``MaglevTable`` sorts them) and from its entries (a backend owns
    a slot iff its index appears in them), so nothing private of ``MaglevTable`` is read.
    """

    def __init__(self, table):
        cdef MaglevView view  # filled here, published at the end: a failed (re)init leaves the old one
        cdef const uint16_t[::1] entries16
        cdef const uint32_t[::1] entries32
        cdef const uint32_t[::1] order_view
        cdef uint8_t[::1] owns_view
        cdef Py_ssize_t n = len(table.backends), size = table.size, slot
        cdef uint32_t backend
        if n > 0xFFFFFFFF or not 0 < size <= 0xFFFFFFFF:
            raise ValueError(f"Maglev table out of range for the compiled view: {n} backends, size {size}")
        memset(&view, 0, sizeof(MaglevView))
        view.size = <uint32_t>size
        view.backends = <uint32_t>n
        entries = table.entries  # read-only memoryview: holds the array's buffer while we point into it
        names = [backend_.name for backend_ in table.backends]
        order = array("I", sorted(range(n), key=names.__getitem__))
        owns = bytearray(n)
        if n > 0:  # else an empty table: candidates() returns 0 before reading anything
            if len(entries) != size:
                raise ValueError(f"Maglev table has {len(entries)} entries for size {size}")
            if entries.itemsize == 2:
                entries16 = entries
                view.entries16 = &entries16[0]
            elif entries.itemsize == 4:
                entries32 = entries
                view.entries32 = &entries32[0]
            else:
                raise TypeError(f"Maglev entries of {entries.itemsize} bytes; expected 2 or 4 (typecode H or I)")
            owns_view = owns
            for slot in range(size):
                backend = _entry(&view, <uint32_t>slot)
                if backend >= n:
                    raise ValueError(f"Maglev table slot {slot} names backend {backend} of {n}")
                if not owns_view[backend]:
                    owns_view[backend] = 1
                    view.owners += 1
            order_view = order
            view.name_order = &order_view[0]
            view.owns = &owns_view[0]
        self._keep = (entries, order, owns)
        self.view = view

    @property
    def size(self):
        """M, the number of slots."""
        return self.view.size

    @property
    def count(self):
        """N, the number of backends."""
        return self.view.backends

    @property
    def owners(self):
        """How many backends own at least one slot."""
        return self.view.owners

    def candidates(self, bytes key not None, Py_ssize_t limit, skip=frozenset()):
        """The C ``candidates`` with ``MaglevTable.candidates``'s signature (for tests and benchmarks).

        ``skip`` indices outside ``0..N-1`` are ignored, as the Python method ignores them.
        """
        cdef uint32_t n = self.view.backends
        cdef const uint8_t *skip_flags = NULL
        cdef uint8_t[::1] flags_view
        cdef int *out
        cdef int count, index
        if limit < 0:
            raise ValueError(f"candidates limit must be >= 0, got {limit}")
        if n == 0 or limit == 0:
            return []
        if len(key) > 0x7FFFFFFF:
            raise ValueError("key too long")
        if limit > n:
            limit = n  # never more than N distinct backends
        if skip:
            flags = bytearray(n)
            for item in skip:
                if 0 <= item < n:
                    flags[item] = 1
            flags_view = flags
            skip_flags = &flags_view[0]
        out = <int *>PyMem_Malloc(limit * sizeof(int))
        if out == NULL:
            raise MemoryError()
        try:
            count = candidates(&self.view, <const uint8_t *><const char *>key, <int>len(key), <int>limit,
                               skip_flags, out)
            return [out[index] for index in range(count)]
        finally:
            PyMem_Free(out)


cdef int _sockaddr_of(str host, int port, sockaddr_storage *storage) except -1:
    """Fill ``storage`` as accept4 would for a peer ``host``:``port`` (a zone suffix is dropped)."""
    text = host.partition("%")[0].encode("ascii")
    cdef sockaddr_in *v4 = <sockaddr_in *>storage
    cdef sockaddr_in6 *v6 = <sockaddr_in6 *>storage
    if b"\0" in text or not 0 <= port <= 0xFFFF:
        raise ValueError(f"not an IP address and port: {host!r}, {port}")
    memset(storage, 0, sizeof(sockaddr_storage))
    if b":" not in text:
        v4.sin_family = AF_INET
        v4.sin_port = htons(<uint16_t>port)
        if inet_pton(AF_INET, text, &v4.sin_addr) != 1:
            raise ValueError(f"not an IP address: {host!r}")
    else:
        v6.sin6_family = AF_INET6
        v6.sin6_port = htons(<uint16_t>port)
        if inet_pton(AF_INET6, text, &v6.sin6_addr) != 1:
            raise ValueError(f"not an IP address: {host!r}")
    return 0


def client_key_of(str host not None, int port):
    """The C ``client_key`` of a sockaddr built from ``host`` and ``port`` (for tests)."""
    cdef sockaddr_storage storage
    cdef uint8_t key[16]
    _sockaddr_of(host, port, &storage)
    cdef int length = client_key(<const sockaddr *>&storage, key)
    return bytes(key[:length])


def slot_of(bytes key not None, uint32_t size):
    """The C slot hash of ``key`` for a table of ``size`` slots (for tests)."""
    if size == 0:
        raise ValueError("size must be > 0")
    return _slot(<const uint8_t *><const char *>key, <int>len(key), size)


def mix_of(uint32_t crc):
    """The C ``crc * 0x9E3779B97F4A7C15 >> 32`` (for tests: every 32-bit input, not only CRCs of keys)."""
    return _mix(crc)


# The benchmarks call the C functions through a pointer, as another compiled module does after
# cimporting them, so the compiler cannot inline them into the timed loop.
cdef int (*_candidates_fn)(const MaglevView *, const uint8_t *, int, int, const uint8_t *,
                            int *) noexcept nogil
cdef int (*_client_key_fn)(const sockaddr *, uint8_t *) noexcept nogil
_candidates_fn = candidates
_client_key_fn = client_key


cdef int64_t _now_ns() noexcept nogil:
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return <int64_t>now.tv_sec * 1000000000 + now.tv_nsec


def time_pick(CompiledMaglev table not None, hosts, int limit, skip, Py_ssize_t rounds, bint with_key):
    """ns per pick in C, no Python per call: ``rounds`` passes over ``hosts``, each one
    ``candidates(limit, skip)`` on a key prepared in advance, or, ``with_key``, ``client_key`` from
    the host's sockaddr first (what the loop does per connection). For bench/maglev_cost.py."""
    cdef Py_ssize_t count = len(hosts), index, round_
    cdef uint32_t n = table.view.backends
    cdef sockaddr_storage *addresses
    cdef uint8_t *keys
    cdef int *lengths
    cdef int out[64]
    memset(out, 0, sizeof(out))
    cdef uint8_t key[16]
    cdef int length
    cdef uint64_t checksum = 0
    cdef int64_t started, elapsed
    cdef uint8_t[::1] flags_view
    cdef const uint8_t *skip_flags = NULL
    if not 0 <= limit <= 64 or count == 0 or rounds <= 0:
        raise ValueError("limit 0..64, at least one host and one round")
    if skip:
        flags = bytearray(n)
        for item in skip:
            flags[item] = 1
        flags_view = flags
        skip_flags = &flags_view[0]
    addresses = <sockaddr_storage *>PyMem_Malloc(count * sizeof(sockaddr_storage))
    keys = <uint8_t *>PyMem_Malloc(count * 16)
    lengths = <int *>PyMem_Malloc(count * sizeof(int))
    if addresses == NULL or keys == NULL or lengths == NULL:
        PyMem_Free(addresses)
        PyMem_Free(keys)
        PyMem_Free(lengths)
        raise MemoryError()
    try:
        for index in range(count):
            _sockaddr_of(hosts[index], 40000, &addresses[index])
            lengths[index] = client_key(<const sockaddr *>&addresses[index], keys + index * 16)
        with nogil:
            started = _now_ns()
            for round_ in range(rounds):
                for index in range(count):
                    if with_key:
                        length = _client_key_fn(<const sockaddr *>&addresses[index], key)
                        checksum += <uint64_t>_candidates_fn(&table.view, key, length, limit, skip_flags, out)
                    else:
                        checksum += <uint64_t>_candidates_fn(&table.view, keys + index * 16, lengths[index],
                                                             limit, skip_flags, out)
                    checksum += <uint64_t>out[0]
            elapsed = _now_ns() - started
    finally:
        PyMem_Free(addresses)
        PyMem_Free(keys)
        PyMem_Free(lengths)
    if checksum == 0xFFFFFFFFFFFFFFFF:  # uses the results, so the loop cannot be dropped
        print("")
    return elapsed / <double>(rounds * count)
