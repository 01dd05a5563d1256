"""The compiled PROXY encoder and ClientHello peek (_wire_c) give exactly what the Python path gives.

The oracles are the Python the compiled core replaced: ``proxy_protocol.encode_v1``/``encode_v2``
called as the Python worker's connection called them, and the decision it took on the first bytes
with ``tls_sni`` and the record-length rule (:func:`client_hello_incomplete`). Inputs: every known vector of
test_proxy_protocol.py and test_tls_sni.py, then random addresses and random (valid, truncated,
mutated) ClientHellos. The peek reads its input in place from memory between two inaccessible pages,
so a read outside the buffer crashes the test instead of passing unnoticed.
"""

import ctypes
import ipaddress
import itertools
import mmap
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from anycastlb.dataplane import _wire_c, native, tls_sni
from anycastlb.wire import proxy_protocol as pp
from tests.unit import test_proxy_protocol as golden
from tests.unit.test_tls_sni import REAL, handshake, hello, real_client_hello, record, sni_extension

AF_INET, AF_INET6, AF_UNSPEC = socket.AF_INET, socket.AF_INET6, socket.AF_UNSPEC
Endpoint = tuple[str, int] | tuple[str, int, int, int]
T = TypeVar("T")


# ---- the oracles ---------------------------------------------------------------------------------------


def python_v2(
    source: Endpoint, destination: Endpoint, family: int, unique_id: int, authority: bytes
) -> bytes:
    """The header for proxy_protocol "v2" (authority b"" or None: no AUTHORITY TLV)."""
    tlvs = [pp.unique_id_tlv(unique_id)]
    if authority:
        tlvs.append((pp.PP2_TYPE_AUTHORITY, authority))
    return pp.encode_v2(source, destination, family, tlvs=tlvs)


def client_hello_incomplete(head: bytes) -> bool:
    """A TLS record says how long it is: anything shorter means more segments are coming."""
    if len(head) < 5:
        return True
    return len(head) < 5 + int.from_bytes(head[3:5], "big")


def python_decision(data: bytes) -> tuple[int, bytes | None]:
    """What the Python worker decided with ``data`` as its first bytes (v2 + sni_authority)."""
    if not tls_sni.looks_like_tls_client_hello(data):
        return _wire_c.HELLO_NOT_TLS, None
    name = tls_sni.peek_sni(data)
    if name is not None:
        return _wire_c.HELLO_SNI, name.encode("ascii")
    if len(data) < 16384 and client_hello_incomplete(data):
        return _wire_c.HELLO_INCOMPLETE, None
    return _wire_c.HELLO_NO_SNI, None


def same_v1(source: Endpoint, destination: Endpoint, family: int) -> bytes:
    expected = pp.encode_v1(source, destination, family)
    assert _wire_c.encode_v1(source, destination, family) == expected
    return expected


def same_v2(source: Endpoint, destination: Endpoint, family: int, unique_id: int, authority: bytes) -> bytes:
    expected = python_v2(source, destination, family, unique_id, authority)
    assert _wire_c.encode_v2(source, destination, family, unique_id, authority) == expected
    return expected


# ---- memory with an inaccessible page on either side ---------------------------------------------------

PAGE = mmap.PAGESIZE
PROT_NONE = 0  # <sys/mman.h>; the mmap module only has PROT_READ and PROT_WRITE
ROOM = 6 * PAGE  # > 16384 + a few records: every input below fits
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class Fenced:
    """ROOM bytes between two PROT_NONE pages: a read just outside a buffer placed at either end faults."""

    def __init__(self) -> None:
        self.memory = mmap.mmap(-1, ROOM + 2 * PAGE)
        self._pin = ctypes.c_char.from_buffer(self.memory)  # the address; also keeps the mapping open
        base = ctypes.addressof(self._pin)
        for page in (base, base + PAGE + ROOM):
            if _libc.mprotect(page, PAGE, PROT_NONE) != 0:
                raise OSError(ctypes.get_errno(), "mprotect")

    def placements(self, data: bytes) -> Iterator[memoryview]:
        """``data`` right after the first fence, then ending right at the second one."""
        n = len(data)
        assert n <= ROOM
        for start in (PAGE, PAGE + ROOM - n):
            self.memory[start : start + n] = data
            yield memoryview(self.memory)[start : start + n]


