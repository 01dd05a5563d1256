# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The PROXY protocol encoder and the TLS ClientHello peek, compiled (docs/dataplane-core.md steps 4 and 7).

The compiled loop calls these per connection, without the interpreter: ``noexcept nogil`` C functions
(declared in ``_wire_c.pxd``) that allocate nothing, build no Python object and never read past the
bytes they are given. They replace, bit for bit, what the Python path does today, which stays as the
test oracle (``tests/unit/test_wire_c.py``):

* ``proxy_v1(out, cap, source, destination)`` writes ``proxy_protocol.encode_v1(peer, destination,
  family)`` and ``proxy_v2(..., unique_id, authority, authority_len)`` writes
  ``proxy_protocol.encode_v2(peer, destination, family, tlvs=[unique_id_tlv(unique_id)] + [(AUTHORITY,
  authority)] if authority_len > 0)`` (``Connection._proxy_header``), where peer and destination are the
  two sockaddrs and family is theirs (the listener's). Ports are copied from ``sin_port``/``sin6_port``
  (network order already); flow labels and scope ids are not part of a header. Both IPv4-mapped
  (``::ffff:a.b.c.d``) means IPv4, as in Python. A family ``AF_UNSPEC`` source gives v1's ``PROXY
  UNKNOWN``. -1, with nothing written, where Python raises (families differ or are not IP, a header
  over 16 + 65535 bytes) and when the header does not fit ``cap``. v1's IPv6 text is written by
  ``_ipv6_text``, which reproduces glibc's ``inet_ntop`` (what ``socket.inet_ntop`` returns on the
  Debian hosts) at a fortieth of its cost; on another C library the Python text could differ, and
  the tests compare the two on every pattern of zero words.
* ``peek_hello(data, n, name, name_len)`` is the decision ``Connection._read_first_bytes`` takes on
  its first bytes: ``tls_sni.looks_like_tls_client_hello``, then ``tls_sni.peek_sni``, then
  ``Connection._client_hello_incomplete`` (only while fewer than 16384 bytes were read). The parser
  follows ``tls_sni.py`` step by step, with the same bounds checks in the same order; only the
  reassembly of a ClientHello split over several records differs in how: instead of copying the
  fragments into one buffer it reads the message through the record headers (``_Message``).
  ``name`` gets the lowercased host name and a NUL (so ``SNI_MAX + 1`` bytes); ``*name_len`` its
  length, 0 unless ``HELLO_SNI``. Other results may leave part of a rejected name in ``name``: only
  ``*name_len`` says what it holds.

