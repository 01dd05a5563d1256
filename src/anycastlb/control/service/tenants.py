"""Tenants (their tokens: service/tokens.py)."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anycastlb.control.errors import Conflict, NotFound
from anycastlb.control.schemas import TenantCreate, TenantOut, TenantUpdate
from anycastlb.control.service.revision import bump_token_generation, lock
from anycastlb.control.store.tables import Address, Cluster, LoadBalancer, Pool, Tenant

__all__ = ["create_tenant", "delete_tenant", "get_tenant", "list_tenants", "tenant_by_name", "update_tenant"]


def tenant_by_name(session: Session, name: str) -> Tenant:
    tenant = session.execute(select(Tenant).where(Tenant.name == name)).scalar_one_or_none()
    if tenant is None:
        raise NotFound(f"tenant {name!r} not found")
    return tenant


def _out(session: Session, tenant: Tenant) -> TenantOut:
    lbs = session.scalar(select(func.count()).where(LoadBalancer.tenant_id == tenant.id)) or 0
    addresses = session.scalar(select(func.count()).where(Address.tenant_id == tenant.id)) or 0
    return TenantOut(
        name=tenant.name,
        created_at=tenant.created_at,
        load_balancers=lbs,
        addresses=addresses,
        allowed_backend_networks=tuple(tenant.allowed_backend_networks or ()),
    )


def create_tenant(session: Session, body: TenantCreate) -> TenantOut:
    lock(session)
    if session.execute(select(Tenant.id).where(Tenant.name == body.name)).first() is not None:
        raise Conflict(f"tenant {body.name!r} already exists")
    tenant = Tenant(name=body.name, allowed_backend_networks=list(body.allowed_backend_networks) or None)
    session.add(tenant)
    session.flush()
    return _out(session, tenant)


def update_tenant(session: Session, name: str, body: TenantUpdate) -> TenantOut:
    """The admin's settings of a tenant. A narrower allow-list applies to the next change of each
    load balancer; those stored keep running until then."""
    lock(session)
    tenant = tenant_by_name(session, name)
    if body.allowed_backend_networks is not None:
        tenant.allowed_backend_networks = list(body.allowed_backend_networks) or None
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
    clusters = session.execute(select(Cluster.name).where(Cluster.tenant_id == tenant.id)).scalars().all()
    if clusters:
        raise Conflict(
            f"tenant {name!r} has clusters {', '.join(sorted(clusters))}; delete them first "
            "(anycastlb clusters delete NAME --tenant " + name + ")"
        )
    session.delete(tenant)  # its tokens go with it (ON DELETE CASCADE)
    bump_token_generation(session)