FENCED = Fenced()


def same_decision(data: bytes) -> tuple[int, bytes | None]:
    expected = python_decision(data)
    assert _wire_c.peek_hello(data) == expected
    if len(data) <= ROOM:
        for view in FENCED.placements(data):
            assert _wire_c.peek_hello(view) == expected
            view.release()
    return expected


# ---- PROXY: the golden vectors of test_proxy_protocol.py ------------------------------------------------


def test_v1_spec_examples_and_unknown_are_written_byte_for_byte() -> None:
    assert same_v1(golden.CLIENT, golden.SERVER, AF_INET) == golden.SPEC_V1_TCP4
    six = ((*golden.CLIENT6, 0, 0), (*golden.SERVER6, 0, 0))
    assert same_v1(*six, AF_INET6) == golden.SPEC_V1_TCP6
    assert same_v1(("", 0), ("", 0), AF_UNSPEC) == b"PROXY UNKNOWN\r\n"


def test_v2_hand_built_header_is_written_byte_for_byte() -> None:
    assert same_v2(golden.CLIENT, golden.SERVER, AF_INET, 1, b"example.com") == golden.HAND_V2_TCP4


def test_v2_without_an_authority_carries_the_unique_id_only() -> None:
    header = same_v2((*golden.CLIENT6, 0, 0), (*golden.SERVER6, 0, 0), AF_INET6, 2**64 - 1, b"")
    assert pp.parse(header)[0].tlvs == ((pp.PP2_TYPE_UNIQUE_ID, b"\xff" * 8),)
    assert same_v2(golden.A, golden.B, AF_INET, 0x0102030405060708, b"")[-8:] == bytes(range(1, 9))


def test_both_ends_ipv4_mapped_are_written_as_ipv4() -> None:
    source, destination = ("::ffff:203.0.113.7", 40000, 0, 0), ("::ffff:198.51.100.1", 443, 0, 0)
    assert same_v1(source, destination, AF_INET6) == b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n"
    assert same_v2(source, destination, AF_INET6, 7, b"a.example")[13] == 0x11


def test_one_mapped_end_keeps_the_pair_ipv6() -> None:
    source, destination = ("::ffff:203.0.113.7", 40000, 0, 0), ("2001:db8::1", 443, 0, 0)
    assert (
        same_v1(source, destination, AF_INET6) == b"PROXY TCP6 ::ffff:203.0.113.7 2001:db8::1 40000 443\r\n"
    )
    assert same_v2(source, destination, AF_INET6, 7, b"a.example")[13] == 0x21


def test_flow_labels_and_scope_ids_are_not_part_of_a_header() -> None:
    plain = ("2001:db8::1", 1, 0, 0), ("2001:db8::2", 2, 0, 0)
    scoped = ("2001:db8::1", 1, 0x12345, 7), ("2001:db8::2", 2, 1, 0xFFFFFFFF)
    assert _wire_c.encode_v1(*scoped, AF_INET6) == pp.encode_v1(*plain, AF_INET6)
    assert _wire_c.encode_v2(*scoped, AF_INET6, 1, b"x") == python_v2(*plain, AF_INET6, 1, b"x")


