"""Tenants, their API tokens, and authentication of every token kind."""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anycastlb.control.errors import Conflict, NotFound
from anycastlb.control.principal import Principal
from anycastlb.control.schemas import TenantOut, TokenCreated, TokenOut
from anycastlb.control.service.revision import lock
from anycastlb.control.store.tables import Address, ApiToken, LoadBalancer, Pool, Pop, Tenant
from anycastlb.control.tokens import new_secret, secret_hash, token_id_of

__all__ = [
    "authenticate",
    "create_tenant",
    "create_token",
    "delete_tenant",
    "get_tenant",
    "issue_token",
    "list_tenants",
    "list_tokens",
    "revoke_token",
    "tenant_by_name",
]


def tenant_by_name(session: Session, name: str) -> Tenant:
    tenant = session.execute(select(Tenant).where(Tenant.name == name)).scalar_one_or_none()
    if tenant is None:
        raise NotFound(f"tenant {name!r} not found")
    return tenant


def _out(session: Session, tenant: Tenant) -> TenantOut:
    lbs = session.scalar(select(func.count()).where(LoadBalancer.tenant_id == tenant.id)) or 0
    addresses = session.scalar(select(func.count()).where(Address.tenant_id == tenant.id)) or 0
    return TenantOut(name=tenant.name, created_at=tenant.created_at, load_balancers=lbs, addresses=addresses)


def create_tenant(session: Session, name: str) -> TenantOut:
    lock(session)
    if session.execute(select(Tenant.id).where(Tenant.name == name)).first() is not None:
        raise Conflict(f"tenant {name!r} already exists")
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    return _out(session, tenant)


def list_tenants(session: Session) -> list[TenantOut]:
    return [_out(session, t) for t in session.execute(select(Tenant).order_by(Tenant.name)).scalars()]


def get_tenant(session: Session, name: str) -> TenantOut:
    return _out(session, tenant_by_name(session, name))


def delete_tenant(session: Session, name: str) -> None:
    lock(session)
    tenant = tenant_by_name(session, name)
    out = _out(session, tenant)
    if out.load_balancers or out.addresses:
        raise Conflict(
            f"tenant {name!r} still has {out.load_balancers} load balancers and {out.addresses} addresses; "
            "delete them (and release reserved IPs) first"
        )
    pools = session.execute(select(Pool.name).where(Pool.owner_tenant_id == tenant.id)).scalars().all()
    if pools:
        raise Conflict(f"tenant {name!r} owns BYOIP pools {', '.join(pools)}; delete or reassign them first")
    session.delete(tenant)


def issue_token(
    session: Session, *, kind: str, tenant_id: int | None, pop_id: int | None, description: str
) -> TokenCreated:
    secret = new_secret(kind)
    token = ApiToken(
        token_id=token_id_of(secret),
        secret_hash=secret_hash(secret),
        kind=kind,
        tenant_id=tenant_id,
        pop_id=pop_id,
        description=description,
    )
    session.add(token)
    session.flush()
    return TokenCreated(
        token_id=token.token_id, description=description, created_at=token.created_at, secret=secret
    )


def create_token(session: Session, tenant: str, description: str) -> TokenCreated:
    lock(session)
    found = tenant_by_name(session, tenant)
    try:
        return issue_token(session, kind="tenant", tenant_id=found.id, pop_id=None, description=description)
    except IntegrityError:  # a 48-bit token id collided: astronomically rare; the client may retry
        raise Conflict("token id collision; retry") from None


def list_tokens(session: Session, tenant: str) -> list[TokenOut]:
    found = tenant_by_name(session, tenant)
    rows = session.execute(
        select(ApiToken).where(ApiToken.tenant_id == found.id).order_by(ApiToken.created_at)
    ).scalars()
    return [TokenOut(token_id=t.token_id, description=t.description, created_at=t.created_at) for t in rows]


def revoke_token(session: Session, tenant: str, token_id: str) -> None:
    lock(session)
    found = tenant_by_name(session, tenant)
    token = session.execute(
        select(ApiToken).where(ApiToken.tenant_id == found.id, ApiToken.token_id == token_id)
    ).scalar_one_or_none()
    if token is None:
        raise NotFound(f"token {token_id!r} not found for tenant {tenant!r}")
    session.delete(token)


def authenticate(session: Session, secret: str) -> Principal | None:
    """The tenant or PoP a secret belongs to, or None (the admin token is checked by the caller)."""
    row = session.execute(
        select(ApiToken.kind, Tenant.name, Pop.name)
        .outerjoin(Tenant, Tenant.id == ApiToken.tenant_id)
        .outerjoin(Pop, Pop.id == ApiToken.pop_id)
        .where(ApiToken.secret_hash == secret_hash(secret))
    ).first()
    if row is None:
        return None
    kind, tenant_name, pop_name = row
    if kind == "tenant" and tenant_name is not None:
        return Principal("tenant", tenant_name)
    if kind == "pop" and pop_name is not None:
        return Principal("pop", pop_name)
    return None
