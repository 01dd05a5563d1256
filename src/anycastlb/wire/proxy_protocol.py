"""PROXY protocol v1 and v2 codec: tell a backend who the client really was. Bytes in, bytes out, no I/O.

Theory of operation. The edge accepts a client on a VIP and opens a second TCP connection to a node, so the
node sees the edge's address, not the client's. Before relaying a single byte the edge writes one PROXY
header on the backend connection carrying the client's ``getpeername()`` and the VIP's ``getsockname()``;
the ingress controller behind the node strips it and logs, rate-limits and routes on the real client.
The specification is HAProxy's ``doc/proxy-protocol.txt``; "§" below cites its sections.

* ``encode_v2`` runs once per proxied connection, so it does the least work that is correct: one
  ``inet_pton`` per address, one precompiled ``struct.Struct`` for the fixed part, prebuilt prefixes.
* A dual-stack (``AF_INET6``) listener reports IPv4 clients as IPv4-mapped addresses
  (``::ffff:192.0.2.1``). When *both* ends are mapped the header is written as IPv4 (TCP4 / family
  0x1), which is what the connection really was and what receivers' IPv4 allow-lists expect. When only
  one end is mapped the pair is written as IPv6 unchanged: a header has a single family (§2.1, §2.2).
* ``parse`` is strict, as §2.1 asks ("any sequence which does not exactly match the protocol must be
  discarded"). It tells "not enough bytes yet" (``IncompleteHeader``) apart from "these bytes can never
  become a header" (``ProxyProtocolError``) as early as it can, so a receiver can drop garbage at once.
* Security (§5): only parse PROXY headers on ports that are configured for them and only from trusted
  senders. The edge itself writes headers and never forwards one received from a client.
"""

import re
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PP2_TYPE_ALPN",
    "PP2_TYPE_AUTHORITY",
    "PP2_TYPE_CRC32C",
    "PP2_TYPE_NOOP",
    "PP2_TYPE_UNIQUE_ID",
    "V1_MAX_LENGTH",
    "V2_SIGNATURE",
    "IncompleteHeader",
    "ProxyHeader",
    "ProxyProtocolError",
    "SocketAddress",
    "encode_v1",
    "encode_v2",
    "encode_v2_local",
    "parse",
    "unique_id_tlv",
]

# §2.2: registered TLV types.
PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"  # §2.2: \x0D \x0A \x0D \x0A \x00 \x0D \x0A \x51 \x55 \x49 \x54 \x0A
V1_MAX_LENGTH = 107  # §2.1: worst case "PROXY UNKNOWN <ipv6> <ipv6> 65535 65535\r\n", CRLF included
UNIQUE_ID_MAX_LENGTH = 128  # §2.2.5

SocketAddress = tuple[str, int] | tuple[str, int, int, int]
"""What ``getpeername()``/``getsockname()`` return for AF_INET (2-tuple) and AF_INET6 (4-tuple)."""


class ProxyProtocolError(ValueError):
    """The bytes are not a PROXY header (or the values cannot be encoded as one); the message says why."""


class IncompleteHeader(ProxyProtocolError):  # noqa: N818 -- the name other modules import
    """The bytes so far are a valid start of a header: read more and parse again."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One decoded header. ``is_local`` means "use the real connection's endpoints" (v2 LOCAL, v1 UNKNOWN);
    then family is AF_UNSPEC and the addresses are None."""

    version: int
    is_local: bool
    family: int
    protocol: str | None
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    tlvs: tuple[tuple[int, bytes], ...] = ()


_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6
_AF_UNSPEC = socket.AF_UNSPEC
_pton = socket.inet_pton
_ntop = socket.inet_ntop
_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"  # RFC 4291 §2.5.5.2 IPv4-mapped IPv6 address