The Python-visible functions at the end (``encode_v1``, ``encode_v2``, ``peek_hello``) exist for the
tests and the benchmark only; the data plane does not call them.
"""

from libc.stdint cimport uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy, memset

from anycastlb.dataplane._c_net cimport (
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    htons,
    ntohs,
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

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)

SOURCE_SHA256 = ANYCASTLB_SOURCE_SHA256.decode("ascii")  # checked against the .pyx at import


# ---- PROXY protocol (wire/proxy_protocol.py; HAProxy's doc/proxy-protocol.txt §2.1, §2.2) -------------

cdef enum:
    _V1_ROOM = 128  # the longest line: "PROXY TCP6 " + 2 * 39 (8 words) + 3 spaces + 2 * 5 + CRLF = 104
    _V2_FIXED = 16  # signature, ver_cmd, fam, len
    _UNIQUE_ID_TLV = 3 + 8  # §2.2.5 PP2_TYPE_UNIQUE_ID: type, length, the id as 8 bytes big-endian
    _TLV_TYPE_AUTHORITY = 0x02  # §2.2.2
    _TLV_TYPE_UNIQUE_ID = 0x05  # §2.2.5
    _V2_PROXY = 0x21  # version 2, command PROXY
    _V2_TCP4 = 0x11
    _V2_TCP6 = 0x21

# §2.2: \x0D \x0A \x0D \x0A \x00 \x0D \x0A \x51 \x55 \x49 \x54 \x0A
cdef const char *_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
cdef const char *_HEX = b"0123456789abcdef"


cdef inline bint _mapped(const uint8_t *address) noexcept nogil:
    """An IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2): ten zero bytes, then 0xff 0xff."""
    cdef int index
    for index in range(10):
        if address[index] != 0:
            return False
    return address[10] == 0xFF and address[11] == 0xFF


cdef int _endpoints(const sockaddr *source, const sockaddr *destination, const uint8_t **src,
                    const uint8_t **dst, const uint8_t **sport, const uint8_t **dport) noexcept nogil:
    """The family the header is written in (AF_INET or AF_INET6), pointing at the addresses and ports
    (network order) to write; -1 if the pair is not one IP family (encode_v2 raises then)."""
    cdef const sockaddr_in *source4
    cdef const sockaddr_in *destination4
    cdef const sockaddr_in6 *source6
    cdef const sockaddr_in6 *destination6
    if source.sa_family != destination.sa_family:
        return -1
    if source.sa_family == AF_INET:
        source4, destination4 = <const sockaddr_in *>source, <const sockaddr_in *>destination
        src[0], dst[0] = <const uint8_t *>&source4.sin_addr, <const uint8_t *>&destination4.sin_addr
        sport[0], dport[0] = <const uint8_t *>&source4.sin_port, <const uint8_t *>&destination4.sin_port
        return AF_INET
    if source.sa_family != AF_INET6:
        return -1
    source6, destination6 = <const sockaddr_in6 *>source, <const sockaddr_in6 *>destination
    src[0] = <const uint8_t *>source6.sin6_addr.s6_addr
    dst[0] = <const uint8_t *>destination6.sin6_addr.s6_addr
    sport[0], dport[0] = <const uint8_t *>&source6.sin6_port, <const uint8_t *>&destination6.sin6_port
    if _mapped(src[0]) and _mapped(dst[0]):  # what the connection really was (proxy_protocol.py)
        src[0] += 12
        dst[0] += 12
        return AF_INET
    return AF_INET6


cdef inline Py_ssize_t _decimal(char *out, unsigned int value) noexcept nogil:
    """``value`` in decimal without leading zeros (what %d and %u write); returns the digits written."""
    cdef char digits[10]
    cdef Py_ssize_t count = 0, index
    while True:
        digits[count] = <char>(48 + value % 10)
        count += 1
        value //= 10
        if value == 0:
            break
    for index in range(count):
        out[index] = digits[count - 1 - index]
    return count


cdef inline Py_ssize_t _ipv4_text(char *out, const uint8_t *address) noexcept nogil:
    """Dotted quad, what every inet_ntop(AF_INET) writes ("%u.%u.%u.%u")."""
    cdef Py_ssize_t length = 0, index
    for index in range(4):
        if index:
            out[length] = c'.'
            length += 1
        length += _decimal(out + length, address[index])
    return length


cdef Py_ssize_t _ipv6_text(char *out, const uint8_t *address) noexcept nogil:
    """The text glibc's inet_ntop(AF_INET6) writes, hence socket.inet_ntop's (tested against it on
    every pattern of zero words). With libc's (a sprintf per word) a v1 IPv6 header took ~1.2 us,
    with this one ~0.1 us (bench/wire_cost.py).

    Eight 16-bit words in lowercase hex without leading zeros, joined by ":"; the longest run of two or
    more zero words (the first of equally long ones) becomes "::"; and when that run starts the address
    and is six words long, or five followed by ffff, the last 32 bits are a dotted quad (::a.b.c.d and
    ::ffff:a.b.c.d)."""
    cdef unsigned int words[8]
    cdef int index, best = -1, best_len = 0, run = 0
    cdef Py_ssize_t length = 0
    cdef unsigned int value, shift
    for index in range(8):
        words[index] = (<unsigned int>address[2 * index] << 8) | address[2 * index + 1]
        if words[index] == 0:
            run += 1
            if run > best_len:
                best, best_len = index + 1 - run, run
        else:
            run = 0
    if best_len < 2:
        best, best_len = -1, 0
    if best == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
        if best_len == 5:
            memcpy(out, b"::ffff:", 7)
            length = 7
        else:
            memcpy(out, b"::", 2)
            length = 2
        return length + _ipv4_text(out + length, address + 12)
    index = 0
    while index < 8:
        if index == best:
            out[length] = c':'
            out[length + 1] = c':'
            length += 2
            index += best_len
            continue
        if index and index != best + best_len:  # no separator right after "::"
            out[length] = c':'
            length += 1
        value = words[index]
        shift = 12
        while shift and not (value >> shift):  # no leading zeros; 0 is "0"
            shift -= 4
        while True:
            out[length] = _HEX[(value >> shift) & 0xF]
            length += 1
            if shift == 0:
                break
            shift -= 4
        index += 1
    return length


cdef Py_ssize_t proxy_v1(char *out, Py_ssize_t cap, const sockaddr *source,
                         const sockaddr *destination) noexcept nogil:
    """§2.1: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n" (proxy_protocol.encode_v1)."""
    cdef char line[_V1_ROOM]
    cdef const uint8_t *src
    cdef const uint8_t *dst
    cdef const uint8_t *sport
    cdef const uint8_t *dport
    cdef Py_ssize_t length
    cdef int family
    if source.sa_family == AF_UNSPEC:  # §2.1: only when the line cannot be filled correctly
        if cap < 15:
            return -1
        memcpy(out, b"PROXY UNKNOWN\r\n", 15)
        return 15
    family = _endpoints(source, destination, &src, &dst, &sport, &dport)
    if family < 0:
        return -1
    if family == AF_INET:
        memcpy(line, b"PROXY TCP4 ", 11)
    else:
        memcpy(line, b"PROXY TCP6 ", 11)
    length = 11
    length += _ipv4_text(line + length, src) if family == AF_INET else _ipv6_text(line + length, src)
    line[length] = c' '
    length += 1
    length += _ipv4_text(line + length, dst) if family == AF_INET else _ipv6_text(line + length, dst)
    line[length] = c' '
    length += 1
    length += _decimal(line + length, ntohs((<const uint16_t *>sport)[0]))
    line[length] = c' '
    length += 1
    length += _decimal(line + length, ntohs((<const uint16_t *>dport)[0]))
    line[length] = c'\r'
    line[length + 1] = c'\n'
    length += 2
    if length > cap:
        return -1
    memcpy(out, line, length)
    return length