def test_the_longest_v1_lines_are_written() -> None:
    widest = (
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
        ("fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65534),
    )
    assert len(same_v1(*widest, AF_INET6)) == 104
    spelled_longest = (golden.LONGEST_IPV6.decode(), 65535)  # the same address in 45 characters
    assert same_v1(spelled_longest, widest[1], AF_INET6) == same_v1(*widest, AF_INET6)
    assert same_v1(("255.255.255.255", 65535), ("0.0.0.0", 0), AF_INET).endswith(b" 65535 0\r\n")


@pytest.mark.parametrize(
    ("source", "destination", "family"),
    [
        (golden.A, ("::1", 2), AF_INET),  # the cases encode_v2 raises on (test_proxy_protocol.py)
        (golden.A, golden.B, AF_INET6),
        (golden.A, golden.B, socket.AF_UNIX),
        (("10.0.0.1", 65536), golden.B, AF_INET),
        ((golden.A[0], -1), golden.B, AF_INET),
        (("fe80::1%lo", 1, 0, 1), ("fe80::2", 2, 0, 1), AF_INET6),  # getpeername's text for a scoped peer
    ],
)
def test_what_the_python_encoder_refuses_the_compiled_one_refuses(
    source: Endpoint, destination: Endpoint, family: int
) -> None:
    encoders: list[Callable[[], bytes]] = [
        lambda: pp.encode_v1(source, destination, family),
        lambda: _wire_c.encode_v1(source, destination, family),
        lambda: python_v2(source, destination, family, 1, b"x"),
        lambda: _wire_c.encode_v2(source, destination, family, 1, b"x"),
    ]
    for encode in encoders:
        with pytest.raises(ValueError):
            encode()


@pytest.mark.parametrize(
    ("family", "address", "room"), [(AF_INET, "192.0.2.1", 65509), (AF_INET6, "2001:db8::1", 65485)]
)
def test_an_authority_as_long_as_the_16_bit_length_allows_and_one_byte_more(
    family: int, address: str, room: int
) -> None:
    # 65535 = the address block + UNIQUE_ID (11) + AUTHORITY's type and length (3) + the authority
    header = same_v2((address, 1), (address, 2), family, 1, b"a" * room)
    assert len(header) == 16 + 65535
    with pytest.raises(ValueError, match="TLVs total"):
        python_v2((address, 1), (address, 2), family, 1, b"a" * (room + 1))
    with pytest.raises(ValueError, match="cannot be written"):
        _wire_c.encode_v2((address, 1), (address, 2), family, 1, b"a" * (room + 1))
    with pytest.raises(ValueError, match="cannot be written"):
        _wire_c.encode_v2((address, 1), (address, 2), family, 1, b"a" * 65536)


def test_a_header_that_does_not_fit_cap_is_not_written_at_all() -> None:
    # The wrappers check that nothing was written on -1 and nothing past cap otherwise.
    cases: list[tuple[Callable[[int], bytes], bytes]] = [
        (lambda cap: _wire_c.encode_v1(golden.CLIENT, golden.SERVER, AF_INET, cap=cap), golden.SPEC_V1_TCP4),
        (lambda cap: _wire_c.encode_v1(("", 0), ("", 0), AF_UNSPEC, cap=cap), b"PROXY UNKNOWN\r\n"),
        (
            lambda cap: _wire_c.encode_v2(golden.CLIENT, golden.SERVER, AF_INET, 1, b"example.com", cap=cap),
            golden.HAND_V2_TCP4,
        ),
    ]
    for encode, expected in cases:
        for cap in range(len(expected)):
            with pytest.raises(ValueError, match="cannot be written"):
                encode(cap)
        assert encode(len(expected)) == expected


def test_the_largest_header_the_loop_writes_fits_the_room_it_reserves() -> None:
    six = ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 0, 0)
    header = _wire_c.encode_v2(
        six, six, AF_INET6, 2**64 - 1, b"a" * _wire_c.SNI_MAX, cap=_wire_c.PROXY_HEADER_MAX
    )
    assert len(header) == 16 + 36 + 11 + 3 + 255 <= _wire_c.PROXY_HEADER_MAX


def ipv6_patterns() -> Iterator[bytes]:
    """Every pattern of zero and non-zero words (what decides "::" and the dotted forms), non-zero words
    being 1, ffff, a 2- and a 4-digit value; and each pattern with ffff in word 5."""
    for mask in range(256):
        for fill in (1, 0xFFFF, 0xA0, 0x1234, None):
            words = [0 if mask >> index & 1 else (fill or 0x2B) for index in range(8)]
            if fill is None:
                words[5] = 0xFFFF
            yield b"".join(word.to_bytes(2, "big") for word in words)


def test_v1_writes_ipv6_addresses_as_inet_ntop_does_for_every_pattern_of_zero_words() -> None:
    other = "2001:db8::1"
    for packed in ipv6_patterns():
        text = socket.inet_ntop(AF_INET6, packed)
        for pair in (((text, 1), (other, 2)), ((other, 1), (text, 2))):
            same_v1(*pair, AF_INET6)  # one end not mapped: written as IPv6 text


# ---- PROXY: random addresses ----------------------------------------------------------------------------

