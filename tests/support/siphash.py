"""SipHash-2-4 in plain Python: the reference the compiled ``siphash24`` is tested against.

Written from the description in Aumasson and Bernstein, "SipHash: a fast short-input PRF" (2012):
the 128-bit key is two little-endian 64-bit words ``k0, k1``; the state is four 64-bit words
initialised from the key and four constants; the message is read as little-endian 64-bit words,
each absorbed by ``c = 2`` rounds; the last word carries the remaining bytes and the message length
mod 256 in its top byte; then ``d = 4`` rounds after ``v2 ^= 0xff``, and the output is the XOR of
the four words. Slow (a few microseconds per short key) and obviously correct is the point.
"""

__all__ = ["siphash24"]

_MASK = (1 << 64) - 1


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & _MASK


def _rounds(v: list[int], count: int) -> None:
    """``count`` SipRounds on the state ``v`` (four 64-bit words), in place."""
    v0, v1, v2, v3 = v
    for _ in range(count):
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    v[:] = [v0, v1, v2, v3]


def siphash24(key: bytes, data: bytes) -> int:
    """The 64-bit SipHash-2-4 of ``data`` under the 16-byte ``key``, as an unsigned integer."""
    if len(key) != 16:
        raise ValueError(f"a SipHash key is 16 bytes, not {len(key)}")
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]
    whole = len(data) - len(data) % 8
    words = [int.from_bytes(data[start : start + 8], "little") for start in range(0, whole, 8)]
    words.append(int.from_bytes(data[whole:], "little") | (len(data) & 0xFF) << 56)
    for word in words:
        v[3] ^= word
        _rounds(v, 2)
        v[0] ^= word
    v[2] ^= 0xFF
    _rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]
