"""The bucket hash is SipHash-2-4: the paper's reference vectors, then any key and message against a
plain-Python implementation (tests/support/siphash.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycastlb.dataplane import _shared_limits
from tests.support.siphash import siphash24

KEY = bytes(range(16))  # the reference vectors' key: 00 01 .. 0f; message i is 00 01 .. (i - 1)

# Published 64-bit outputs (SipHash reference implementation, vectors.h; the paper's appendix example
# is the 15-byte message), written as the little-endian integer of the 8 output bytes.
PUBLISHED = {
    0: 0x726FDB47DD0E0E31,
    1: 0x74F839C593DC67FD,
    2: 0x0D6C8009D9A94F5A,
    14: 0xF723CA908E7AF2EE,
    15: 0xA129CA6149BE45E5,
    16: 0x3F2ACC7F57C29BDB,
    32: 0x7127512F72F27CCE,
    63: 0x958A324CEB064572,
}


@pytest.mark.parametrize(("length", "expected"), sorted(PUBLISHED.items()))
def test_the_reference_implementation_gives_the_published_vectors(length: int, expected: int) -> None:
    assert siphash24(KEY, bytes(range(length))) == expected


@pytest.mark.parametrize("length", range(64))
def test_the_compiled_hash_gives_all_64_reference_vectors(length: int) -> None:
    message = bytes(range(length))

    assert _shared_limits.siphash(KEY, message) == siphash24(KEY, message)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.binary(max_size=80))
def test_the_compiled_hash_equals_the_reference_for_any_key_and_message(key: bytes, message: bytes) -> None:
    assert _shared_limits.siphash(key, message) == siphash24(key, message)


def test_a_key_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        _shared_limits.siphash(bytes(15), b"")
    with pytest.raises(ValueError, match="16 bytes"):
        siphash24(bytes(17), b"")