# §2.2: version 2 (high nibble) + command LOCAL 0x0 / PROXY 0x1 (low nibble), then family + transport.
_V2_PREFIXES: dict[tuple[int, str], bytes] = {
    (_AF_INET, "tcp"): V2_SIGNATURE + b"\x21\x11",
    (_AF_INET, "udp"): V2_SIGNATURE + b"\x21\x12",
    (_AF_INET6, "tcp"): V2_SIGNATURE + b"\x21\x21",
    (_AF_INET6, "udp"): V2_SIGNATURE + b"\x21\x22",
}
_V2_LOCAL = V2_SIGNATURE + b"\x20\x00\x00\x00"  # §2.2: LOCAL, AF_UNSPEC/UNSPEC, no address block
_V2_INET = struct.Struct("!H4s4sHH")  # §2.2 length + ipv4_addr {src_addr, dst_addr, src_port, dst_port}
_V2_INET6 = struct.Struct("!H16s16sHH")  # §2.2 length + ipv6_addr
_V2_FIXED = struct.Struct("!BBH")  # §2.2 proxy_hdr_v2 after sig: ver_cmd, fam, len
_TLV_HEAD = struct.Struct("!BH")  # §2.2 pp2_tlv: type, length_hi, length_lo
_tlv_head = _TLV_HEAD.pack
_U64 = struct.Struct("!Q")
_U32 = struct.Struct("!I")

# §2.2 "In practice, the following protocol bytes are expected": fam byte -> (name, address bytes,
# family, protocol). AF_UNIX is accepted but, like UNSPEC, reported without addresses (the allowed
# fallback "to the UNSPEC mode for the valid combinations above that it does not support").
_V2_FAMILIES: dict[int, tuple[str, int, int, str | None]] = {
    0x00: ("UNSPEC", 0, _AF_UNSPEC, None),
    0x11: ("TCP over IPv4", 12, _AF_INET, "tcp"),
    0x12: ("UDP over IPv4", 12, _AF_INET, "udp"),
    0x21: ("TCP over IPv6", 36, _AF_INET6, "tcp"),
    0x22: ("UDP over IPv6", 36, _AF_INET6, "udp"),
    0x31: ("UNIX stream", 216, _AF_UNSPEC, None),
    0x32: ("UNIX datagram", 216, _AF_UNSPEC, None),
}

_V1_PREFIX = b"PROXY "
_V1_PROTOCOLS = (b"TCP4", b"TCP6", b"UNKNOWN")  # §2.1
_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # §2.1: 0..255, no heading zeroes
_V1_IPV4 = re.compile(rb"(?:%s\.){3}%s" % (_OCTET, _OCTET))
_V1_IPV6 = re.compile(rb"[0-9A-Fa-f:.]{2,45}")  # §2.1: hex sets and colons (inet_pton checks the rest)
_V1_PORT = re.compile(rb"0|[1-9][0-9]{0,4}")  # §2.1: 0..65535, no heading zeroes


# ---- encoding -------------------------------------------------------------------------------------


def encode_v1(source: SocketAddress, destination: SocketAddress, family: int) -> bytes:
    """The §2.1 text line for a TCP connection; ``PROXY UNKNOWN`` for family AF_UNSPEC."""
    if family == _AF_UNSPEC:
        return b"PROXY UNKNOWN\r\n"  # §2.1: only when the line cannot be filled correctly
    binary = encode_v2(source, destination, family)  # checks the values and maps ::ffff: pairs to IPv4
    fam, block, protocol = (
        (_AF_INET, _V2_INET, b"TCP4") if binary[13] == 0x11 else (_AF_INET6, _V2_INET6, b"TCP6")
    )
    _, src, dst, sport, dport = block.unpack_from(binary, 14)
    # §2.1: canonical addresses (inet_ntop), exactly one space between fields, decimal ports, CRLF.
    fields = (protocol, _ntop(fam, src).encode(), _ntop(fam, dst).encode(), sport, dport)
    return b"PROXY %s %s %s %d %d\r\n" % fields