ports = st.integers(0, 65535)
ipv4_packed = st.binary(min_size=4, max_size=4)
# IPv6 addresses rich in zero runs, ::ffff: and ::a.b.c.d forms: what decides inet_ntop's text.
word = st.one_of(st.just(0), st.just(0), st.just(0xFFFF), st.integers(0, 0xFFFF))
ipv6_packed = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.lists(word, min_size=8, max_size=8).map(lambda words: b"".join(w.to_bytes(2, "big") for w in words)),
    ipv4_packed.map(lambda four: bytes(10) + b"\xff\xff" + four),  # IPv4-mapped
    ipv4_packed.map(lambda four: bytes(12) + four),  # IPv4-compatible (deprecated, still printed as such)
)


def ipv6_text(packed: bytes, form: int) -> str:
    """Ways the same address can be spelled: getpeername's (inet_ntop), exploded, ipaddress's, and six
    words with a dotted quad (up to 45 characters, the longest text an IPv6 address has)."""
    if form == 0:
        return socket.inet_ntop(AF_INET6, packed)
    if form == 1:
        return ipaddress.IPv6Address(packed).exploded
    if form == 3:
        return golden.dotted_tail_ipv6(packed)
    return str(ipaddress.IPv6Address(packed))


ipv4_endpoints = st.tuples(ipv4_packed.map(lambda packed: socket.inet_ntop(AF_INET, packed)), ports)
ipv6_endpoints = st.builds(
    lambda packed, form, port, flow, scope: (ipv6_text(packed, form), port, flow, scope),
    ipv6_packed,
    st.integers(0, 3),
    ports,
    st.integers(0, 0xFFFFF),
    st.integers(0, 2**32 - 1),
)
mapped_endpoints = st.tuples(
    ipv4_packed.map(lambda packed: "::ffff:" + socket.inet_ntop(AF_INET, packed)),
    ports,
    st.just(0),
    st.just(0),
)
ipv6_pairs = st.tuples(
    st.one_of(ipv6_endpoints, mapped_endpoints), st.one_of(ipv6_endpoints, mapped_endpoints)
)
endpoint_pairs = st.one_of(
    st.tuples(ipv4_endpoints, ipv4_endpoints, st.just(AF_INET)),
    ipv6_pairs.map(lambda pair: (*pair, AF_INET6)),
)
unique_ids = st.integers(0, 2**64 - 1)
authorities = st.one_of(
    st.just(b""), st.binary(min_size=1, max_size=255), st.binary(min_size=256, max_size=2000)
)


@settings(max_examples=1000, deadline=None)
@given(endpoint_pairs)
def test_v1_is_the_python_line_for_any_addresses(pair: tuple[Endpoint, Endpoint, int]) -> None:
    same_v1(*pair)


@settings(max_examples=1000, deadline=None)
@given(endpoint_pairs, unique_ids, authorities)
def test_v2_is_the_python_header_for_any_addresses_ids_and_authorities(
    pair: tuple[Endpoint, Endpoint, int], unique_id: int, authority: bytes
) -> None:
    same_v2(*pair, unique_id, authority)


@settings(max_examples=200, deadline=None)
@given(endpoint_pairs, unique_ids, authorities, st.data())
def test_any_cap_below_the_header_length_is_refused_and_the_length_itself_is_enough(
    pair: tuple[Endpoint, Endpoint, int], unique_id: int, authority: bytes, data: st.DataObject
) -> None:
    encoders: list[Callable[[int | None], bytes]] = [
        lambda cap: _wire_c.encode_v1(*pair, cap=cap),
        lambda cap: _wire_c.encode_v2(*pair, unique_id, authority, cap=cap),
    ]
    for encode in encoders:
        whole = encode(None)
        assert encode(len(whole)) == whole
        with pytest.raises(ValueError, match="cannot be written"):
            encode(data.draw(st.integers(0, len(whole) - 1)))


# ---- the ClientHello peek: the known vectors of test_tls_sni.py and connection.py ------------------------


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def records(message: bytes, cuts: list[int], minor: int = 1) -> bytes:
    """``message`` split into handshake records at the given offsets."""
    bounds = [0, *sorted(set(cuts)), len(message)]
    return b"".join(
        bytes([22, 3, minor]) + u16(end - start) + message[start:end]
        for start, end in itertools.pairwise(bounds)
        if end > start
    )


