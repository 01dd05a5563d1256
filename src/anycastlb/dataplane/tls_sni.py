"""Read the server name (SNI) out of a TLS ClientHello without terminating TLS. Bytes in, name out, no I/O.

Theory of operation. The edge is an L4 proxy: TLS is terminated by the ingress controller behind the
node, not here. But a client's first flight is a cleartext ClientHello whose ``server_name`` extension
says which host it wants, and the connection peeks at those bytes (``MSG_PEEK``, nothing is consumed)
before it connects to a backend. The name goes into the PROXY v2 header as ``PP2_TYPE_AUTHORITY``
(proxy-protocol.txt §2.2.2) so the receiver can log and route on it.

The input comes from anyone on the internet, so the parser is a pure function that never raises and
never trusts a length: every vector is checked against the bytes actually present before it is read,
and every loop advances by at least one byte over a finite buffer. Anything unexpected -- not a
handshake record, not a ClientHello, truncated, no SNI, a name that is not a plausible DNS name --
gives ``None``, and the header is simply written without an authority.

Wire layout (RFC 8446 §5.1 records, §4 handshake, §4.1.2 ClientHello; RFC 6066 §3 server_name)::

    record:     type=22 (handshake) | legacy_version 0x03xx | length u16 (<= 2^14) | fragment
    handshake:  msg_type=1 (client_hello) | length u24 | body   (may span several records)
    body:       legacy_version u16 | random[32] | session_id<0..32> | cipher_suites<2..2^16-2>
                | compression_methods<1..2^8-1> | extensions<8..2^16-1>
    extension:  type u16 | extension_data<0..2^16-1>     server_name is type 0
    server_name data: ServerNameList<1..2^16-1> of name_type u8 (0 = host_name) | HostName<1..2^16-1>
"""

import re

__all__ = ["looks_like_tls_client_hello", "peek_sni"]

_HANDSHAKE = 22  # RFC 8446 §5.1 ContentType.handshake
_CLIENT_HELLO = 1  # RFC 8446 §4 HandshakeType.client_hello
_SERVER_NAME = 0  # RFC 6066 §3 ExtensionType.server_name
_HOST_NAME = 0  # RFC 6066 §3 NameType.host_name
_MAX_RECORD = 1 << 14  # RFC 8446 §5.1: a plaintext fragment "MUST NOT exceed 2^14 bytes"
_MAX_NAME = 255  # RFC 1035 §2.3.4: names are 255 octets or less
_RANDOM_END = 2 + 32  # legacy_version + random
# Hostname-ish: dot-separated labels of 1..63 letters, digits, hyphens (and underscores, seen in the wild).
_HOSTNAME = re.compile(rb"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")


def looks_like_tls_client_hello(data: bytes) -> bool:
    """Whether the bytes present are the start of a TLS handshake record carrying a ClientHello.

    True for a valid prefix too (even a single 0x16 byte), so a caller can wait for the rest.
    """
    have = len(data)
    if have == 0 or data[0] != _HANDSHAKE:
        return False
    if have > 1 and data[1] != 3:  # legacy_version major: SSL 3.0 .. TLS 1.3 all say 0x03
        return False
    if have > 2 and data[2] > 4:
        return False
    if have > 4 and not 0 < int.from_bytes(data[3:5], "big") <= _MAX_RECORD:
        return False
    return have <= 5 or data[5] == _CLIENT_HELLO


def peek_sni(data: bytes) -> str | None:
    """The lowercased host_name from the ClientHello at the start of ``data``, or None. Never raises."""
    hello = _client_hello_body(data)
    if hello is None or len(hello) < _RANDOM_END or hello[0] != 3:
        return None
    pos = _RANDOM_END  # RFC 8446 §4.1.2: skip legacy_session_id<0..32>, cipher_suites<2..2^16-2>
    for width in (1, 2, 1):  # and legacy_compression_methods<1..2^8-1>
        skipped = _vector(hello, pos, width)
        if skipped is None:
            return None
        pos = skipped[1]
    extensions = _vector(hello, pos, 2)  # extensions<8..2^16-1>; absent from pre-TLS-1.0-style hellos
    server_name = None if extensions is None else _extension(extensions[0], _SERVER_NAME)
    return None if server_name is None else _host_name(server_name)


def _extension(block: bytes, wanted: int) -> bytes | None:
    """The extension_data of the first extension of type ``wanted`` in an extensions block."""
    pos = 0
    while pos + 4 <= len(block):  # each step consumes >= 4 bytes
        ext = _vector(block, pos + 2, 2)
        if ext is None:
            return None
        if int.from_bytes(block[pos : pos + 2], "big") == wanted:
            return ext[0]
        pos = ext[1]
    return None


def _client_hello_body(data: bytes) -> bytes | None:
    """The ClientHello body, reassembled from the handshake records at the start of ``data`` (§5.1 allows
    a handshake message to span records); None if the bytes are anything else or stop too early."""
    message = bytearray()
    needed = -1  # handshake header + body length, once the 4-byte header is known
    pos = 0
    while pos + 5 <= len(data):  # each record consumes >= 6 bytes (its length is at least 1)
        if data[pos] != _HANDSHAKE or data[pos + 1] != 3:
            return None
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if not 0 < length <= _MAX_RECORD:
            return None
        fragment = data[pos + 5 : pos + 5 + length]
        message += fragment
        if needed < 0 and len(message) >= 4:
            if message[0] != _CLIENT_HELLO:
                return None
            needed = 4 + int.from_bytes(message[1:4], "big")
        if 0 <= needed <= len(message):
            return bytes(message[4:needed])
        if len(fragment) < length:
            return None  # truncated inside this record
        pos += 5 + length
    return None


def _vector(buf: bytes, pos: int, width: int) -> tuple[bytes, int] | None:
    """A TLS variable-length vector with a ``width``-byte length at ``pos``: (contents, position after it),
    or None when the length field or the contents run past the end of ``buf``."""
    start = pos + width
    if start > len(buf):
        return None
    end = start + int.from_bytes(buf[pos:start], "big")
    if end > len(buf):
        return None
    return buf[start:end], end


def _host_name(extension_data: bytes) -> str | None:
    """The first host_name in a server_name extension (RFC 6066 §3), if it is a plausible DNS name."""
    names = _vector(extension_data, 0, 2)
    if names is None:
        return None
    entries, pos = names[0], 0
    while pos < len(entries):  # each step consumes >= 3 bytes
        name = _vector(entries, pos + 1, 2)
        if name is None:
            return None
        if entries[pos] == _HOST_NAME:
            text = name[0].lower()  # bytes.lower() touches ASCII letters only
            if len(text) > _MAX_NAME or _HOSTNAME.fullmatch(text) is None:
                return None
            return text.decode("ascii")
        pos = name[1]
    return None