def encode_v2(
    source: SocketAddress,
    destination: SocketAddress,
    family: int,
    *,
    protocol: str = "tcp",
    tlvs: Sequence[tuple[int, bytes]] = (),
) -> bytes:
    """The §2.2 binary header (PROXY command) with ``tlvs`` appended in order (§2.2 pp2_tlv)."""
    try:
        if family == _AF_INET:
            block, size = _V2_INET, 12  # §2.2: "Address length is 2*4 + 2*2 = 12 bytes"
            src, dst = _pton(_AF_INET, source[0]), _pton(_AF_INET, destination[0])
        elif family == _AF_INET6:
            block, size = _V2_INET6, 36  # §2.2: "Address length is 2*16 + 2*2 = 36 bytes"
            src, dst = _pton(_AF_INET6, source[0]), _pton(_AF_INET6, destination[0])
            if src[:12] == _MAPPED_PREFIX and dst[:12] == _MAPPED_PREFIX:
                block, size, family, src, dst = _V2_INET, 12, _AF_INET, src[12:], dst[12:]
        else:
            raise ProxyProtocolError(f"cannot write addresses of socket family {family}; use encode_v2_local")
        parts = [_V2_PREFIXES[family, protocol], b""]
        for kind, value in tlvs:  # §2.2: type, 16-bit length, value; the header length covers them all
            n = len(value)
            if kind == PP2_TYPE_UNIQUE_ID and n > UNIQUE_ID_MAX_LENGTH:  # what decode_v2 would refuse
                raise ProxyProtocolError(
                    f"v2 UNIQUE_ID TLV of {n} bytes; §2.2.5 allows at most {UNIQUE_ID_MAX_LENGTH}"
                )
            size += 3 + n
            parts.append(_tlv_head(kind, n))
            parts.append(value)
        parts[1] = block.pack(size, src, dst, source[1], destination[1])
        return b"".join(parts)
    except OSError:
        name = "AF_INET" if family == _AF_INET else "AF_INET6"
        raise ProxyProtocolError(f"not {name} addresses: {source[0]!r}, {destination[0]!r}") from None
    except (struct.error, KeyError):  # the slow path: say which value was wrong
        raise ProxyProtocolError(_why_unpackable((source[1], destination[1]), protocol, tlvs)) from None


def _why_unpackable(ports: tuple[int, int], protocol: str, tlvs: Sequence[tuple[int, bytes]]) -> str:
    if protocol not in ("tcp", "udp"):
        return f"protocol {protocol!r} is neither 'tcp' nor 'udp'"
    for port in ports:
        if type(port) is not int or not 0 <= port <= 65535:
            return f"port {port!r} is outside 0..65535"
    for kind, value in tlvs:
        if not 0 <= kind <= 255 or len(value) > 65535:
            return f"TLV type {kind} with {len(value)} bytes does not fit a one-byte type and a 16-bit length"
    return f"TLVs total {sum(3 + len(v) for _, v in tlvs)} bytes, more than the 16-bit header length allows"


def encode_v2_local() -> bytes:
    """§2.2 LOCAL command: the edge's own connection (health checks); receivers use the real endpoints."""
    return _V2_LOCAL


def unique_id_tlv(conn_id: int) -> tuple[int, bytes]:
    """§2.2.5 PP2_TYPE_UNIQUE_ID for a connection: ``conn_id`` as 8 bytes big-endian (well under 128).

    Unique per edge worker process; receivers treat it as opaque and log it to correlate the two hops.
    """
    try:
        return PP2_TYPE_UNIQUE_ID, _U64.pack(conn_id)
    except struct.error:
        raise ProxyProtocolError(f"connection id {conn_id!r} does not fit 8 unsigned bytes") from None


# ---- parsing --------------------------------------------------------------------------------------