cdef Py_ssize_t proxy_v2(char *out, Py_ssize_t cap, const sockaddr *source, const sockaddr *destination,
                         uint64_t unique_id, const char *authority, Py_ssize_t authority_len) noexcept nogil:
    """§2.2 binary header, PROXY command over TCP, then the UNIQUE_ID and (if any) AUTHORITY TLVs
    (proxy_protocol.encode_v2 as Connection._proxy_header calls it)."""
    cdef const uint8_t *src
    cdef const uint8_t *dst
    cdef const uint8_t *sport
    cdef const uint8_t *dport
    cdef Py_ssize_t size, length, pos, shift
    cdef int family = _endpoints(source, destination, &src, &dst, &sport, &dport)
    if family < 0:
        return -1
    size = 4 if family == AF_INET else 16
    length = 2 * size + 4 + _UNIQUE_ID_TLV  # §2.2: the length covers the addresses and every TLV
    if authority_len > 0:
        if authority_len > 65535:  # a TLV's length is 16 bits
            return -1
        length += 3 + authority_len
    if length > 65535 or _V2_FIXED + length > cap:  # the header's length is 16 bits too
        return -1
    memcpy(out, _V2_SIGNATURE, 12)
    out[12] = <char>_V2_PROXY
    out[13] = <char>(_V2_TCP4 if family == AF_INET else _V2_TCP6)
    out[14] = <char>(length >> 8)
    out[15] = <char>(length & 0xFF)
    pos = _V2_FIXED
    memcpy(out + pos, src, size)  # source address, destination address, source port, destination port
    memcpy(out + pos + size, dst, size)
    pos += 2 * size
    memcpy(out + pos, sport, 2)
    memcpy(out + pos + 2, dport, 2)
    pos += 4
    out[pos] = <char>_TLV_TYPE_UNIQUE_ID
    out[pos + 1] = 0
    out[pos + 2] = 8
    pos += 3
    for shift in range(56, -8, -8):
        out[pos] = <char>((unique_id >> shift) & 0xFF)
        pos += 1
    if authority_len > 0:
        out[pos] = <char>_TLV_TYPE_AUTHORITY
        out[pos + 1] = <char>(authority_len >> 8)
        out[pos + 2] = <char>(authority_len & 0xFF)
        memcpy(out + pos + 3, authority, authority_len)
        pos += 3 + authority_len
    return pos


# ---- the ClientHello peek (dataplane/tls_sni.py; RFC 8446 §5.1, §4.1.2; RFC 6066 §3) ------------------

