"""IP pools: platform pools every tenant may use and BYOIP pools owned by one tenant."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anycastlb.control.errors import Conflict, Invalid, NotFound
from anycastlb.control.ipam import AllocationError, PoolView, check_new_pool, pool_capacity, usable_pools
from anycastlb.control.principal import Principal
from anycastlb.control.schemas import PoolCreate, PoolOut, PoolUpdate, parse_range
from anycastlb.control.service.revision import lock
from anycastlb.control.service.tenants import tenant_by_name
from anycastlb.control.store.tables import Address, LoadBalancer, LoadBalancerAddress, Pool, Tenant
from anycastlb.model.addresses import parse_network

__all__ = ["create_pool", "delete_pool", "get_pool", "list_pools", "pool_views", "update_pool"]


def _view(pool: Pool, owner: str | None) -> PoolView:
    return PoolView(
        name=pool.name,
        networks=tuple(parse_network(text) for text in pool.networks),
        reserved=tuple(parse_range(f"{first}-{last}") for first, last in pool.reserved),
        owner=owner,
        auto_assign=pool.auto_assign,
        sni_sharing="pool" if pool.sni_sharing == "pool" else "tenant",
    )


def _reserved_text(first: str, last: str) -> str:
    return first if first == last else f"{first}-{last}"


def _rows(session: Session) -> list[tuple[Pool, str | None]]:
    rows = session.execute(
        select(Pool, Tenant.name).outerjoin(Tenant, Tenant.id == Pool.owner_tenant_id).order_by(Pool.name)
    ).all()
    return [(pool, owner) for pool, owner in rows]


def pool_views(session: Session) -> dict[str, tuple[int, PoolView]]:
    """Every pool by name: (row id, pure view for the allocator)."""
    return {pool.name: (pool.id, _view(pool, owner)) for pool, owner in _rows(session)}


def _out(session: Session, pool: Pool, owner: str | None) -> PoolOut:
    in_use = session.scalar(select(func.count()).where(Address.pool_id == pool.id)) or 0
    return PoolOut(
        name=pool.name,
        networks=tuple(pool.networks),
        reserved=tuple(_reserved_text(first, last) for first, last in pool.reserved),
        owner=owner,
        auto_assign=pool.auto_assign,
        sni_sharing="pool" if pool.sni_sharing == "pool" else "tenant",
        capacity=pool_capacity(_view(pool, owner)),
        in_use=in_use,
        created_at=pool.created_at,
    )


def _visible(principal: Principal, owner: str | None) -> bool:
    return principal.kind == "admin" or owner is None or owner == principal.name


def list_pools(session: Session, principal: Principal) -> list[PoolOut]:
    """Admin: every pool. Tenant: the pools it may use (platform pools and its own BYOIP)."""
    rows = _rows(session)
    if principal.kind == "tenant":
        usable = {view.name for view in usable_pools([_view(p, o) for p, o in rows], principal.name)}
        rows = [(pool, owner) for pool, owner in rows if pool.name in usable]
    return [_out(session, pool, owner) for pool, owner in rows]


def _pool(session: Session, name: str) -> tuple[Pool, str | None]:
    row = session.execute(
        select(Pool, Tenant.name)
        .outerjoin(Tenant, Tenant.id == Pool.owner_tenant_id)
        .where(Pool.name == name)
    ).first()
    if row is None:
        raise NotFound(f"pool {name!r} not found")
    return row[0], row[1]


def get_pool(session: Session, principal: Principal, name: str) -> PoolOut:
    pool, owner = _pool(session, name)
    if not _visible(principal, owner):
        raise NotFound(f"pool {name!r} not found")
    return _out(session, pool, owner)


def _ranges(texts: tuple[str, ...]) -> list[list[str]]:
    return [[str(first), str(last)] for first, last in (parse_range(text) for text in texts)]


def _check(session: Session, candidate: PoolView, exclude: str | None) -> None:
    others = [view for name, (_, view) in pool_views(session).items() if name != exclude]
    try:
        check_new_pool(candidate, others)
    except AllocationError as error:
        raise Conflict(str(error)) from None
    except ValueError as error:
        raise Invalid(str(error)) from None


def create_pool(session: Session, body: PoolCreate) -> PoolOut:
    lock(session)
    if session.execute(select(Pool.id).where(Pool.name == body.name)).first() is not None:
        raise Conflict(f"pool {body.name!r} already exists")
    owner_id = tenant_by_name(session, body.owner).id if body.owner is not None else None
    pool = Pool(
        name=body.name,
        owner_tenant_id=owner_id,
        networks=list(body.networks),
        reserved=_ranges(body.reserved),
        auto_assign=body.auto_assign,
        sni_sharing=body.sni_sharing,
    )
    _check(session, _view(pool, body.owner), exclude=None)
    session.add(pool)
    session.flush()
    return _out(session, pool, body.owner)


def update_pool(session: Session, name: str, body: PoolUpdate) -> PoolOut:
    lock(session)
    pool, owner = _pool(session, name)
    if body.auto_assign is not None:
        pool.auto_assign = body.auto_assign
    if body.sni_sharing is not None and body.sni_sharing != pool.sni_sharing:
        if body.sni_sharing == "tenant":
            _check_no_cross_tenant_sharing(session, pool)
        pool.sni_sharing = body.sni_sharing
    if body.reserved is not None:
        pool.reserved = _ranges(body.reserved)
        _check(session, _view(pool, owner), exclude=name)
    session.flush()
    return _out(session, pool, owner)


def _check_no_cross_tenant_sharing(session: Session, pool: Pool) -> None:
    """Narrowing a pool to tenant-only sharing would leave addresses shared across tenants that the
    rule no longer allows: refuse, naming how many, until those load balancers move."""
    users = (
        select(Address.address, func.count(func.distinct(LoadBalancer.tenant_id)).label("tenants"))
        .join(LoadBalancerAddress, LoadBalancerAddress.address_id == Address.id)
        .join(LoadBalancer, LoadBalancer.id == LoadBalancerAddress.load_balancer_id)
        .where(Address.pool_id == pool.id)
        .group_by(Address.address)
        .subquery()
    )
    shared = session.scalar(select(func.count()).select_from(users).where(users.c.tenants > 1)) or 0
    if shared:
        raise Conflict(
            f"pool {pool.name!r} has {shared} addresses shared by load balancers of several tenants; "
            "they would break the tenant-only rule: move or delete those load balancers first "
            "(`GET /v1/ips` lists each address's users), or keep sni_sharing: pool"
        )


def delete_pool(session: Session, name: str) -> None:
    lock(session)
    pool, _ = _pool(session, name)
    in_use = session.scalar(select(func.count()).where(Address.pool_id == pool.id)) or 0
    if in_use:
        raise Conflict(
            f"pool {name!r} still has {in_use} addresses in use; delete their load balancers and release "
            "reserved IPs first (`anycastlb ips list --all` or GET /v1/ips lists them)"
        )
    session.delete(pool)
