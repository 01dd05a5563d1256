"""``/v1/pools`` and ``/v1/ips``: the admin manages pools; tenants read the pools they may use."""

from fastapi import APIRouter, status

from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.audit import Change
from anycastlb.control.schemas import AddressOut, PoolCreate, PoolOut, PoolUpdate
from anycastlb.control.service import addresses, pools

router = APIRouter(prefix="/v1", tags=["pools"])


@router.post("/pools", status_code=status.HTTP_201_CREATED)
def create_pool(body: PoolCreate, caller: Caller, rt: Rt) -> PoolOut:
    """A platform pool (owner null) or a BYOIP pool owned by one tenant. Prefixes may not overlap."""
    caller.require_admin()
    return rt.write(lambda s: pools.create_pool(s, body), change=Change(caller, "create", "pool", body.name))


@router.get("/pools")
def list_pools(caller: Caller, rt: Rt) -> list[PoolOut]:
    if caller.kind == "pop":
        caller.require_admin()
    return rt.read(lambda s: pools.list_pools(s, caller))


@router.get("/pools/{pool}")
def get_pool(pool: str, caller: Caller, rt: Rt) -> PoolOut:
    if caller.kind == "pop":
        caller.require_admin()
    return rt.read(lambda s: pools.get_pool(s, caller, pool))


@router.patch("/pools/{pool}")
def update_pool(pool: str, body: PoolUpdate, caller: Caller, rt: Rt) -> PoolOut:
    caller.require_admin()
    return rt.write(lambda s: pools.update_pool(s, pool, body), change=Change(caller, "update", "pool", pool))


@router.delete("/pools/{pool}", status_code=status.HTTP_204_NO_CONTENT)
def delete_pool(pool: str, caller: Caller, rt: Rt) -> None:
    caller.require_admin()
    rt.write(lambda s: pools.delete_pool(s, pool), change=Change(caller, "delete", "pool", pool))


@router.get("/ips")
def list_all_addresses(caller: Caller, rt: Rt) -> list[AddressOut]:
    """Every held address of every tenant (admin)."""
    caller.require_admin()
    return rt.read(lambda s: addresses.list_addresses(s, None))