cdef enum:
    _HANDSHAKE = 22  # ContentType.handshake
    _CLIENT_HELLO = 1  # HandshakeType.client_hello
    _SERVER_NAME = 0  # ExtensionType.server_name
    _HOST_NAME = 0  # NameType.host_name
    _MAX_RECORD = 1 << 14  # a plaintext fragment "MUST NOT exceed 2^14 bytes"
    _RANDOM_END = 2 + 32  # legacy_version + random
    _MAX_LABEL = 63
    _FIRST_BYTES = 16384  # connection.py: the first read; a full one never waits for more


cdef struct _Message:
    # A handshake message carried by the records at the start of ``data``, read in place. Byte
    # ``offset`` of the message is in the record whose fragment holds message bytes
    # [start, start + length); the record's header is at data[record].
    const uint8_t *data
    Py_ssize_t record
    Py_ssize_t start
    Py_ssize_t length


cdef inline Py_ssize_t _u16(const uint8_t *at) noexcept nogil:
    return (<Py_ssize_t>at[0] << 8) | at[1]


cdef inline uint8_t _at(_Message *message, Py_ssize_t offset) noexcept nogil:
    """Byte ``offset`` of the message. Only for offsets below the message bytes _hello_end saw, whose
    records it checked: every header walked here is a valid one and every fragment is non-empty."""
    if offset < message.start:  # the parser reads forwards; going back starts over
        message.record = 0
        message.start = 0
        message.length = _u16(message.data + 3)
    while offset >= message.start + message.length:
        message.start += message.length
        message.record += 5 + message.length
        message.length = _u16(message.data + message.record + 3)
    return message.data[message.record + 5 + offset - message.start]


cdef inline Py_ssize_t _u16_at(_Message *message, Py_ssize_t offset) noexcept nogil:
    cdef Py_ssize_t high = _at(message, offset)
    return (high << 8) | _at(message, offset + 1)


cdef Py_ssize_t _hello_end(const uint8_t *data, Py_ssize_t n, _Message *message) noexcept nogil:
    """Where the ClientHello body ends in the handshake message (4 + its length) once the records at
    the start of ``data`` hold all of it; -1 if they are anything else or stop too early. This is
    tls_sni._client_hello_body, with the same checks in the same order; the body is message[4:end]."""
    cdef Py_ssize_t pos = 0, have = 0, needed = -1, length, fragment
    message.data = data
    message.record = 0
    message.start = 0
    message.length = 0
    while pos + 5 <= n:  # each record takes >= 6 bytes (its length is at least 1)
        if data[pos] != _HANDSHAKE or data[pos + 1] != 3:
            return -1
        length = _u16(data + pos + 3)
        if length == 0 or length > _MAX_RECORD:
            return -1
        if pos == 0:
            message.length = length
        fragment = length if length <= n - pos - 5 else n - pos - 5
        have += fragment
        if needed < 0 and have >= 4:
            if _at(message, 0) != _CLIENT_HELLO:
                return -1
            needed = 4 + ((<Py_ssize_t>_at(message, 1) << 16) | _u16_at(message, 2))
        if 0 <= needed <= have:
            return needed
        if fragment < length:
            return -1  # truncated inside this record
        pos += 5 + length
    return -1


cdef inline Py_ssize_t _vector_end(_Message *message, Py_ssize_t pos, int width, Py_ssize_t end) noexcept nogil:
    """tls_sni._vector: where a vector with a ``width``-byte (1 or 2) length at ``pos`` ends, or -1 when
    the length field or the contents run past ``end``."""
    cdef Py_ssize_t start = pos + width, stop
    if start > end:
        return -1
    stop = start + (_at(message, pos) if width == 1 else _u16_at(message, pos))
    return -1 if stop > end else stop


cdef bint _host_name(_Message *message, Py_ssize_t start, Py_ssize_t stop, char *name,
                     Py_ssize_t *name_len) noexcept nogil:
    """tls_sni._host_name's test of one host_name, with its lowercasing: bytes.lower() (ASCII A-Z only)
    then a full match of [a-z0-9_-]{1,63}(\\.[a-z0-9_-]{1,63})* and at most 255 bytes."""
    cdef Py_ssize_t size = stop - start, index, label = 0
    cdef uint8_t c
    if size > SNI_MAX:
        return False
    for index in range(size):
        c = _at(message, start + index)
        if 65 <= c <= 90:  # A-Z
            c += 32
        if c == 46:  # "."
            if label == 0:  # a leading dot or two in a row
                return False
            label = 0
        elif (97 <= c <= 122) or (48 <= c <= 57) or c == 95 or c == 45:  # a-z 0-9 _ -
            label += 1
            if label > _MAX_LABEL:
                return False
        else:
            return False
        name[index] = <char>c
    if label == 0:  # empty, or a trailing dot
        return False
    name[size] = 0
    name_len[0] = size
    return True


