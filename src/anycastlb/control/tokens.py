"""API secrets: made here, shown once, stored as SHA-256 only.

Secrets are 256 random bits, so a fast hash is enough (no password stretching needed: there is
nothing to brute-force), and a lookup by hash is a unique-index probe. The public ``token_id`` lets
an admin list and revoke tokens without ever seeing a secret again.
"""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "MAX_TTL_SECONDS",
    "expiry_after",
    "grace_expiry",
    "new_secret",
    "rotated_ttl",
    "same_secret",
    "secret_hash",
    "token_id_of",
]

DEFAULT_GRACE_SECONDS = 3600  # an hour: time to roll a new secret into a controller or a PoP
MAX_GRACE_SECONDS = 30 * 86400
MAX_TTL_SECONDS = 10 * 365 * 86400


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


def expiry_after(now: datetime, ttl_seconds: int | None) -> datetime | None:
    """When a token issued ``now`` with this lifetime expires (None: never, the default, so that
    no PoP or controller loses its credential silently one day)."""
    return None if ttl_seconds is None else now + timedelta(seconds=ttl_seconds)


def grace_expiry(now: datetime, current: datetime | None, grace_seconds: int) -> datetime:
    """The old token's expiry after a rotation: the end of the grace period, or sooner if it was
    already due to expire sooner (rotation never extends a token's life)."""
    end = now + timedelta(seconds=grace_seconds)
    return end if current is None else min(current, end)


def rotated_ttl(created_at: datetime, expires_at: datetime | None, ttl_seconds: int | None) -> int | None:
    """The new token's lifetime: the one asked for, else the old token's own lifetime."""
    if ttl_seconds is not None or expires_at is None:
        return ttl_seconds
    return max(1, round((expires_at - created_at).total_seconds()))
