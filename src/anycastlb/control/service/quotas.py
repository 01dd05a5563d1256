"""Per-tenant quotas: how many load balancers and addresses a tenant may hold.

Checked inside the writing transaction, after the writers' lock (service/revision.py): two
concurrent creates of one tenant are serialized there, so the second counts the first's row and
the quota cannot be overshot by a race, on SQLite or across PostgreSQL replicas. A refusal is 409
(the request is valid; the tenant's current holdings are what stand in the way: delete or release
something, or ask the admin for a higher quota).
"""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anycastlb.control.errors import Conflict
from anycastlb.control.limits import Limits, TenantQuota
from anycastlb.control.schemas import TenantLimits, TenantLimitsOut
from anycastlb.control.service.revision import lock
from anycastlb.control.service.tenants import tenant_by_name
from anycastlb.control.store.tables import Address, LoadBalancer, Tenant

__all__ = [
    "check_address_quota",
    "check_load_balancer_quota",
    "quota_of",
    "set_tenant_limits",
    "tenant_limits",
]


def quota_of(tenant: Tenant, limits: Limits) -> TenantQuota:
    return limits.quota(tenant.max_load_balancers, tenant.max_addresses)


def _held(session: Session, tenant: Tenant) -> tuple[int, int]:
    lbs = session.scalar(select(func.count()).where(LoadBalancer.tenant_id == tenant.id)) or 0
    addresses = session.scalar(select(func.count()).where(Address.tenant_id == tenant.id)) or 0
    return lbs, addresses


def check_load_balancer_quota(session: Session, tenant: Tenant, limits: Limits) -> None:
    """Before a new load balancer (the caller holds the writers' lock)."""
    quota = quota_of(tenant, limits)
    held = session.scalar(select(func.count()).where(LoadBalancer.tenant_id == tenant.id)) or 0
    if held >= quota.load_balancers:
        raise Conflict(
            f"tenant {tenant.name!r} holds {held:,} load balancers; the limit is {quota.load_balancers:,} "
            f"load balancers per tenant ({quota.hint('load_balancers', tenant.name)}); delete one first"
        )


def check_address_quota(session: Session, tenant: Tenant, new: int, limits: Limits) -> None:
    """Before ``new`` more addresses are held by the tenant (the caller holds the writers' lock)."""
    if new <= 0:
        return
    quota = quota_of(tenant, limits)
    held = session.scalar(select(func.count()).where(Address.tenant_id == tenant.id)) or 0
    if held + new > quota.addresses:
        raise Conflict(
            f"tenant {tenant.name!r} holds {held:,} addresses and this needs {new} more; the limit is "
            f"{quota.addresses:,} addresses per tenant ({quota.hint('addresses', tenant.name)}); "
            "release or share one first"
        )


def _out(session: Session, tenant: Tenant, limits: Limits) -> TenantLimitsOut:
    quota = quota_of(tenant, limits)
    lbs, addresses = _held(session, tenant)
    return TenantLimitsOut(
        tenant=tenant.name,
        load_balancers=quota.load_balancers,
        addresses=quota.addresses,
        load_balancers_held=lbs,
        addresses_held=addresses,
        overridden=tuple(sorted(quota.overridden)),
    )


def tenant_limits(session: Session, tenant: str, limits: Limits) -> TenantLimitsOut:
    return _out(session, tenant_by_name(session, tenant), limits)


def set_tenant_limits(session: Session, tenant: str, body: TenantLimits, limits: Limits) -> TenantLimitsOut:
    """Override (or, with null, return to the default) the tenant's quotas. Lowering a quota below
    what the tenant holds is allowed: it keeps what it has and cannot add more."""
    lock(session)
    found = tenant_by_name(session, tenant)
    found.max_load_balancers = body.load_balancers
    found.max_addresses = body.addresses
    session.flush()
    return _out(session, found, limits)