cdef bint _peek_sni(const uint8_t *data, Py_ssize_t n, char *name, Py_ssize_t *name_len) noexcept nogil:
    """tls_sni.peek_sni, on message offsets: the body is message[4:end]."""
    cdef _Message message
    cdef Py_ssize_t end = _hello_end(data, n, &message), pos, stop, block_end
    if end < 0 or end - 4 < _RANDOM_END or _at(&message, 4) != 3:
        return False
    pos = 4 + _RANDOM_END  # legacy_session_id<0..32>, cipher_suites<2..2^16-2>, compression_methods<1..2^8-1>
    pos = _vector_end(&message, pos, 1, end)
    if pos < 0:
        return False
    pos = _vector_end(&message, pos, 2, end)
    if pos < 0:
        return False
    pos = _vector_end(&message, pos, 1, end)
    if pos < 0:
        return False
    block_end = _vector_end(&message, pos, 2, end)  # extensions<8..2^16-1>; bytes after it are ignored
    if block_end < 0:
        return False
    pos += 2
    while True:  # tls_sni._extension: the first server_name extension; each step takes >= 4 bytes
        if pos + 4 > block_end:
            return False
        stop = pos + 4 + _u16_at(&message, pos + 2)
        if stop > block_end:
            return False
        if _u16_at(&message, pos) == _SERVER_NAME:
            break
        pos = stop
    block_end = _vector_end(&message, pos + 4, 2, stop)  # tls_sni._host_name: ServerNameList
    if block_end < 0:
        return False
    pos += 6
    while pos < block_end:  # each step takes >= 3 bytes
        stop = _vector_end(&message, pos + 1, 2, block_end)
        if stop < 0:
            return False
        if _at(&message, pos) == _HOST_NAME:  # only the first host_name counts
            return _host_name(&message, pos + 3, stop, name, name_len)
        pos = stop
    return False


cdef inline bint _looks_like_client_hello(const uint8_t *data, Py_ssize_t n) noexcept nogil:
    """tls_sni.looks_like_tls_client_hello: the start of a handshake record carrying a ClientHello
    (a valid prefix counts, even the single byte 0x16)."""
    cdef Py_ssize_t length
    if n <= 0 or data[0] != _HANDSHAKE:
        return False
    if n > 1 and data[1] != 3:
        return False
    if n > 2 and data[2] > 4:
        return False
    if n > 4:
        length = _u16(data + 3)
        if length == 0 or length > _MAX_RECORD:
            return False
    return n <= 5 or data[5] == _CLIENT_HELLO


cdef int peek_hello(const uint8_t *data, Py_ssize_t n, char *name, Py_ssize_t *name_len) noexcept nogil:
    """What Connection._read_first_bytes decides on its first ``n`` bytes (see the module docstring)."""
    name_len[0] = 0
    if not _looks_like_client_hello(data, n):
        return HELLO_NOT_TLS
    if _peek_sni(data, n, name, name_len):
        return HELLO_SNI
    # Connection._client_hello_incomplete: the first record says how long it is.
    if n < _FIRST_BYTES and (n < 5 or n < 5 + _u16(data + 3)):
        return HELLO_INCOMPLETE
    return HELLO_NO_SNI


# ---- Python-visible wrappers: for the tests and bench/wire_cost.py only --------------------------------

cdef enum:
    _GUARD = 64  # bytes after ``cap`` that a wrapper checks were left alone
cdef uint8_t _UNTOUCHED = 0xA5

# The C enum's values under the same names (a Python name cannot be declared twice in Cython).
globals().update(
    PROXY_HEADER_MAX=PROXY_HEADER_MAX,
    SNI_MAX=SNI_MAX,
    HELLO_NOT_TLS=HELLO_NOT_TLS,
    HELLO_INCOMPLETE=HELLO_INCOMPLETE,
    HELLO_NO_SNI=HELLO_NO_SNI,
    HELLO_SNI=HELLO_SNI,
)


