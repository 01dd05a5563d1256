"""API secrets: made here, shown once, stored as SHA-256 only.

Secrets are 256 random bits, so a fast hash is enough (no password stretching needed: there is
nothing to brute-force), and a lookup by hash is a unique-index probe. The public ``token_id`` lets
an admin list and revoke tokens without ever seeing a secret again.
"""

import hashlib
import hmac
import secrets

__all__ = ["new_secret", "same_secret", "secret_hash", "token_id_of"]


def new_secret(kind: str) -> str:
    """``alb_tenant_<id>_<secret>``: the prefix says what a leaked token is, for secret scanners."""
    return f"alb_{kind}_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def token_id_of(secret: str) -> str:
    """The public part of a secret (``alb_tenant_<id>``), stored in clear for listing and revoking."""
    return "_".join(secret.split("_", 3)[:3])  # the secret part may itself contain "_"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
