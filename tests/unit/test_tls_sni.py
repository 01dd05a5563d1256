"""SNI peeking: real ClientHellos from Python's ssl module, hand-built edge cases, truncation, garbage."""

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anycastlb.dataplane.tls_sni import looks_like_tls_client_hello, peek_sni


def real_client_hello(server_hostname: str | None) -> bytes:
    """The first flight of a real TLS client, captured through memory BIOs (no sockets)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if server_hostname is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def record(fragment: bytes, content_type: int = 22) -> bytes:
    return bytes([content_type, 3, 1]) + u16(len(fragment)) + fragment


def sni_extension(*entries: tuple[int, bytes]) -> bytes:
    names = b"".join(bytes([name_type]) + u16(len(name)) + name for name_type, name in entries)
    data = u16(len(names)) + names
    return u16(0) + u16(len(data)) + data


def handshake(extensions: bytes | None, msg_type: int = 1) -> bytes:
    """A minimal ClientHello handshake message (RFC 8446 §4.1.2) with the given extensions block contents."""
    body = b"\x03\x03" + bytes(32) + b"\x00" + u16(2) + b"\x13\x01" + b"\x01\x00"
    if extensions is not None:
        body += u16(len(extensions)) + extensions
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def hello(*entries: tuple[int, bytes]) -> bytes:
    alpn = u16(16) + u16(5) + u16(3) + b"\x02h2"  # an unrelated extension before server_name
    return record(handshake(alpn + sni_extension(*entries)))


REAL = real_client_hello("example.com")


def test_real_client_hello_from_the_ssl_module_gives_its_server_name() -> None:
    assert looks_like_tls_client_hello(REAL)
    assert peek_sni(REAL) == "example.com"


def test_bytes_after_the_client_hello_do_not_matter() -> None:
    assert peek_sni(REAL + b"\x17\x03\x03\x00\x05hello") == "example.com"


def test_real_client_hello_without_sni_gives_none() -> None:
    no_sni = real_client_hello(None)
    assert looks_like_tls_client_hello(no_sni)
    assert peek_sni(no_sni) is None


def test_every_truncated_prefix_gives_none_but_still_looks_like_a_client_hello() -> None:
    for end in range(len(REAL)):
        assert peek_sni(REAL[:end]) is None
        assert looks_like_tls_client_hello(REAL[:end]) == (end > 0)


def test_client_hello_split_across_two_records_is_reassembled() -> None:
    message = REAL[5:]
    for cut in (1, 3, 4, 50, len(message) - 1):
        split = record(message[:cut]) + record(message[cut:])
        assert peek_sni(split) == "example.com"
        assert peek_sni(split[:-1]) is None


def test_name_is_lowercased() -> None:
    assert peek_sni(hello((0, b"WWW.Example.COM"))) == "www.example.com"


def test_first_host_name_entry_is_used_and_other_name_types_are_skipped() -> None:
    assert peek_sni(hello((7, b"\xff\xfe"), (0, b"a.example"), (0, b"b.example"))) == "a.example"


@pytest.mark.parametrize(
    "name",
    [
        b"",
        b"caf\xc3\xa9.example",
        b"a" * 64 + b".example",
        (b"a" * 63 + b".") * 4 + b"abc",
        b"exa mple.com",
        b"example.com.",
        b"..example",
        b"example.com\x00evil",
    ],
)
def test_names_that_are_not_hostnames_give_none(name: bytes) -> None:
    assert peek_sni(hello((0, name))) is None


def test_a_255_byte_name_is_accepted() -> None:
    name = (b"a" * 63 + b".") * 3 + b"a" * 63
    assert len(name) == 255
    assert peek_sni(hello((0, name))) == name.decode()


def test_client_hello_without_an_extensions_block_gives_none() -> None:
    assert peek_sni(record(handshake(None))) is None


def test_server_name_extension_with_only_other_name_types_gives_none() -> None:
    assert peek_sni(hello((1, b"example.com"))) is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        record(handshake(sni_extension((0, b"example.com"))), content_type=23),  # application data
        record(handshake(sni_extension((0, b"example.com")), msg_type=2)),  # ServerHello
        b"\x16\x04\x01" + REAL[3:],  # record version major 4
        b"\x16\x03\x01\x00\x00" + REAL[5:],  # zero-length record
        b"\x16\x03\x01\x40\x01" + REAL[5:],  # longer than 2^14
    ],
    # Named: REAL is random, and pytest-xdist workers must collect the same test ids.
    ids=["http", "application-data", "server-hello", "version-4", "zero-length", "over-2-14"],
)
def test_things_that_are_not_client_hellos_give_none_and_do_not_look_like_one(data: bytes) -> None:
    assert peek_sni(data) is None
    assert not looks_like_tls_client_hello(data)


def test_extension_running_past_its_block_gives_none() -> None:
    bad = bytearray(hello((0, b"example.com")))
    bad[-len(b"example.com") - 3 : -len(b"example.com")] = b"\x00\x00\x20"  # host_name length 32, 11 present
    assert peek_sni(bytes(bad)) is None


hostnames = st.lists(st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True), min_size=1, max_size=5).map(".".join)


@given(hostnames)
def test_any_hostname_in_a_built_client_hello_comes_back(name: str) -> None:
    assert peek_sni(hello((0, name.encode()))) == name


@given(st.binary(max_size=600))
def test_garbage_never_raises(data: bytes) -> None:
    result = peek_sni(data)
    assert result is None or isinstance(result, str)
    assert isinstance(looks_like_tls_client_hello(data), bool)


@given(st.binary(max_size=600))
def test_garbage_after_a_handshake_record_header_never_raises(rest: bytes) -> None:
    for start in (b"\x16\x03\x01", b"\x16\x03\x01\x02\x00\x01", REAL[:60]):
        result = peek_sni(start + rest)
        assert result is None or isinstance(result, str)


@given(st.integers(0, len(REAL) - 1), st.integers(0, 255))
def test_a_corrupted_real_client_hello_never_raises(index: int, byte: int) -> None:
    result = peek_sni(REAL[:index] + bytes([byte]) + REAL[index + 1 :])
    assert result is None or isinstance(result, str)
