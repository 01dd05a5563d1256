"""API tokens and PoP credentials: issue (with an optional expiry), list, rotate, revoke, and
authenticate a secret.

Lifecycle: a token lives until it is revoked (its row deleted) or, when issued with a lifetime,
until ``expires_at``; an expired row is kept, so its holder is told it *expired* (and how to get a
new one) rather than that it is unknown. Rotation issues a new secret for the same tenant or PoP
and shortens the old token's life to a grace period, so a controller or a PoP switches without a
moment in which neither secret works. Every change bumps the token generation (revision.py) in
the same transaction: each replica's auth cache lives only while that counter stands still.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anycastlb.control.errors import Conflict, NotFound
from anycastlb.control.principal import Credential, Principal
from anycastlb.control.schemas import TokenCreated, TokenOut, TokenRotate
from anycastlb.control.service.revision import bump_token_generation, lock
from anycastlb.control.service.tenants import tenant_by_name
from anycastlb.control.store.tables import ApiToken, Pop, Tenant, utcnow
from anycastlb.control.tokens import (
    expiry_after,
    grace_expiry,
    new_secret,
    rotated_ttl,
    secret_hash,
    token_id_of,
)

__all__ = [
    "authenticate",
    "create_token",
    "issue_token",
    "list_pop_credentials",
    "list_tokens",
    "revoke_token",
    "rotate_pop_credential",
    "rotate_token",
]


def _out(token: ApiToken) -> TokenOut:
    return TokenOut(
        token_id=token.token_id,
        description=token.description,
        created_at=token.created_at,
        expires_at=token.expires_at,
    )


def issue_token(
    session: Session,
    *,
    kind: str,
    tenant_id: int | None,
    pop_id: int | None,
    description: str,
    ttl_seconds: int | None = None,
) -> TokenCreated:
    """A new secret (the caller holds the writers' lock). Shown in this answer only."""
    secret = new_secret(kind)
    now = utcnow()
    token = ApiToken(
        token_id=token_id_of(secret),
        secret_hash=secret_hash(secret),
        kind=kind,
        tenant_id=tenant_id,
        pop_id=pop_id,
        description=description,
        created_at=now,
        expires_at=expiry_after(now, ttl_seconds),
    )
    session.add(token)
    session.flush()
    bump_token_generation(session)  # a replica may cache this secret as unknown
    return TokenCreated(**_out(token).model_dump(), secret=secret)


def create_token(
    session: Session, tenant: str, description: str, ttl_seconds: int | None = None
) -> TokenCreated:
    lock(session)
    found = tenant_by_name(session, tenant)
    try:
        return issue_token(
            session,
            kind="tenant",
            tenant_id=found.id,
            pop_id=None,
            description=description,
            ttl_seconds=ttl_seconds,
        )
    except IntegrityError:  # a 48-bit token id collided: astronomically rare; the client may retry
        raise Conflict("token id collision; retry") from None


def list_tokens(session: Session, tenant: str) -> list[TokenOut]:
    found = tenant_by_name(session, tenant)
    rows = session.execute(
        select(ApiToken).where(ApiToken.tenant_id == found.id).order_by(ApiToken.created_at)
    ).scalars()
    return [_out(token) for token in rows]


def _tenant_token(session: Session, tenant: str, token_id: str) -> ApiToken:
    found = tenant_by_name(session, tenant)
    token = session.execute(
        select(ApiToken).where(ApiToken.tenant_id == found.id, ApiToken.token_id == token_id)
    ).scalar_one_or_none()
    if token is None:
        raise NotFound(
            f"token {token_id!r} not found for tenant {tenant!r} (list them: anycastlb tenants token list)"
        )
    return token


def revoke_token(session: Session, tenant: str, token_id: str) -> None:
    lock(session)
    session.delete(_tenant_token(session, tenant, token_id))
    bump_token_generation(session)


def _shorten(tokens: list[ApiToken], now: datetime, grace_seconds: int) -> None:
    for token in tokens:
        token.expires_at = grace_expiry(now, token.expires_at, grace_seconds)


def rotate_token(session: Session, tenant: str, token_id: str, body: TokenRotate) -> TokenCreated:
    """A new token for the tenant with the old one's description; the old one expires after the
    grace period."""
    lock(session)
    old = _tenant_token(session, tenant, token_id)
    ttl = rotated_ttl(old.created_at, old.expires_at, body.ttl_seconds)
    _shorten([old], utcnow(), body.grace_seconds)
    return issue_token(
        session,
        kind="tenant",
        tenant_id=old.tenant_id,
        pop_id=None,
        description=old.description,
        ttl_seconds=ttl,
    )


def _pop(session: Session, name: str) -> Pop:
    pop = session.execute(select(Pop).where(Pop.name == name)).scalar_one_or_none()
    if pop is None:
        raise NotFound(f"PoP {name!r} not found")
    return pop


def _pop_tokens(session: Session, pop: Pop) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.pop_id == pop.id).order_by(ApiToken.created_at)
    return list(session.execute(query).scalars())


def list_pop_credentials(session: Session, name: str) -> list[TokenOut]:
    return [_out(token) for token in _pop_tokens(session, _pop(session, name))]


def rotate_pop_credential(session: Session, name: str, body: TokenRotate) -> TokenCreated:
    """A new credential for the PoP; every credential it had expires after the grace period
    (the newest one's lifetime carries over unless ``ttl_seconds`` says otherwise)."""
    lock(session)
    pop = _pop(session, name)
    old = _pop_tokens(session, pop)
    ttl = (
        body.ttl_seconds if not old else rotated_ttl(old[-1].created_at, old[-1].expires_at, body.ttl_seconds)
    )
    _shorten(old, utcnow(), body.grace_seconds)
    return issue_token(
        session, kind="pop", tenant_id=None, pop_id=pop.id, description=f"PoP {name}", ttl_seconds=ttl
    )


def authenticate(session: Session, secret: str) -> Credential | None:
    """The tenant or PoP a secret belongs to and until when, or None (unknown or revoked; the
    admin token is checked by the caller). Expiry is the caller's to check, at each request."""
    row = session.execute(
        select(ApiToken.kind, ApiToken.token_id, ApiToken.expires_at, Tenant.name, Pop.name)
        .outerjoin(Tenant, Tenant.id == ApiToken.tenant_id)
        .outerjoin(Pop, Pop.id == ApiToken.pop_id)
        .where(ApiToken.secret_hash == secret_hash(secret))
    ).first()
    if row is None:
        return None
    kind, token_id, expires_at, tenant_name, pop_name = row
    if kind == "tenant" and tenant_name is not None:
        return Credential(Principal("tenant", tenant_name, token_id), token_id, expires_at)
    if kind == "pop" and pop_name is not None:
        return Credential(Principal("pop", pop_name, token_id), token_id, expires_at)
    return None
