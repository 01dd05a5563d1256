"""PROXY protocol codec: the spec's examples, hand-built v2 bytes, round trips, prefixes, garbage, errors."""

import ipaddress
import socket
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from anycastlb.wire import proxy_protocol as pp
from anycastlb.wire.proxy_protocol import IncompleteHeader, ProxyHeader, ProxyProtocolError

SIG = bytes.fromhex("0D0A0D0A000D0A515549540A")  # proxy-protocol.txt §2.2, typed in from the spec
SPEC_V1_TCP4 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"  # §2.1 example
SPEC_V1_TCP6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"
MAX_IPV6 = b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
LONGEST_IPV6 = b"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"  # 45 characters: the longest IPv6 text
SPEC_V1_WORST_CASE = b"PROXY UNKNOWN %s %s 65535 65535\r\n" % (MAX_IPV6, MAX_IPV6)  # §2.1: 107 bytes
# §2.2 layout, IPv4: ver/cmd 0x21, fam 0x11, len, src, dst, sport, dport; then UNIQUE_ID and AUTHORITY TLVs.
HAND_V2_TCP4 = SIG + bytes.fromhex(
    "21 11 0025"  # PROXY command; TCP over IPv4; 12 + 11 + 14 bytes follow
    " c0a80001 c0a8000b dc04 01bb"  # 192.168.0.1 192.168.0.11 56324 443
    " 05 0008 0000000000000001"  # PP2_TYPE_UNIQUE_ID
    " 02 000b 6578616d706c652e636f6d"  # PP2_TYPE_AUTHORITY "example.com"
)
HAND_V2_TCP6 = SIG + bytes.fromhex(
    "21 21 0030"
    " 20010db8000000000000000000000001 20010db8000000000000000000000002 dc04 01bb"
    " 01 0002 6832"
    " e0 0004 deadbeef"
)
PAYLOAD = b"GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n"
CLIENT, SERVER = ("192.168.0.1", 56324), ("192.168.0.11", 443)
CLIENT6, SERVER6 = ("2001:db8::1", 56324), ("2001:db8::2", 443)
UNSPEC = socket.AF_UNSPEC


