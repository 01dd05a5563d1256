"""X25519 keypairs for WireGuard, made with the ``cryptography`` library (no ``wg genkey`` process).

WireGuard's keys are raw 32-byte Curve25519 keys in base64 (44 characters); ``cryptography``'s
X25519 private key clamps the scalar exactly as ``wg genkey`` does, so a key made here is one
``wg`` accepts and derives the same public key from.
"""

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

__all__ = ["KeyPair", "new_keypair", "public_key_of"]


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: str = field(repr=False)  # never in a repr, a log line or an answer to a tenant
    public: str


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def public_key_of(private: str) -> str:
    """The public key ``wg pubkey`` prints for this private key."""
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private, validate=True))
    return _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def new_keypair() -> KeyPair:
    key = X25519PrivateKey.generate()
    private = _b64(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
    return KeyPair(private, _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)))
