"""Checks and searches that allocation and reservation share: which pool an address or a pool name
stands for (refused with a message that leaks nothing of other tenants), and fresh addresses."""

from collections.abc import Sequence

from anycastlb.control.ipam.errors import AllocationError
from anycastlb.control.ipam.pools import (
    Address,
    PoolView,
    blocked_reason,
    family_label,
    pool_containing,
    usable_pools,
    version_of,
)
from anycastlb.control.ipam.spans import address_of, lowest_free, spans_of
from anycastlb.model.desired import IPFamily

__all__ = ["allocate_fresh", "candidate_pools", "exhausted", "named_pool", "no_pool", "pool_of", "pools_text"]


def named_pool(name: str | None, tenant: str, pools: Sequence[PoolView], field: str) -> PoolView | None:
    """The pool called ``name`` if the tenant may use it. An unknown pool and another tenant's BYOIP
    pool get the same answer, so the message reveals nothing about who owns what."""
    if name is None:
        return None
    for pool in pools:
        if pool.name == name and pool.usable_by(tenant):
            return pool
    raise AllocationError(
        "forbidden",
        f"{name} is not a pool tenant {tenant} may use; name one of the pools listed by `GET /v1/pools`, "
        f"or leave out the field `{field}` to use the first pool with room",
    )


def pool_of(
    address: Address,
    *,
    tenant: str,
    named: PoolView | None,
    pools: Sequence[PoolView],
    field: str,
    remedy: str,
) -> PoolView:
    """The usable pool an address asked for by name belongs to, if it may be handed out at all."""
    pool = pool_containing(pools, address)
    if pool is None or not pool.usable_by(tenant):
        raise AllocationError(
            "forbidden",
            f"{address} is not in any pool tenant {tenant} may use; ask an admin for a BYOIP prefix or use "
            "an address of a platform pool (see `GET /v1/pools`)",
        )
    if named is not None and pool.name != named.name:
        raise AllocationError(
            "conflict",
            f"{address} is in pool {pool.name}, not in pool {named.name} that the field `{field}` names; "
            f"pick an address of {named.name} or leave out `{field}`",
        )
    reason = blocked_reason(pool, address)
    if reason is not None:
        raise AllocationError("conflict", f"{address} is {reason}, which is never handed out; {remedy}")
    return pool


def candidate_pools(
    tenant: str, family: IPFamily, named: PoolView | None, pools: Sequence[PoolView]
) -> tuple[PoolView, ...]:
    """Where fresh addresses of ``family`` come from, in order: the named pool (even if it is not
    auto-assign: naming it is the opt-in), else the tenant's usable auto-assign pools."""
    version = version_of(family)
    chosen = (named,) if named is not None else tuple(p for p in usable_pools(pools, tenant) if p.auto_assign)
    return tuple(pool for pool in chosen if any(n.version == version for n in pool.networks))


def allocate_fresh(
    candidates: Sequence[PoolView], version: int, need: int, held: Sequence[int]
) -> list[tuple[Address, str]]:
    """Up to ``need`` free addresses (with their pool's name): the lowest of the first pool with room,
    then the next ones, then the next pool's."""
    found: list[tuple[Address, str]] = []
    for pool in candidates:
        for span in spans_of(pool, version):
            start = span.first
            while len(found) < need:
                free = lowest_free(span, held, start)
                if free is None:
                    break
                found.append((address_of(free, version), pool.name))
                start = free + 1
            if len(found) == need:
                return found
    return found


def pools_text(pools: Sequence[PoolView]) -> str:
    names = ", ".join(pool.name for pool in pools)
    return f"pool {names}" if len(pools) == 1 else f"pools {names}"


def no_pool(
    tenant: str, family: IPFamily, named: PoolView | None, pool_field: str, other: str
) -> AllocationError:
    """No pool to draw ``family`` from at all; ``other`` says how to ask for another family instead."""
    label = family_label(family)
    if named is not None:
        return AllocationError(
            "exhausted",
            f"pool {named.name} has no {label} network; set the field `{pool_field}` to a pool with {label} "
            f"addresses, or {other}",
        )
    return AllocationError(
        "exhausted",
        f"tenant {tenant} has no pool with {label} addresses to allocate from automatically; ask an admin "
        f"for one, set the field `{pool_field}` to a pool with {label} addresses, or {other}",
    )


def exhausted(
    family: IPFamily, candidates: Sequence[PoolView], need: int, found: int, remedy: str
) -> AllocationError:
    return AllocationError(
        "exhausted",
        f"no free {family_label(family)} address in {pools_text(candidates)} (needed {need}, found {found}); "
        f"{remedy}",
    )
