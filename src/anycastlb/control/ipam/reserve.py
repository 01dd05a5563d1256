"""Static addresses: reserving one (``POST /v1/tenants/T/ips/reserve``) and releasing it.

A reserved (static) address belongs to the tenant until released, whether or not a load balancer
uses it: the way to keep a VIP across deleting and re-creating a load balancer, or to hold an
address in DNS before the load balancer exists.
"""

from collections.abc import Mapping, Sequence

from anycastlb.control.ipam.choose import (
    allocate_fresh,
    candidate_pools,
    exhausted,
    named_pool,
    no_pool,
    pool_of,
)
from anycastlb.control.ipam.errors import AllocationError
from anycastlb.control.ipam.holdings import Holding, NewHolding, index_of
from anycastlb.control.ipam.pools import Address, PoolView, version_of
from anycastlb.model.desired import IPFamily

__all__ = ["check_release", "plan_reservation"]


def plan_reservation(
    *,
    tenant: str,
    address: Address | None,
    pool: str | None,
    family: IPFamily,
    pools: Sequence[PoolView],
    holdings: Mapping[Address, Holding],
) -> NewHolding | Address:
    """What reserving means here: a :class:`NewHolding` (static) to insert, or an address the tenant
    already holds dynamically, to mark static so it outlives its load balancers.

    With ``address`` that address (``family`` is then ignored: the address has one); without, the
    lowest free address of ``family`` in ``pool`` or in the tenant's auto-assign pools.
    """
    named = named_pool(pool, tenant, pools, "pool")
    if address is not None:
        found = pool_of(
            address,
            tenant=tenant,
            named=named,
            pools=pools,
            field="pool",
            remedy="pick another address, or omit address to reserve a free one",
        )
        holding = holdings.get(address)
        if holding is None:
            return NewHolding(address, found.name, static=True, sharing_key=None)
        if holding.tenant != tenant:
            raise AllocationError(
                "conflict",
                f"{address} is already allocated (to another tenant); pick another address, or omit address "
                "to reserve a free one",
            )
        if holding.static:
            raise AllocationError(
                "conflict",
                f"{address} is already reserved by tenant {tenant}; nothing to do (`GET /v1/ips` lists it)",
            )
        return address
    candidates = candidate_pools(tenant, family, named, pools)
    if not candidates:
        raise no_pool(tenant, family, named, "pool", "reserve another family")
    version = version_of(family)
    fresh = allocate_fresh(candidates, version, 1, index_of(holdings).held(version))
    if not fresh:
        remedy = f"add a prefix to a pool or release reserved IPs (`DELETE /v1/tenants/{tenant}/ips/ADDR`)"
        raise exhausted(family, candidates, 1, 0, remedy)
    free, pool_name = fresh[0]
    return NewHolding(free, pool_name, static=True, sharing_key=None)


def check_release(holding: Holding) -> None:
    """Refuse to release an address that is not the tenant's to let go yet. Called only for the
    tenant's own holdings, so naming its load balancers is fine."""
    names = ", ".join(sorted(holding.load_balancers))
    if not holding.static:
        users = f"load balancer(s) {names}" if names else "a load balancer"
        raise AllocationError(
            "conflict",
            f"{holding.address} is a dynamic address of {users}; it is freed when they are deleted "
            "(only reserved addresses are released)",
        )
    if holding.load_balancers:
        raise AllocationError(
            "conflict",
            f"{holding.address} is still used by load balancer(s) {names}; "
            f"delete load balancers {names} first, or keep the reservation",
        )