NO_SNI = real_client_hello(None)
SPLIT = records(REAL[5:], [40, 41, 300])
KNOWN = [
    b"",
    b"\x16",
    b"\x16\x03",
    b"\x16\x03\x01",
    b"\x16\x03\x01\x02",
    b"\x16\x03\x01\x02\x00",
    b"\x16\x03\x01\x02\x00\x01",
    REAL,
    NO_SNI,
    SPLIT,
    REAL + b"\x17\x03\x03\x00\x05hello",
    b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"SSH-2.0-OpenSSH_9.2\r\n",
    record(handshake(sni_extension((0, b"example.com"))), content_type=23),
    record(handshake(sni_extension((0, b"example.com")), msg_type=2)),
    b"\x16\x04\x01" + REAL[3:],
    b"\x16\x03\x05" + REAL[3:],
    b"\x16\x03\x01\x00\x00" + REAL[5:],
    b"\x16\x03\x01\x40\x01" + REAL[5:],
    b"\x16\x03\x01\x40\x00" + REAL[5:],  # a record says 2^14 bytes: the whole ClientHello is in the first 512
    record(handshake(None)),
    hello((0, b"WWW.Example.COM")),
    hello((7, b"\xff\xfe"), (0, b"a.example"), (0, b"b.example")),
    hello((1, b"example.com")),
    hello((0, (b"a" * 63 + b".") * 3 + b"a" * 63)),
    hello((0, b"under_score.-dash-.example")),
    record(handshake(u16(0) + u16(0))),  # a server_name extension without a ServerNameList
    record(handshake(u16(0) + u16(1) + b"\x00")),
    record(handshake(u16(0) + u16(2) + u16(0))),  # an empty ServerNameList
    record(handshake(u16(0xFF01) + u16(1) + b"\x00" + sni_extension((0, b"after.example")))),
    record(handshake(sni_extension((0, b"first.example")) + sni_extension((0, b"second.example")))),
    record(handshake(sni_extension((0, b"example.com")) + b"\x00\x10\x00")),  # 3 stray bytes after it
    record(handshake(u16(0x0A0A) + u16(500) + sni_extension((0, b"example.com")))),  # runs past the block
    record(handshake(sni_extension((0, b"example.com")) + u16(0x0A0A) + u16(500))),  # ... after the SNI
]
NOT_HOSTNAMES = [
    b"",
    b"caf\xc3\xa9.example",
    b"a" * 64 + b".example",
    (b"a" * 63 + b".") * 4 + b"abc",
    (b"a" * 63 + b".") * 3 + b"a" * 64,
    (b"a" * 63 + b".") * 3 + b"a" * 62 + b".b",  # 256 bytes, every label fine
    b"exa mple.com",
    b"example.com.",
    b".example.com",
    b"..example",
    b"example..com",
    b".",
    b"example.com\x00evil",
    b"example.com\n",
    b"EXAMPLE.\xc4\xb0",  # bytes.lower() is ASCII-only: nothing turns this into a letter
    b"*.example.com",
    b"example.com:443",
]


@pytest.mark.parametrize(
    "data",
    KNOWN + [hello((0, name)) for name in NOT_HOSTNAMES],
    ids=[f"known{i}" for i in range(len(KNOWN))] + [f"name{i}" for i in range(len(NOT_HOSTNAMES))],
)
def test_known_inputs_get_the_python_decision(data: bytes) -> None:
    same_decision(data)


def test_the_known_vectors_cover_every_outcome() -> None:
    outcomes = {python_decision(data)[0] for data in KNOWN}
    assert outcomes == {
        _wire_c.HELLO_NOT_TLS,
        _wire_c.HELLO_INCOMPLETE,
        _wire_c.HELLO_NO_SNI,
        _wire_c.HELLO_SNI,
    }
    assert same_decision(REAL) == (_wire_c.HELLO_SNI, b"example.com")
    assert same_decision(hello((0, b"WWW.Example.COM"))) == (_wire_c.HELLO_SNI, b"www.example.com")


@pytest.mark.parametrize(
    "whole", [REAL, NO_SNI, SPLIT, hello((0, b"WWW.Example.COM"))], ids=["real", "no_sni", "split", "upper"]
)
def test_every_prefix_gets_the_python_decision(whole: bytes) -> None:
    for end in range(len(whole) + 1):
        same_decision(whole[:end])


def test_every_split_of_a_real_client_hello_into_two_and_three_records() -> None:
    message = REAL[5:]
    for cut in range(1, len(message)):
        same_decision(records(message, [cut]))
        same_decision(records(message, [cut, min(cut + 3, len(message) - 1)]))


