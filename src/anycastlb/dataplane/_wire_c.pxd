# The PROXY protocol encoder and the TLS ClientHello peek as C functions for the compiled loop
# (docs/dataplane-core.md steps 4 and 7). What each one promises, and the Python each one is checked
# against, is in _wire_c.pyx.

from libc.stdint cimport uint8_t, uint64_t
from anycastlb.dataplane._c_net cimport sockaddr

cdef enum:
    PROXY_HEADER_MAX = 512          # room the caller reserves before the first bytes
    SNI_MAX = 255
    HELLO_NOT_TLS = 0               # not a TLS handshake record starting a ClientHello: no SNI, connect now
    HELLO_INCOMPLETE = 1            # looks like a ClientHello but the record is not complete yet: wait (client_hello_wait)
    HELLO_NO_SNI = 2                # a complete ClientHello (or whatever peek_sni can decide on) without a usable SNI
    HELLO_SNI = 3                   # name written

# bytes written at out (<= cap), or -1 when it does not fit / the addresses cannot be written
cdef Py_ssize_t proxy_v1(char *out, Py_ssize_t cap, const sockaddr *source, const sockaddr *destination) noexcept nogil
cdef Py_ssize_t proxy_v2(char *out, Py_ssize_t cap, const sockaddr *source, const sockaddr *destination,
                         uint64_t unique_id, const char *authority, Py_ssize_t authority_len) noexcept nogil
cdef int peek_hello(const uint8_t *data, Py_ssize_t n, char *name, Py_ssize_t *name_len) noexcept nogil
