"""``/v1/limits`` and ``/v1/tenants/{tenant}/limits``: the limits in force, and the admin's
per-tenant quota overrides (control/limits.py says what each limit protects)."""

from fastapi import APIRouter

from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.audit import Change
from anycastlb.control.schemas import LimitsOut, TenantLimits, TenantLimitsOut
from anycastlb.control.service import quotas

router = APIRouter(prefix="/v1", tags=["limits"])


@router.get("/limits")
def process_limits(_caller: Caller, rt: Rt) -> LimitsOut:
    """The process-level limits: body size and spec size for every tenant, and the default quotas."""
    limits = rt.limits
    return LimitsOut(
        max_body_bytes=limits.max_body_bytes,
        listeners_per_load_balancer=limits.listeners,
        backends_per_listener=limits.backends_per_listener,
        backends_per_load_balancer=limits.backends_per_load_balancer,
        load_balancers_per_tenant=limits.load_balancers_per_tenant,
        addresses_per_tenant=limits.addresses_per_tenant,
    )


@router.get("/tenants/{tenant}/limits")
def tenant_limits(tenant: str, caller: Caller, rt: Rt) -> TenantLimitsOut:
    """The tenant's quotas in force (its overrides or the defaults) and what it holds now."""
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: quotas.tenant_limits(s, tenant, rt.limits))


@router.put("/tenants/{tenant}/limits")
def set_tenant_limits(tenant: str, body: TenantLimits, caller: Caller, rt: Rt) -> TenantLimitsOut:
    """Override the tenant's quotas (admin); null returns one to the process default."""
    caller.require_admin()
    return rt.write(
        lambda s: quotas.set_tenant_limits(s, tenant, body, rt.limits),
        change=Change(caller, "update", "tenant_limits", tenant, tenant),
        notify=False,
    )