@pytest.mark.parametrize("whole", [REAL, SPLIT], ids=["real", "split"])
def test_every_byte_of_a_client_hello_changed(whole: bytes) -> None:
    for index in range(len(whole)):
        for byte in {0, 1, 3, 22, 0x41, 0xFF, whole[index] ^ 1, (whole[index] + 1) & 0xFF}:
            same_decision(whole[:index] + bytes([byte]) + whole[index + 1 :])


def test_a_full_first_read_never_waits() -> None:
    # 16384 bytes read and the record still incomplete: connect without SNI (connection.py _FIRST_BYTES).
    big = records(handshake(u16(21) + u16(20000) + bytes(20000)), [16384])
    for n in (16383, 16384, 16385, len(big)):
        same_decision(big[:n])
    assert python_decision(big[:16383])[0] == _wire_c.HELLO_INCOMPLETE
    assert python_decision(big[:16384])[0] == _wire_c.HELLO_NO_SNI


def test_a_client_hello_over_several_full_records() -> None:
    message = handshake(u16(21) + u16(30000) + bytes(30000) + sni_extension((0, b"big.example")))
    whole = records(message, [16384])
    assert same_decision(whole) == (_wire_c.HELLO_SNI, b"big.example")
    same_decision(whole[:16384])


# ---- the ClientHello peek: random bytes and random ClientHellos -----------------------------------------


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=700))
@example(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03")
def test_random_bytes_get_the_python_decision(data: bytes) -> None:
    same_decision(data)


@settings(max_examples=2000, deadline=None)
@given(
    st.sampled_from([b"\x16", b"\x16\x03", b"\x16\x03\x01", b"\x16\x03\x01\x00", REAL[:9], REAL[:60]]),
    st.binary(max_size=700),
)
def test_random_bytes_after_a_handshake_start_get_the_python_decision(start: bytes, rest: bytes) -> None:
    same_decision(start + rest)


def vector(width: int, data: bytes) -> bytes:
    return len(data).to_bytes(width, "big") + data


def long_name(n: int) -> bytes:
    """A name of ``n`` bytes in labels of at most 63: a plausible host name but for its length."""
    count = -(-(n + 1) // 64)
    size, longer = divmod(n - (count - 1), count)
    return b".".join(b"Ab"[index % 2 : index % 2 + 1] * (size + (index < longer)) for index in range(count))


def mostly(usual: T, *others: T) -> st.SearchStrategy[T]:
    """``usual`` nine times in ten, else one of ``others``. (Not sampled_from([usual] * 9 + others):
    Hypothesis favours the ends of a range and tries every distinct value early.)"""
    middle = 5 * len(others)
    return st.integers(0, 10 * len(others) - 1).map(
        lambda index: others[index - middle] if middle <= index < middle + len(others) else usual
    )


labels = st.from_regex(r"[A-Za-z0-9_-]{1,63}", fullmatch=True)
hostnames = st.one_of(
    st.lists(labels, min_size=1, max_size=6).map(".".join).map(str.encode),  # plausible, any case
    st.lists(st.from_regex(r"[a-z0-9]{1,5}", fullmatch=True), min_size=1, max_size=4)
    .map(".".join)
    .map(str.encode),
)
odd_names = st.one_of(
    st.text(alphabet="aZ09_-.", max_size=12).map(str.encode),  # dots in every place
    st.integers(250, 260).map(long_name),  # around the 255-byte limit
    st.integers(60, 66).map(lambda n: b"x" * n + b".example"),  # around the 63-byte label limit
    st.binary(max_size=40),
)
names = st.one_of(hostnames, hostnames, odd_names)
name_entries = st.lists(st.tuples(st.sampled_from([0, 0, 0, 1, 255]), names), max_size=3)


def server_name_extension(entries: list[tuple[int, bytes]], extra: bytes) -> bytes:
    listed = b"".join(bytes([kind]) + vector(2, name) for kind, name in entries)
    return u16(0) + vector(2, vector(2, listed) + extra)


server_names = st.builds(server_name_extension, name_entries, mostly(b"", b"\x00", b"\x00\x00\x03"))
extensions = st.one_of(
    server_names,
    st.builds(lambda kind, data: u16(kind) + vector(2, data), st.integers(0, 0xFFFF), st.binary(max_size=40)),
    st.integers(0, 20000).map(lambda n: u16(21) + vector(2, bytes(n))),  # padding: hellos over 2^14 bytes
    st.binary(min_size=1, max_size=6),  # a broken extension
)


@st.composite
def client_hello_messages(draw: st.DrawFn) -> bytes:
    """A handshake message: mostly a well-formed ClientHello (RFC 8446 §4.1.2) with random contents."""
    body = draw(mostly(b"\x03\x03", b"\x03\x01", b"\x03\x04", b"\x02\x00", b"\x04\x03"))
    body += draw(st.binary(min_size=32, max_size=32))
    body += vector(1, draw(st.binary(max_size=draw(mostly(32, 33)))))  # legacy_session_id (33: too long)
    body += vector(2, draw(st.binary(min_size=2, max_size=40)))  # cipher_suites
    body += vector(1, draw(st.binary(min_size=1, max_size=3)))  # legacy_compression_methods
    if draw(mostly(True, False)):
        found = draw(st.lists(extensions, max_size=6))
        if draw(st.booleans()):  # make sure of a server_name somewhere
            found.insert(draw(st.integers(0, len(found))), draw(server_names))
        body += vector(2, b"".join(found))
    body += draw(mostly(b"", b"\x00", b"\x01\x02\x03\x04\x05"))  # bytes after the extensions
    return bytes([draw(mostly(1, 2))]) + len(body).to_bytes(3, "big") + body


@st.composite
def client_hellos(draw: st.DrawFn) -> bytes:
    """Records carrying a random ClientHello message, maybe split, maybe followed by more records, then
    maybe truncated, cut at 16 KiB (the first read), or with one byte changed."""
    message = draw(client_hello_messages())
    cuts = draw(st.lists(st.integers(1, max(1, len(message) - 1)), max_size=4))
    cuts += list(range(16384, len(message), 16384))  # keep records within 2^14
    data = records(message, cuts, minor=draw(mostly(1, 0, 3, 4, 5)))
    data += draw(mostly(b"", b"\x17\x03\x03\x00\x05hello", b"\x16\x03\x03\x00\x04\x14\x00\x00\x0c", b"\x16"))
    change = draw(st.integers(0, 4))
    if change == 1:
        data = data[: draw(st.integers(0, len(data)))]
    elif change == 2:
        data = data[:16384]
    elif change == 3 and data:
        index = draw(st.integers(0, len(data) - 1))
        data = data[:index] + bytes([draw(st.integers(0, 255))]) + data[index + 1 :]
    return data


@settings(max_examples=1500, deadline=None)
@given(client_hellos())
def test_random_client_hellos_get_the_python_decision(data: bytes) -> None:
    same_decision(data)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 0, 1]), names), min_size=1, max_size=3))
