"""``/v1/tenants``: the admin manages tenants and their API tokens; a tenant reads itself."""

from fastapi import APIRouter, status

from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.audit import Change
from anycastlb.control.principal import Principal
from anycastlb.control.schemas import (
    TenantCreate,
    TenantOut,
    TenantUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    TokenRotate,
    WhoAmI,
)
from anycastlb.control.service import tenants, tokens

router = APIRouter(prefix="/v1", tags=["tenants"])


@router.get("/whoami")
def whoami(caller: Caller) -> WhoAmI:
    """Who the token belongs to (the CLI uses it to find the caller's tenant)."""
    return WhoAmI(kind=caller.kind, name=caller.name)


@router.post("/tenants", status_code=status.HTTP_201_CREATED)
def create_tenant(body: TenantCreate, caller: Caller, rt: Rt) -> TenantOut:
    caller.require_admin()
    return rt.write(
        lambda s: tenants.create_tenant(s, body),
        change=Change(caller, "create", "tenant", body.name, body.name),
    )


@router.get("/tenants")
def list_tenants(caller: Caller, rt: Rt) -> list[TenantOut]:
    caller.require_admin()
    return rt.read(tenants.list_tenants)


@router.get("/tenants/{tenant}")
def get_tenant(tenant: str, caller: Caller, rt: Rt) -> TenantOut:
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: tenants.get_tenant(s, tenant))


@router.patch("/tenants/{tenant}")
def update_tenant(tenant: str, body: TenantUpdate, caller: Caller, rt: Rt) -> TenantOut:
    """The admin's settings of a tenant (``allowed_backend_networks``: private networks its backends
    may use); a tenant cannot change them."""
    caller.require_admin()
    return rt.write(
        lambda s: tenants.update_tenant(s, tenant, body),
        change=Change(caller, "update", "tenant", tenant, tenant),
        notify=False,
    )


@router.delete("/tenants/{tenant}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tenant(tenant: str, caller: Caller, rt: Rt) -> None:
    caller.require_admin()
    rt.write(
        lambda s: tenants.delete_tenant(s, tenant), change=Change(caller, "delete", "tenant", tenant, tenant)
    )
    rt.forget_tokens()


def _token_id(created: TokenCreated) -> str:
    return created.token_id


def _admin_or_self(caller: Principal, tenant: str) -> None:
    caller.require_tenant_access(tenant)


@router.post("/tenants/{tenant}/tokens", status_code=status.HTTP_201_CREATED)
def create_token(tenant: str, body: TokenCreate, caller: Caller, rt: Rt) -> TokenCreated:
    """A new API token for the tenant. The secret is in this answer only. With ``ttl_seconds`` it
    expires then (401 saying so); without, it lives until revoked."""
    _admin_or_self(caller, tenant)
    created = rt.write(
        lambda s: tokens.create_token(s, tenant, body.description, body.ttl_seconds),
        change=Change(caller, "create", "token", tenant=tenant, name_of=_token_id),
    )
    rt.forget_tokens()
    return created


@router.get("/tenants/{tenant}/tokens")
def list_tokens(tenant: str, caller: Caller, rt: Rt) -> list[TokenOut]:
    _admin_or_self(caller, tenant)
    return rt.read(lambda s: tokens.list_tokens(s, tenant))


@router.delete("/tenants/{tenant}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(tenant: str, token_id: str, caller: Caller, rt: Rt) -> None:
    """Refused from now on, on every control plane replica within a second."""
    _admin_or_self(caller, tenant)
    rt.write(
        lambda s: tokens.revoke_token(s, tenant, token_id),
        change=Change(caller, "delete", "token", token_id, tenant),
    )
    rt.forget_tokens()


@router.post("/tenants/{tenant}/tokens/{token_id}/rotate", status_code=status.HTTP_201_CREATED)
def rotate_token(tenant: str, token_id: str, body: TokenRotate, caller: Caller, rt: Rt) -> TokenCreated:
    """A new secret for the same tenant (shown once); the old one keeps working for
    ``grace_seconds`` (default an hour), so a controller can switch without downtime."""
    _admin_or_self(caller, tenant)
    created = rt.write(
        lambda s: tokens.rotate_token(s, tenant, token_id, body),
        change=Change(caller, "rotate", "token", token_id, tenant),
    )
    rt.forget_tokens()
    return created