cdef int _sockaddr(sockaddr_storage *out, object endpoint, int family) except -1:
    """A sockaddr for a (host, port[, flowinfo, scope_id]) tuple as socket calls return them."""
    cdef bytes host
    cdef object port
    cdef sockaddr_in *inet
    cdef sockaddr_in6 *inet6
    memset(out, 0, sizeof(sockaddr_storage))
    out.ss_family = family
    if family != AF_INET and family != AF_INET6:
        return 0  # AF_UNSPEC (v1 UNKNOWN) ignores the addresses; other families cannot be written
    host, port = endpoint[0].encode(), endpoint[1]
    if b"\0" in host:
        raise ValueError(f"not an address: {endpoint[0]!r}")
    if type(port) is not int or not 0 <= port <= 65535:
        raise ValueError(f"port {port!r} is outside 0..65535")
    if family == AF_INET:
        inet = <sockaddr_in *>out
        if inet_pton(AF_INET, host, &inet.sin_addr) != 1:
            raise ValueError(f"not an AF_INET address: {endpoint[0]!r}")
        inet.sin_port = htons(port)
    else:
        inet6 = <sockaddr_in6 *>out
        if inet_pton(AF_INET6, host, &inet6.sin6_addr) != 1:
            raise ValueError(f"not an AF_INET6 address: {endpoint[0]!r}")
        inet6.sin6_port = htons(port)
    return 0


cdef bytes _result(bytearray buffer, Py_ssize_t cap, Py_ssize_t written):
    """The header, after checking the C function kept to its promises about ``out``."""
    if written < 0:
        if buffer.count(_UNTOUCHED) != len(buffer):
            raise RuntimeError("the encoder wrote into out although it returned -1")
        raise ValueError("the header cannot be written (addresses, or it does not fit)")
    if written > cap or buffer.count(_UNTOUCHED, cap) != _GUARD:
        raise RuntimeError(f"the encoder wrote past cap={cap} (returned {written})")
    return bytes(buffer[:written])


def encode_v1(source, destination, int family, *, cap=None):
    """proxy_v1 on sockaddrs built from the tuples; ValueError where it returns -1."""
    cdef sockaddr_storage src, dst
    cdef Py_ssize_t room = PROXY_HEADER_MAX if cap is None else cap, written
    _sockaddr(&src, source, family)
    _sockaddr(&dst, destination, family)
    buffer = bytearray([_UNTOUCHED]) * (room + _GUARD)
    cdef char *out = buffer
    with nogil:
        written = proxy_v1(out, room, <sockaddr *>&src, <sockaddr *>&dst)
    return _result(buffer, room, written)


def encode_v2(source, destination, int family, uint64_t unique_id, const unsigned char[::1] authority, *,
              cap=None):
    """proxy_v2 on sockaddrs built from the tuples; ValueError where it returns -1."""
    cdef sockaddr_storage src, dst
    cdef Py_ssize_t authority_len = authority.shape[0], written
    cdef Py_ssize_t room = max(PROXY_HEADER_MAX, _V2_FIXED + 36 + _UNIQUE_ID_TLV + 3 + authority_len)
    cdef const char *value = <const char *>&authority[0] if authority_len else NULL
    if cap is not None:
        room = cap
    _sockaddr(&src, source, family)
    _sockaddr(&dst, destination, family)
    buffer = bytearray([_UNTOUCHED]) * (room + _GUARD)
    cdef char *out = buffer
    with nogil:
        written = proxy_v2(out, room, <sockaddr *>&src, <sockaddr *>&dst, unique_id, value, authority_len)
    return _result(buffer, room, written)


def _peek_hello(const unsigned char[::1] data):
    """peek_hello on the buffer, in place: (one of the HELLO_* values, the name if HELLO_SNI)."""
    cdef char name[SNI_MAX + 1]
    cdef Py_ssize_t n = data.shape[0], name_len = -1
    cdef const uint8_t *start = &data[0] if n else NULL
    cdef int state
    with nogil:
        state = peek_hello(start, n, name, &name_len)
    if state == HELLO_SNI:
        return state, name[:name_len]
    if name_len != 0:
        raise RuntimeError(f"peek_hello set name_len={name_len} with state {state}")
    return state, None


globals()["peek_hello"] = _peek_hello  # the C function owns the name in Cython
