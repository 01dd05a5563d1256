# cython: language_level=3, boundscheck=False, wraparound=False
"""The C half of bench/wire_cost.py, compiled by it at run time (pyximport, in a temporary directory).

Calls the C functions of anycastlb.dataplane._wire_c the way the compiled loop will: from another
module, through ``cimport`` (Cython's exported function pointers), without the GIL, on sockaddrs and
a receive buffer, into a reserved header area. Each function times ``calls`` calls with CLOCK_MONOTONIC
and returns nanoseconds per call.
"""

from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy, memset
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
from anycastlb.dataplane._wire_c cimport PROXY_HEADER_MAX, SNI_MAX, peek_hello, proxy_v1, proxy_v2


cdef double _now() noexcept nogil:
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return <double>now.tv_sec * 1e9 + <double>now.tv_nsec


cdef void _fill(sockaddr_storage *out, int family, const unsigned char[::1] packed, int port):
    memset(out, 0, sizeof(sockaddr_storage))
    out.ss_family = family
    if family == AF_INET:
        memcpy(&(<sockaddr_in *>out).sin_addr, &packed[0], 4)
        (<sockaddr_in *>out).sin_port = htons(port)
    else:
        memcpy((<sockaddr_in6 *>out).sin6_addr.s6_addr, &packed[0], 16)
        (<sockaddr_in6 *>out).sin6_port = htons(port)


def time_proxy(int version, int family, const unsigned char[::1] source, int source_port,
               const unsigned char[::1] destination, int destination_port, uint64_t unique_id,
               const unsigned char[::1] authority, long calls):
    """(ns per call, the last header written) for proxy_v1 (version 1) or proxy_v2 (version 2)."""
    cdef sockaddr_storage src, dst
    cdef char out[PROXY_HEADER_MAX]
    cdef Py_ssize_t written = -1, authority_len = authority.shape[0]
    cdef const char *value = <const char *>&authority[0] if authority_len else NULL
    cdef long index
    cdef double started, elapsed
    _fill(&src, family, source, source_port)
    _fill(&dst, family, destination, destination_port)
    with nogil:
        started = _now()
        if version == 1:
            for index in range(calls):
                written = proxy_v1(out, PROXY_HEADER_MAX, <sockaddr *>&src, <sockaddr *>&dst)
        else:
            for index in range(calls):
                written = proxy_v2(out, PROXY_HEADER_MAX, <sockaddr *>&src, <sockaddr *>&dst,
                                   unique_id + <uint64_t>index, value, authority_len)
        elapsed = _now() - started
    if written < 0:
        raise ValueError("the header was not written")
    return elapsed / calls, out[:written]


def time_peek(const unsigned char[::1] data, long calls):
    """(ns per call, (state, name)) for peek_hello over ``data`` in place."""
    cdef char name[SNI_MAX + 1]
    cdef Py_ssize_t name_len = 0, n = data.shape[0]
    cdef const uint8_t *start = &data[0] if n else NULL
    cdef int state = -1
    cdef long index
    cdef double started, elapsed
    with nogil:
        started = _now()
        for index in range(calls):
            state = peek_hello(start, n, name, &name_len)
        elapsed = _now() - started
    return elapsed / calls, (state, name[:name_len] if name_len else None)
