# The Maglev pick per connection, compiled (``_maglev_c.pyx``): what the compiled loop cimports.
#
# The table is built in Python (``maglev.py``); ``CompiledMaglev(table)`` only points at its entries,
# so keep the CompiledMaglev alive while its ``view`` is in use. Beyond the comments below:
# - client_key: ``key`` needs room for 16 bytes; returns -1 (and writes nothing) for a family other
#   than AF_INET / AF_INET6.
# - candidates: ``out`` needs room for min(limit, backends) ints (never more are written); limit <= 0,
#   an empty table or key_len < 0 (client_key's -1) returns 0. Reads only: one view may serve any
#   number of callers at once.

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from anycastlb.dataplane._c_net cimport sockaddr

ctypedef struct MaglevView:
    const uint16_t *entries16   # one of entries16/entries32 is set (MaglevTable's array typecode H or I)
    const uint32_t *entries32
    uint32_t size               # M (prime)
    uint32_t backends           # N, indices 0..N-1 into the caller's backend list
    const uint32_t *name_order  # N indices in name order (MaglevTable._name_order)
    const uint8_t *owns         # N flags: 1 if the backend owns >= 1 slot
    uint32_t owners             # how many own >= 1 slot

cdef int client_key(const sockaddr *address, uint8_t *key) noexcept nogil   # writes 4 or 16 bytes, returns the length (IPv4-mapped IPv6 folds to 4), like maglev.client_key
cdef int candidates(const MaglevView *table, const uint8_t *key, int key_len, int limit,
                    const uint8_t *skip, int *out) noexcept nogil
    # skip: N flags (1 = pass over this backend), may be NULL for "none"; writes up to `limit` indices to out and returns how many;
    # identical to MaglevTable.candidates(key, limit, {i: skip[i]}) including the appended non-owner backends in name order.

cdef class CompiledMaglev:
    cdef MaglevView view
    cdef object _keep      # references keeping the buffers alive