def parse(data: bytes) -> tuple[ProxyHeader, int]:
    """Decode the header at the start of ``data``; return it and how many bytes it took (payload follows).

    Raises IncompleteHeader while ``data`` is a valid but short prefix, ProxyProtocolError otherwise.
    """
    if not data:
        raise IncompleteHeader("no bytes yet: a PROXY header starts with 'PROXY ' or the v2 signature")
    if data[0] == 0x0D:  # §2.2 "Identifying the protocol version": the signature starts with CR LF
        return _parse_v2(data)
    if data[0] == 0x50:  # "P" of "PROXY"
        return _parse_v1(data)
    raise ProxyProtocolError(f"first byte 0x{data[0]:02x} starts neither a 'PROXY' line nor the v2 signature")


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int]:
    have = len(data)
    n = min(have, 12)
    if data[:n] != V2_SIGNATURE[:n]:
        raise ProxyProtocolError(f"bytes {data[:n]!r} do not match the 12-byte v2 signature")
    if have > 12:
        version, command = data[12] >> 4, data[12] & 0x0F
        if version != 2:  # §2.2: "the receiver must only accept this value"
            raise ProxyProtocolError(f"v2 version nibble is {version}; only 2 is defined")
        if command > 1:  # §2.2: "Receivers must drop connections presenting unexpected values here"
            raise ProxyProtocolError(f"v2 command nibble is {command}; only 0 (LOCAL) and 1 (PROXY) exist")
    if have > 13 and data[13] not in _V2_FAMILIES:  # §2.2: other values "must be rejected as invalid"
        raise ProxyProtocolError(f"v2 family/protocol byte 0x{data[13]:02x} is not one the spec defines")
    if have < 16:
        raise IncompleteHeader(f"v2 header needs 16 bytes before its length is known, got {have}")
    ver_cmd, fam, length = _V2_FIXED.unpack_from(data, 12)
    end = 16 + length  # §2.2: "the length of the protocol header in bytes is always exactly 16 + this value"
    if have < end:
        raise IncompleteHeader(f"v2 header declares length {length} but only {have - 16} bytes follow")
    name, address_size, family, protocol = _V2_FAMILIES[fam]
    if length < address_size:
        raise ProxyProtocolError(
            f"v2 {name} needs a {address_size}-byte address block but the header declares length {length}"
        )
    tlvs = _parse_tlvs(data, 16 + address_size, end)
    if ver_cmd & 0x0F == 0:  # §2.2 LOCAL: "discard the protocol block including the family"
        return ProxyHeader(2, True, _AF_UNSPEC, None, None, None, tlvs), end
    if family == _AF_UNSPEC:  # §2.2: "The receiver should ignore address information"
        return ProxyHeader(2, False, _AF_UNSPEC, None, None, None, tlvs), end
    # §2.2: source address, destination address, source port, destination port, in network byte order
    _, src, dst, sport, dport = (_V2_INET if family == _AF_INET else _V2_INET6).unpack_from(data, 14)
    return ProxyHeader(
        2, False, family, protocol, (_ntop(family, src), sport), (_ntop(family, dst), dport), tlvs
    ), end


def _parse_tlvs(data: bytes, pos: int, end: int) -> tuple[tuple[int, bytes], ...]:
    """§2.2 pp2_tlv vectors filling data[pos:end] exactly; NOOP (§2.2.4) dropped, CRC32C (§2.2.3) checked."""
    tlvs: list[tuple[int, bytes]] = []
    crc_at = -1
    while pos < end:
        if end - pos < 3:
            raise ProxyProtocolError(
                f"v2 TLV at offset {pos} is cut short: {end - pos} bytes left, its header needs 3"
            )
        kind, size = _TLV_HEAD.unpack_from(data, pos)
        start = pos + 3
        pos = start + size
        if pos > end:
            raise ProxyProtocolError(
                f"v2 TLV type 0x{kind:02x} at offset {start - 3} declares {size} bytes but only "
                f"{end - start} remain in the header"
            )
        if kind == PP2_TYPE_UNIQUE_ID and size > UNIQUE_ID_MAX_LENGTH:
            raise ProxyProtocolError(f"v2 UNIQUE_ID TLV is {size} bytes; §2.2.5 allows at most 128")
        if kind == PP2_TYPE_CRC32C:
            if size != 4:
                raise ProxyProtocolError(f"v2 CRC32C TLV is {size} bytes; it must be a 32-bit number")
            crc_at = start
        if kind != PP2_TYPE_NOOP:  # §2.2.4: "should be ignored when parsed"
            tlvs.append((kind, data[start:pos]))
    if crc_at >= 0:  # §2.2.3: checksum of the whole header with the checksum field zeroed
        sent = _U32.unpack_from(data, crc_at)[0]
        actual = _crc32c(data[:crc_at] + b"\x00\x00\x00\x00" + data[crc_at + 4 : end])
        if sent != actual:
            raise ProxyProtocolError(f"v2 CRC32C is 0x{sent:08x} but the header checksums to 0x{actual:08x}")
    return tuple(tlvs)