def v2(ver_cmd: int, fam: int, body: bytes, length: int | None = None) -> bytes:
    return SIG + bytes([ver_cmd, fam]) + struct.pack("!H", len(body) if length is None else length) + body


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def crc32c(data: bytes) -> int:
    """Bit-at-a-time CRC32c (RFC 4960 Appendix B), independent of the module's table-driven one."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def with_crc32c(ver_cmd: int, fam: int, addresses: bytes) -> bytes:
    zeroed = v2(ver_cmd, fam, addresses + tlv(pp.PP2_TYPE_CRC32C, bytes(4)))
    return zeroed[:-4] + struct.pack("!I", crc32c(zeroed))


V4 = bytes([192, 168, 0, 1, 192, 168, 0, 11]) + struct.pack("!HH", 56324, 443)
VALID_HEADERS = [SPEC_V1_TCP4, SPEC_V1_TCP6, b"PROXY UNKNOWN\r\n", SPEC_V1_WORST_CASE]
VALID_HEADERS += [HAND_V2_TCP4, HAND_V2_TCP6, pp.encode_v2_local(), with_crc32c(0x21, 0x11, V4)]


# ---- the spec's examples ---------------------------------------------------------------------------


def test_crc32c_reference_gives_the_standard_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


def test_spec_v1_tcp4_example_parses_and_leaves_the_http_request_unread() -> None:
    header, used = pp.parse(SPEC_V1_TCP4 + PAYLOAD)
    assert header == ProxyHeader(1, False, socket.AF_INET, "tcp", CLIENT, SERVER)
    assert used == len(SPEC_V1_TCP4)


def test_spec_v1_tcp6_example_parses() -> None:
    header, used = pp.parse(SPEC_V1_TCP6)
    assert (header.family, header.source, header.destination) == (socket.AF_INET6, CLIENT6, SERVER6)
    assert used == len(SPEC_V1_TCP6)


def test_v1_ipv6_addresses_come_back_in_canonical_form() -> None:
    line = b"PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 ::FFFF:10.0.0.1 1 2\r\n"
    header, _ = pp.parse(line)
    assert header.source == ("2001:db8::1", 1)
    assert header.destination == ("::ffff:10.0.0.1", 2)


def test_v1_unknown_means_use_the_real_connection() -> None:
    assert pp.parse(b"PROXY UNKNOWN\r\n" + PAYLOAD) == (ProxyHeader(1, True, UNSPEC, None, None, None), 15)


def test_v1_worst_case_line_of_107_bytes_is_accepted() -> None:
    assert len(SPEC_V1_WORST_CASE) == pp.V1_MAX_LENGTH
    header, used = pp.parse(SPEC_V1_WORST_CASE)
    assert header.is_local
    assert used == 107


def test_v1_ipv6_address_of_45_characters_is_accepted_and_46_refused() -> None:
    assert len(LONGEST_IPV6) == 45
    header, _ = pp.parse(b"PROXY TCP6 %s ::1 65535 65535\r\n" % LONGEST_IPV6)
    assert header.source == ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)
    with pytest.raises(ProxyProtocolError, match="TCP6 source address"):
        pp.parse(b"PROXY TCP6 0%s ::1 1 2\r\n" % LONGEST_IPV6)


def test_v2_unique_id_of_128_bytes_is_accepted_and_129_refused() -> None:
    """§2.2.5: "an opaque byte sequence of up to 128 bytes"."""
    longest = bytes(range(128))
    header, _ = pp.parse(v2(0x21, 0x11, V4 + tlv(pp.PP2_TYPE_UNIQUE_ID, longest)))
    assert header.tlvs == ((pp.PP2_TYPE_UNIQUE_ID, longest),)
    with pytest.raises(ProxyProtocolError, match="UNIQUE_ID TLV is 129 bytes"):
        pp.parse(v2(0x21, 0x11, V4 + tlv(pp.PP2_TYPE_UNIQUE_ID, bytes(129))))


def test_encode_v1_writes_the_spec_example_byte_for_byte() -> None:
    assert pp.encode_v1(CLIENT, SERVER, socket.AF_INET) == SPEC_V1_TCP4
    assert pp.encode_v1((*CLIENT6, 0, 0), (*SERVER6, 0, 0), socket.AF_INET6) == SPEC_V1_TCP6
    assert pp.encode_v1(("", 0), ("", 0), socket.AF_UNSPEC) == b"PROXY UNKNOWN\r\n"


def test_encode_v2_matches_bytes_built_by_hand_from_the_spec_layout() -> None:
    tlvs = [pp.unique_id_tlv(1), (pp.PP2_TYPE_AUTHORITY, b"example.com")]
    assert pp.encode_v2(CLIENT, SERVER, socket.AF_INET, tlvs=tlvs) == HAND_V2_TCP4
    tlvs = [(pp.PP2_TYPE_ALPN, b"h2"), (0xE0, b"\xde\xad\xbe\xef")]
    assert pp.encode_v2((*CLIENT6, 0, 0), (*SERVER6, 0, 0), socket.AF_INET6, tlvs=tlvs) == HAND_V2_TCP6


def test_hand_built_v2_ipv4_header_parses_with_its_tlvs() -> None:
    header, used = pp.parse(HAND_V2_TCP4 + PAYLOAD)
    tlvs = ((pp.PP2_TYPE_UNIQUE_ID, bytes(7) + b"\x01"), (pp.PP2_TYPE_AUTHORITY, b"example.com"))
    assert header == ProxyHeader(2, False, socket.AF_INET, "tcp", CLIENT, SERVER, tlvs)
    assert used == len(HAND_V2_TCP4) == 16 + 0x25


def test_hand_built_v2_ipv6_header_parses_with_its_tlvs() -> None:
    header, used = pp.parse(HAND_V2_TCP6)
    assert (header.family, header.protocol) == (socket.AF_INET6, "tcp")
    assert (header.source, header.destination) == (CLIENT6, SERVER6)
    assert header.tlvs == ((pp.PP2_TYPE_ALPN, b"h2"), (0xE0, b"\xde\xad\xbe\xef"))
    assert used == 16 + 48


def test_v2_local_is_sixteen_bytes_and_parses_as_local() -> None:
    assert pp.encode_v2_local() == SIG + b"\x20\x00\x00\x00"
    assert pp.parse(pp.encode_v2_local() + PAYLOAD) == (ProxyHeader(2, True, UNSPEC, None, None, None), 16)


def test_v2_local_with_an_address_block_skips_the_addresses() -> None:
    header, used = pp.parse(v2(0x20, 0x11, V4 + tlv(pp.PP2_TYPE_UNIQUE_ID, b"x")))
    assert header == ProxyHeader(2, True, UNSPEC, None, None, None, ((pp.PP2_TYPE_UNIQUE_ID, b"x"),))
    assert used == 16 + 12 + 4


def test_v2_proxy_command_with_unspec_family_carries_no_addresses() -> None:
    header, _ = pp.parse(v2(0x21, 0x00, tlv(pp.PP2_TYPE_AUTHORITY, b"a.example")))
    assert (header.is_local, header.family, header.source) == (False, UNSPEC, None)
    assert header.tlvs == ((pp.PP2_TYPE_AUTHORITY, b"a.example"),)


def test_v2_unix_family_falls_back_to_unspec_after_skipping_216_address_bytes() -> None:
    header, used = pp.parse(v2(0x21, 0x31, bytes(216) + tlv(pp.PP2_TYPE_ALPN, b"h2")))
    assert (header.family, header.source, header.tlvs) == (UNSPEC, None, ((pp.PP2_TYPE_ALPN, b"h2"),))
    assert used == 16 + 216 + 5


def test_v2_noop_tlvs_are_dropped_when_parsed() -> None:
    header, _ = pp.parse(v2(0x21, 0x11, V4 + tlv(pp.PP2_TYPE_NOOP, bytes(5)) + tlv(pp.PP2_TYPE_ALPN, b"h2")))
    assert header.tlvs == ((pp.PP2_TYPE_ALPN, b"h2"),)


def test_v2_header_with_a_correct_crc32c_is_accepted() -> None:
    header, _ = pp.parse(with_crc32c(0x21, 0x11, V4))
    assert (header.source, header.tlvs[0][0]) == (CLIENT, pp.PP2_TYPE_CRC32C)


def test_v2_udp_round_trips() -> None:
    data = pp.encode_v2(("10.0.0.1", 53), ("10.0.0.2", 5353), socket.AF_INET, protocol="udp")
    assert data[13] == 0x12
    assert pp.parse(data)[0].protocol == "udp"


# ---- IPv4-mapped addresses, socket tuples, helpers ---------------------------------------------------


def test_both_ends_ipv4_mapped_are_written_as_ipv4() -> None:
    source, destination = ("::ffff:203.0.113.7", 40000, 0, 0), ("::ffff:198.51.100.1", 443, 0, 0)
    data = pp.encode_v2(source, destination, socket.AF_INET6)
    assert data[13] == 0x11
    assert pp.parse(data)[0].source == ("203.0.113.7", 40000)
    line = pp.encode_v1(source, destination, socket.AF_INET6)
    assert line == b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n"


def test_one_mapped_end_keeps_the_pair_ipv6() -> None:
    data = pp.encode_v2(("::ffff:203.0.113.7", 40000, 0, 0), ("2001:db8::1", 443, 0, 0), socket.AF_INET6)
    header, _ = pp.parse(data)
    assert (header.family, header.source) == (socket.AF_INET6, ("::ffff:203.0.113.7", 40000))


def test_unique_id_tlv_is_the_connection_id_as_eight_big_endian_bytes() -> None:
    assert pp.unique_id_tlv(0x0102030405060708) == (pp.PP2_TYPE_UNIQUE_ID, bytes(range(1, 9)))


@pytest.mark.parametrize("conn_id", [-1, 1 << 64])
def test_unique_id_tlv_rejects_ids_that_do_not_fit_eight_bytes(conn_id: int) -> None:
    with pytest.raises(ProxyProtocolError, match="does not fit 8 unsigned bytes"):
        pp.unique_id_tlv(conn_id)


A, B = ("10.0.0.1", 1), ("10.0.0.2", 2)


@pytest.mark.parametrize(
    ("endpoints", "family", "protocol", "tlvs", "message"),
    [
        ((A, ("::1", 2)), socket.AF_INET, "tcp", [], "not AF_INET addresses"),
        ((A, B), socket.AF_INET6, "tcp", [], "not AF_INET6 addresses"),
        ((("10.0.0.1", 65536), B), socket.AF_INET, "tcp", [], "port 65536 is outside"),
        ((A, ("10.0.0.2", -1)), socket.AF_INET, "tcp", [], "port -1 is outside"),
        ((A, B), socket.AF_INET, "sctp", [], "'sctp' is neither"),
        ((A, B), socket.AF_UNIX, "tcp", [], "socket family"),
        ((A, B), socket.AF_INET, "tcp", [(256, b"")], "TLV type 256"),
        ((A, B), socket.AF_INET, "tcp", [(1, bytes(70000))], "70000 bytes"),
        ((A, B), socket.AF_INET, "tcp", [(1, bytes(40000))] * 2, "TLVs total 80006"),
    ],
)
def test_encode_v2_says_which_value_cannot_be_encoded(
    endpoints: tuple[tuple[str, int], tuple[str, int]],
    family: int,
    protocol: str,
    tlvs: list[tuple[int, bytes]],
    message: str,
) -> None:
    with pytest.raises(ProxyProtocolError, match=message):
        pp.encode_v2(*endpoints, family, protocol=protocol, tlvs=tlvs)


def test_encode_v1_rejects_a_bad_port() -> None:
    with pytest.raises(ProxyProtocolError, match="port 70000 is outside"):
        pp.encode_v1(("10.0.0.1", 70000), ("10.0.0.2", 2), socket.AF_INET)


# ---- prefixes and trailing bytes ---------------------------------------------------------------------


@pytest.mark.parametrize("header", VALID_HEADERS)
def test_every_proper_prefix_of_a_valid_header_is_incomplete(header: bytes) -> None:
    for end in range(len(header)):
        with pytest.raises(IncompleteHeader):
            pp.parse(header[:end])


@pytest.mark.parametrize("header", VALID_HEADERS)
def test_trailing_payload_bytes_are_not_consumed(header: bytes) -> None:
    assert pp.parse(header + PAYLOAD)[1] == len(header)


def test_incomplete_v2_message_says_how_much_is_missing() -> None:
    with pytest.raises(IncompleteHeader, match="declares length 600 but only 12 bytes follow"):
        pp.parse(v2(0x21, 0x11, V4, length=600))


# ---- malformed input: each rejected with a message saying what is wrong ------------------------------

MALFORMED = [
    (b"GET / HTTP/1.1\r\n", "first byte 0x47 starts neither"),
    (b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "first byte 0x70"),
    (SIG[:6] + b"X", "do not match the 12-byte v2 signature"),
    (v2(0x11, 0x11, V4), "version nibble is 1"),
    (v2(0x22, 0x11, V4), "command nibble is 2"),
    (SIG + b"\x21\x41", "family/protocol byte 0x41"),
    (v2(0x21, 0x13, V4), "family/protocol byte 0x13"),
    (v2(0x21, 0x11, V4[:8]), "TCP over IPv4 needs a 12-byte address block but the header declares length 8"),
    (v2(0x21, 0x21, V4), "TCP over IPv6 needs a 36-byte address block but the header declares length 12"),
    (v2(0x21, 0x31, bytes(200)), "UNIX stream needs a 216-byte address block"),
    (v2(0x21, 0x11, V4 + b"\x02\x00"), "TLV at offset 28 is cut short: 2 bytes left"),
    (v2(0x21, 0x11, V4 + b"\x02\x00\x0aab"), "TLV type 0x02 at offset 28 declares 10 bytes but only 2"),
    (v2(0x21, 0x11, V4 + tlv(pp.PP2_TYPE_UNIQUE_ID, bytes(129))), "UNIQUE_ID TLV is 129 bytes"),
    (v2(0x21, 0x11, V4 + tlv(pp.PP2_TYPE_CRC32C, bytes(2))), "CRC32C TLV is 2 bytes"),
    (v2(0x21, 0x11, V4 + tlv(pp.PP2_TYPE_CRC32C, bytes(4))), "CRC32C is 0x00000000 but the header"),
    (b"PROXY UNKNOWN " + b"f" * 100, "v1 line exceeds 107 bytes"),
    (SPEC_V1_WORST_CASE[:-2] + b"f\r\n", "v1 line exceeds 107 bytes"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "lone CR or LF"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "lone CR or LF"),
    (b"PROXY TCP4\r 1.2.3.4", "lone CR or LF"),
    (b"PROXY\r\n", "must start with 'PROXY <protocol>'"),
    (b"PROXYTCP4", "must start with 'PROXY '"),
    (b"PROXY UDP4 ", "protocol b'UDP4' is not TCP4, TCP6 or UNKNOWN"),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "protocol b'TCP5'"),
    (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "needs 6 single-space-separated fields, got 7"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "got 5"),
    (b"PROXY TCP4 192.168.0.01 5.6.7.8 1 2\r\n", "source address b'192.168.0.01' is not a dotted-quad"),
    (b"PROXY TCP4 1.2.3.4 256.6.7.8 1 2\r\n", "destination address b'256.6.7.8'"),
    (b"PROXY TCP4 ::1 ::2 1 2\r\n", "TCP4 source address b'::1'"),
    (b"PROXY TCP6 1.2.3.4 ::2 1 2\r\n", "TCP6 source address b'1.2.3.4' is not an IPv6 address"),
    (b"PROXY TCP6 ::1 2001:db8:::2 1 2\r\n", "TCP6 destination address"),
    (b"PROXY TCP6 ::1 fe80::1%eth0 1 2\r\n", "TCP6 destination address"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n", "port b'0443' is not a decimal 0..65535 without leading"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "destination port b'65536'"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "source port b'-1'"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 \xd9\xa1 2\r\n", "source port"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_malformed_header_is_rejected_with_a_message_saying_why(data: bytes, message: str) -> None:
    with pytest.raises(ProxyProtocolError) as caught:
        pp.parse(data)
    assert not isinstance(caught.value, IncompleteHeader)
    assert message in str(caught.value)


# ---- properties --------------------------------------------------------------------------------------

Endpoint = tuple[str, int]
Tlvs = list[tuple[int, bytes]]
ports = st.integers(0, 65535)
ipv4 = st.tuples(st.ip_addresses(v=4).map(str), ports)


def not_mapped(packed: bytes) -> bool:
    return packed[:12] != bytes(10) + b"\xff\xff"


def exploded_ipv6(packed: bytes) -> str:
    return ipaddress.IPv6Address(packed).exploded  # the long form, to check the parser canonicalises it


def canonical(address: str) -> str:
    return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, address))


def canonical_of(packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, packed)


def dotted_tail_ipv6(packed: bytes) -> str:
    """Six words and the last four bytes as a dotted quad: up to 45 characters, the longest spelling."""
    words = ipaddress.IPv6Address(packed).exploded.split(":")[:6]
    return ":".join([*words, str(ipaddress.IPv4Address(packed[12:]))])


ipv6 = st.tuples(st.binary(min_size=16, max_size=16).filter(not_mapped).map(exploded_ipv6), ports)
# Every spelling a v1 line may carry, up to the 45-character ones (the regex's bound); addresses rich in
# zero and ffff words, so that a long spelling often meets a short one in a line that fits 107 bytes.
ipv6_word = st.one_of(st.just(0), st.just(0xFFFF), st.integers(0, 0xFFFF))
ipv6_packed = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.lists(ipv6_word, min_size=8, max_size=8).map(
        lambda words: b"".join(w.to_bytes(2, "big") for w in words)
    ),
)
ipv6_spellings = st.tuples(
    ipv6_packed.flatmap(
        lambda packed: st.sampled_from(
            [exploded_ipv6(packed), dotted_tail_ipv6(packed), canonical_of(packed)]
        )
    ),
    ports,
)
# UNIQUE_ID drawn often (its values are bounded at 128 bytes), and values of exactly 128 bytes.
tlv_types = st.one_of(
    st.just(pp.PP2_TYPE_UNIQUE_ID),
    st.integers(0, 255).filter(lambda t: t not in (pp.PP2_TYPE_CRC32C, pp.PP2_TYPE_NOOP)),
)
tlv_values = st.one_of(st.binary(max_size=128), st.binary(min_size=128, max_size=128))
tlv_lists = st.lists(st.tuples(tlv_types, tlv_values), max_size=6)


@given(ipv4, ipv4, st.sampled_from(["tcp", "udp"]), tlv_lists)
def test_v2_ipv4_round_trips(source: Endpoint, destination: Endpoint, protocol: str, tlvs: Tlvs) -> None:
    data = pp.encode_v2(source, destination, socket.AF_INET, protocol=protocol, tlvs=tlvs)
    header, used = pp.parse(data + PAYLOAD)
    assert header == ProxyHeader(2, False, socket.AF_INET, protocol, source, destination, tuple(tlvs))
    assert used == len(data)


@given(ipv6, ipv6, tlv_lists)
def test_v2_ipv6_round_trips(source: Endpoint, destination: Endpoint, tlvs: Tlvs) -> None:
    data = pp.encode_v2((*source, 0, 0), (*destination, 0, 0), socket.AF_INET6, tlvs=tlvs)
    header, used = pp.parse(data)
    assert (header.family, header.protocol) == (socket.AF_INET6, "tcp")
    assert header.source == (canonical(source[0]), source[1])
    assert header.destination == (canonical(destination[0]), destination[1])
    assert (header.tlvs, used) == (tuple(tlvs), len(data))


@given(ipv4, ipv4)
def test_v1_ipv4_round_trips(source: Endpoint, destination: Endpoint) -> None:
    data = pp.encode_v1(source, destination, socket.AF_INET)
    header = ProxyHeader(1, False, socket.AF_INET, "tcp", source, destination)
    assert pp.parse(data + PAYLOAD) == (header, len(data))


@given(ipv6, ipv6)
def test_v1_ipv6_round_trips(source: Endpoint, destination: Endpoint) -> None:
    data = pp.encode_v1(source, destination, socket.AF_INET6)
    header, used = pp.parse(data + PAYLOAD)
    assert header.source == (canonical(source[0]), source[1])
    assert header.destination == (canonical(destination[0]), destination[1])
    assert used == len(data) <= pp.V1_MAX_LENGTH


@given(ipv6_spellings, ipv6_spellings)
def test_v1_ipv6_in_any_spelling_parses_to_its_canonical_form_if_the_line_fits_107_bytes(
    source: Endpoint, destination: Endpoint
) -> None:
    line = b"PROXY TCP6 %s %s %d %d\r\n" % (
        source[0].encode(),
        destination[0].encode(),
        source[1],
        destination[1],
    )
    if len(line) > pp.V1_MAX_LENGTH:  # two long spellings: §2.1 wants the CRLF within 107 bytes
        with pytest.raises(ProxyProtocolError, match="exceeds 107 bytes"):
            pp.parse(line)
        return
    header, used = pp.parse(line + PAYLOAD)
    assert header.source == (canonical(source[0]), source[1])
    assert header.destination == (canonical(destination[0]), destination[1])
    assert used == len(line)


@example(128)
@example(129)
@given(st.integers(0, 400))
def test_v2_unique_id_up_to_128_bytes_is_accepted_and_longer_refused(size: int) -> None:
    data = v2(0x21, 0x11, V4 + tlv(pp.PP2_TYPE_UNIQUE_ID, bytes(size)))
    if size <= 128:
        assert pp.parse(data)[0].tlvs == ((pp.PP2_TYPE_UNIQUE_ID, bytes(size)),)
    else:
        with pytest.raises(ProxyProtocolError, match=f"UNIQUE_ID TLV is {size} bytes"):
            pp.parse(data)


@given(ipv4, ipv4)
def test_mapped_pairs_round_trip_as_ipv4(source: Endpoint, destination: Endpoint) -> None:
    src, dst = (("::ffff:" + address, port, 0, 0) for address, port in (source, destination))
    for data in (pp.encode_v2(src, dst, socket.AF_INET6), pp.encode_v1(src, dst, socket.AF_INET6)):
        header, _ = pp.parse(data)
        assert (header.family, header.source, header.destination) == (socket.AF_INET, source, destination)


@given(ipv4, ipv4, tlv_lists, st.data())
def test_every_prefix_of_an_encoded_header_is_incomplete(
    source: Endpoint, destination: Endpoint, tlvs: Tlvs, data: st.DataObject
) -> None:
    header = pp.encode_v2(source, destination, socket.AF_INET, tlvs=tlvs)
    end = data.draw(st.integers(0, len(header) - 1))
    with pytest.raises(IncompleteHeader):
        pp.parse(header[:end])


def parses_or_rejects(data: bytes) -> None:
    try:
        header, used = pp.parse(data)
    except ProxyProtocolError:
        return
    assert 0 < used <= len(data)
    assert header.version in (1, 2)


@given(st.binary(max_size=300))
def test_garbage_is_parsed_or_rejected_never_crashes(data: bytes) -> None:
    parses_or_rejects(data)


@given(
    st.sampled_from([SIG, SIG + b"\x21", SIG + b"\x21\x11", b"PROXY ", b"PROXY TCP4 ", b"PROXY TCP6 "]),
    st.binary(max_size=300),
)
def test_garbage_after_a_valid_start_is_parsed_or_rejected(start: bytes, rest: bytes) -> None:
    parses_or_rejects(start + rest)


@given(st.sampled_from(VALID_HEADERS), st.data())
def test_corrupted_valid_headers_are_parsed_or_rejected(header: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(header) - 1))
    byte = data.draw(st.integers(0, 255))
    parses_or_rejects(header[:index] + bytes([byte]) + header[index + 1 :] + PAYLOAD)


def test_the_encoder_never_writes_a_unique_id_its_own_decoder_refuses() -> None:
    exactly = pp.encode_v2(CLIENT, SERVER, socket.AF_INET, tlvs=[(pp.PP2_TYPE_UNIQUE_ID, b"u" * 128)])
    assert dict(pp.parse(exactly)[0].tlvs)[pp.PP2_TYPE_UNIQUE_ID] == b"u" * 128

    with pytest.raises(pp.ProxyProtocolError, match="UNIQUE_ID TLV of 129 bytes"):
        pp.encode_v2(CLIENT, SERVER, socket.AF_INET, tlvs=[(pp.PP2_TYPE_UNIQUE_ID, b"u" * 129)])