def test_any_server_name_list_gets_the_python_name(entries: list[tuple[int, bytes]]) -> None:
    data = record(handshake(u16(16) + vector(2, b"\x00\x03\x02h2") + server_name_extension(entries, b"")))
    state, name = same_decision(data)
    assert state in (_wire_c.HELLO_SNI, _wire_c.HELLO_NO_SNI)
    assert name is None or len(name) <= _wire_c.SNI_MAX


# ---- the compiled module itself -------------------------------------------------------------------------

SOURCE = Path(native.__file__).with_name("_wire_c.pyx")


def test_the_module_was_built_from_the_pyx_beside_it_and_an_edit_is_caught(tmp_path: Path) -> None:
    native.check_fresh(_wire_c, SOURCE)
    edited = tmp_path / "_wire_c.pyx"
    edited.write_bytes(SOURCE.read_bytes() + b"\n# an edit nobody compiled\n")
    with pytest.raises(native.CompiledModuleError, match="_wire_c is stale"):
        native.check_fresh(_wire_c, edited)


def test_the_enum_the_loop_codes_against_has_the_agreed_values() -> None:
    values = (_wire_c.PROXY_HEADER_MAX, _wire_c.SNI_MAX)
    states = (_wire_c.HELLO_NOT_TLS, _wire_c.HELLO_INCOMPLETE, _wire_c.HELLO_NO_SNI, _wire_c.HELLO_SNI)
    assert (values, states) == ((512, 255), (0, 1, 2, 3))