def _crc32c_entry(crc: int) -> int:
    for _ in range(8):
        crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected (RFC 4960 App. B)
    return crc


_CRC32C_TABLE = tuple(_crc32c_entry(byte) for byte in range(256))


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int]:
    crlf = data.find(b"\r\n", 0, V1_MAX_LENGTH)  # §2.1: "If the CRLF sequence is not found in the first
    if crlf < 0:  # 107 characters, the receiver should declare the line invalid"
        if len(data) >= V1_MAX_LENGTH:
            raise ProxyProtocolError(f"v1 line exceeds {V1_MAX_LENGTH} bytes without a CRLF")
        _check_v1_start(data[:-1] if data.endswith(b"\r") else data)
        raise IncompleteHeader(f"v1 line has no CRLF yet after {len(data)} bytes")
    line = data[:crlf]
    if b"\r" in line or b"\n" in line:  # §2.1: "must not tolerate a single CR or LF character"
        raise ProxyProtocolError("v1 line contains a lone CR or LF; only CRLF may end it")
    fields = line.split(b" ")  # §2.1: "exactly one space" between fields
    if fields[0] != b"PROXY" or len(fields) < 2:
        raise ProxyProtocolError(f"v1 line must start with 'PROXY <protocol>', got {line[:14]!r}")
    if fields[1] == b"UNKNOWN":  # §2.1: "the receiver must ignore anything presented before the CRLF"
        return ProxyHeader(1, True, _AF_UNSPEC, None, None, None), crlf + 2
    if fields[1] not in _V1_PROTOCOLS:
        raise ProxyProtocolError(f"v1 protocol {fields[1]!r} is not TCP4, TCP6 or UNKNOWN")
    if len(fields) != 6:
        raise ProxyProtocolError(
            f"v1 {fields[1].decode()} line needs 6 single-space-separated fields, got {len(fields)}"
        )
    family = _AF_INET if fields[1] == b"TCP4" else _AF_INET6
    source = (_v1_address(fields[2], family, "source"), _v1_port(fields[4], "source"))
    destination = (_v1_address(fields[3], family, "destination"), _v1_port(fields[5], "destination"))
    return ProxyHeader(1, False, family, "tcp", source, destination), crlf + 2


def _check_v1_start(partial: bytes) -> None:
    """Reject an unfinished line as soon as it cannot become a valid one."""
    n = min(len(partial), len(_V1_PREFIX))
    if partial[:n] != _V1_PREFIX[:n]:
        raise ProxyProtocolError(f"v1 line must start with 'PROXY ', got {partial[:n]!r}")
    if b"\r" in partial or b"\n" in partial:
        raise ProxyProtocolError("v1 line contains a lone CR or LF; only CRLF may end it")
    token, space, _ = partial[n:].partition(b" ")
    if (space and token not in _V1_PROTOCOLS) or not any(p.startswith(token) for p in _V1_PROTOCOLS):
        raise ProxyProtocolError(f"v1 protocol {token!r} is not TCP4, TCP6 or UNKNOWN")


def _v1_address(text: bytes, family: int, which: str) -> str:
    if family == _AF_INET:
        if _V1_IPV4.fullmatch(text) is None:  # §2.1: 4 decimal integers 0..255, no heading zeroes
            raise ProxyProtocolError(f"v1 TCP4 {which} address {text!r} is not a dotted-quad IPv4 address")
        return text.decode("ascii")
    # §2.1: IPv6 "series of sets of 4 hexadecimal digits ... delimited by colons", exactly 128 bits
    if _V1_IPV6.fullmatch(text) is not None:
        try:
            return _ntop(_AF_INET6, _pton(_AF_INET6, text.decode("ascii")))
        except OSError:
            pass
    raise ProxyProtocolError(f"v1 TCP6 {which} address {text!r} is not an IPv6 address")


def _v1_port(text: bytes, which: str) -> int:
    if _V1_PORT.fullmatch(text) is None or int(text) > 65535:  # §2.1: [0..65535], no heading zeroes
        raise ProxyProtocolError(f"v1 {which} port {text!r} is not a decimal 0..65535 without leading zeros")
    return int(text)
