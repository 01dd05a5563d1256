"""Which VIPs a load balancer gets: the plan for a create or an update, computed, never applied.

Specific addresses (``ips.addresses``) are checked one by one and taken as asked, or refused with the
reason. Otherwise, per family in ``ips.families``, ``ips.count`` addresses come from, in order:

1. the load balancer's current addresses of that family that are still fine (in a pool the tenant
   may use, in ``ips.pool`` if set, not reserved, their sharing still agreed): an update never moves
   a VIP that need not move;
2. with a ``sharing_key``: addresses the tenant's other load balancers share under that key, whose
   listeners do not collide with this one's, lowest first. Listeners on different ports never
   collide; on the same port they may share it by SNI (``sni.py``: every sharer names hostnames,
   no pattern twice, at most one ``sni_default``). On a pool whose admin set ``sni_sharing: pool``,
   a request that names that pool in ``ips.pool`` may also join another tenant's address there
   under the same sharing key (the key is then pool-wide: the tenants agree on it, the SNI rule
   keeps them apart; a refusal never names the other tenant's load balancers);
3. fresh addresses, lowest first, from ``ips.pool`` or the tenant's auto-assign pools in
   :func:`usable_pools` order.

Except: with a ``sharing_key``, when step 2 passed over an address shared under that key because
its users already listen on one of this load balancer's ports in a way SNI cannot route apart,
and more addresses are still needed, the request is refused (``conflict``, 409) naming the address,
the port and its users instead of getting a fresh address. Whoever sets a sharing key asks for
the shared address; a different one handed out without a word (in Kubernetes, a Service whose DNS
name then points elsewhere than its partners') is the surprise, a refusal naming the port is the
fix.

Applying a plan (the caller's job, in one transaction): insert ``new``; link the load balancer to
``addresses`` in order (``join`` are the existing holdings among them it did not use before); unlink
``leave`` and free those that are dynamic and now unused. A holding's sharing key should follow its
users: set it to the request's ``sharing_key`` on the holdings in ``addresses`` (the plan guarantees
any other users agree) and back to None when a static holding loses its last user.

One check is the caller's: ``Holding.ports`` is the union over all users, this load balancer's own
old ports included, so for an address it already shares the planner cannot tell whether its new
ports collide with the other users'. The caller checks that after linking.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from anycastlb.control.ipam.choose import (
    allocate_fresh,
    candidate_pools,
    exhausted,
    named_pool,
    no_pool,
    pool_of,
)
from anycastlb.control.ipam.errors import AllocationError
from anycastlb.control.ipam.holdings import Holding, HoldingIndex, NewHolding, PortSet, index_of
from anycastlb.control.ipam.pools import Address, PoolView, blocked_reason, pool_containing, version_of
from anycastlb.control.ipam.sni import PortClaim, clash_text, first_clash
from anycastlb.model.desired import IPRequest

__all__ = ["AddressPlan", "plan_addresses"]

_PICK_ANOTHER = "pick another address or omit addresses to get a free one"


@dataclass(frozen=True, slots=True)
class AddressPlan:
    """The outcome for one load balancer: its VIPs and the holdings changes that give it them."""

    addresses: tuple[Address, ...]  # final VIPs, in order
    new: tuple[NewHolding, ...] = ()  # holdings to insert
    join: tuple[Address, ...] = ()  # existing holdings it starts using
    leave: tuple[Address, ...] = ()  # current addresses it stops using


@dataclass(frozen=True, slots=True)
class _Ask:
    """Everything about the asking load balancer that the rules look at."""

    tenant: str
    load_balancer: str
    ports: PortSet
    claims: tuple[PortClaim, ...]  # its listeners, with hostnames (sni.py)
    sharing_key: str | None
    named: PoolView | None
    pools: Sequence[PoolView]
    holdings: Mapping[Address, Holding]


def plan_addresses(
    request: IPRequest,
    *,
    tenant: str,
    load_balancer: str,
    ports: PortSet,
    current: Sequence[Address],
    pools: Sequence[PoolView],
    holdings: Mapping[Address, Holding],
    claims: Sequence[PortClaim] = (),
) -> AddressPlan:
    """Plan the VIPs of ``load_balancer`` (its name, as in ``Holding.load_balancers``) of ``tenant``.

    ``current`` is what it holds now (empty on create); ``holdings`` is every held address, its own
    included. ``claims`` are its listeners with their hostnames (SNI sharing); a port without a
    claim is claimed without hostnames. Same input, same plan. Raises :class:`AllocationError` when
    the request cannot be met.
    """
    named = named_pool(request.pool, tenant, pools, "ips.pool")
    given = {(claim.port, claim.protocol): claim for claim in claims}
    full = tuple(
        given.get((port, protocol), PortClaim(tenant, load_balancer, port, protocol))
        for port, protocol in sorted(ports)
    )
    ask = _Ask(tenant, load_balancer, ports, full, request.sharing_key, named, pools, holdings)
    if request.addresses:
        chosen, new, join = _specific(ask, request.addresses)
    else:
        chosen, new, join = _dynamic(ask, request, current)
    final = set(chosen)
    leave = tuple(address for address in current if address not in final)
    return AddressPlan(tuple(chosen), tuple(new), tuple(join), leave)


@dataclass(frozen=True, slots=True)
class _Problem:
    """Why the asker may not use an address (a whole clause naming it) and how to make it allowed
    (None: it cannot be, beyond picking another address)."""

    text: str
    fix: str | None = None


def _cross_tenant_allowed(ask: _Ask, holding: Holding) -> bool:
    """Another tenant's address is shared only on a pool whose admin allows it (``sni_sharing:
    pool``), by a request that names that pool in ``ips.pool`` and the address's sharing key; never
    a reserved (static) address, which is its tenant's alone."""
    named = ask.named
    return (
        not holding.static
        and named is not None
        and named.sni_sharing == "pool"
        and named.name == holding.pool
        and ask.sharing_key is not None
        and holding.sharing_key == ask.sharing_key
    )


def _others(ask: _Ask, holding: Holding) -> list[str]:
    """The holder tenant's load balancers using it besides the asker (names the asker may see)."""
    mine = holding.load_balancers - {ask.load_balancer} if holding.tenant == ask.tenant else frozenset()
    return sorted(mine)


def _claim_problem(ask: _Ask, holding: Holding, prefix: str = "") -> _Problem | None:
    clash = first_clash(ask.claims, holding.claims)
    return None if clash is None else _Problem(prefix + clash_text(clash, str(holding.address)))


def _sharing_problem(ask: _Ask, holding: Holding) -> _Problem | None:
    """Why this load balancer may not use ``holding`` beside the load balancers using it, or None."""
    address = holding.address
    if holding.tenant != ask.tenant:
        if not _cross_tenant_allowed(ask, holding):
            return _Problem(f"{address} is already allocated (to another tenant)")
        return _claim_problem(ask, holding)
    others = _others(ask, holding)
    strangers = any(claim.owner != (ask.tenant, ask.load_balancer) for claim in holding.claims)
    if not others and not strangers:
        return None
    key_problem = _key_problem(ask, holding, ", ".join(others))
    if key_problem is not None:
        return key_problem
    return _claim_problem(ask, holding) if holding.claims else _port_problem(ask, holding, others)


def _port_problem(ask: _Ask, holding: Holding, others: list[str]) -> _Problem | None:
    """Without claims (users' hostnames unknown): any port in common is a collision."""
    if ask.load_balancer in holding.load_balancers:
        return None  # its own old ports are in holding.ports: the caller checks ports (module docstring)
    overlap = sorted(holding.ports & ask.ports)
    if not overlap:
        return None
    taken = ", ".join(f"{port}/{protocol}" for port, protocol in overlap)
    users = ", ".join(others)
    return _Problem(
        f"{holding.address} is shared by load balancer(s) {users}, which already listen on {taken}",
        "use other ports",
    )


def _key_problem(ask: _Ask, holding: Holding, names: str) -> _Problem | None:
    """The tenant's own address is shared only under its sharing key, by requests with that key."""
    address, key = holding.address, holding.sharing_key
    if key is None:
        return _Problem(
            f"{address} is used by load balancer(s) {names} without a sharing key, so it cannot be shared"
        )
    if ask.sharing_key != key:
        mismatch = "this request has none" if ask.sharing_key is None else f"not {ask.sharing_key}"
        users = f"load balancer(s) {names}" if names else "load balancers"
        return _Problem(
            f"{address} is shared by {users} under sharing key {key} ({mismatch})",
            f"set ips.sharing_key: {key} to share it",
        )
    return None


def _specific(
    ask: _Ask, addresses: Sequence[Address]
) -> tuple[list[Address], list[NewHolding], list[Address]]:
    """``ips.addresses``: each one taken as asked, or the request refused naming the first problem."""
    new: list[NewHolding] = []
    join: list[Address] = []
    for address in addresses:
        pool = pool_of(
            address,
            tenant=ask.tenant,
            named=ask.named,
            pools=ask.pools,
            field="ips.pool",
            remedy=_PICK_ANOTHER,
        )
        holding = ask.holdings.get(address)
        if holding is None:
            new.append(NewHolding(address, pool.name, static=False, sharing_key=ask.sharing_key))
            continue
        problem = _sharing_problem(ask, holding)
        if problem is not None:
            remedy = _PICK_ANOTHER if problem.fix is None else f"{problem.fix}, or {_PICK_ANOTHER}"
            raise AllocationError("conflict", f"{problem.text}; {remedy}")
        if not holding.used_by(ask.tenant, ask.load_balancer):
            join.append(address)
    return list(addresses), new, join


def _still_fine(ask: _Ask, address: Address) -> bool:
    """Whether a current VIP may stay: it would be accepted if asked for by name today."""
    pool = pool_containing(ask.pools, address)
    if pool is None or not pool.usable_by(ask.tenant) or blocked_reason(pool, address) is not None:
        return False
    if ask.named is not None and pool.name != ask.named.name:
        return False
    holding = ask.holdings.get(address)
    return holding is not None and _sharing_problem(ask, holding) is None


def _shared_under_key(ask: _Ask, version: int, index: HoldingIndex, chosen: set[Address]) -> list[Holding]:
    """In-use addresses this request's sharing key may join, lowest first: the tenant's own, and
    other tenants' in the named pool when its admin allows cross-tenant SNI sharing there."""
    if ask.sharing_key is None:
        return []
    found = list(index.shared(ask.tenant, ask.sharing_key))
    named = ask.named
    if named is not None and named.sni_sharing == "pool":
        others = index.pool_shared(named.name, ask.sharing_key)
        found += [h for h in others if h.tenant != ask.tenant and _cross_tenant_allowed(ask, h)]
        found.sort(key=lambda holding: (holding.address.version, int(holding.address)))
    return [
        holding
        for holding in found
        if holding.address.version == version
        and holding.address not in chosen
        and holding.in_use
        and not holding.used_by(ask.tenant, ask.load_balancer)
        and _in_usable_pool(ask, holding.address)
    ]


def _collision(ask: _Ask, holding: Holding) -> _Problem | None:
    """What this load balancer's listeners would collide with on a key's address, or None."""
    prefix = f"sharing key {ask.sharing_key}: "
    if holding.claims:
        return _claim_problem(ask, holding, prefix)
    overlap = sorted(holding.ports & ask.ports)
    if not overlap:
        return None
    taken = ", ".join(f"{port}/{protocol}" for port, protocol in overlap)
    users = ", ".join(sorted(holding.load_balancers))
    return _Problem(
        f"{prefix}{holding.address} is shared by load balancer(s) {users}, which already listen on {taken}; "
        "use other ports to share it, or another sharing key (or none) for an address of its own"
    )


def _joinable(ask: _Ask, version: int, index: HoldingIndex, chosen: set[Address]) -> list[Address]:
    """Addresses shared under this request's key whose users it does not collide with, lowest first."""
    return [
        holding.address
        for holding in _shared_under_key(ask, version, index, chosen)
        if _collision(ask, holding) is None
    ]


def _in_usable_pool(ask: _Ask, address: Address) -> bool:
    """In a pool the tenant may use (and the named one, if any), and not reserved there."""
    pool = pool_containing(ask.pools, address)
    if pool is None or not pool.usable_by(ask.tenant) or blocked_reason(pool, address) is not None:
        return False
    return ask.named is None or pool.name == ask.named.name


def _refuse_if_ports_collide(ask: _Ask, version: int, index: HoldingIndex, chosen: set[Address]) -> None:
    """Refuse a fresh address when the key's shared address was passed over for a collision."""
    for holding in _shared_under_key(ask, version, index, chosen):
        problem = _collision(ask, holding)
        if problem is not None:
            raise AllocationError("conflict", problem.text)


def _refuse_if_current_collides(ask: _Ask, current: Sequence[Address]) -> None:
    """An update whose listeners now collide with a sharer of one of its current VIPs (a hostname
    another sharer serves, a second default, a port without hostnames) is refused: moving the VIP
    away from its partners without a word is the surprise (module docstring), the 409 the fix."""
    for address in current:
        holding = ask.holdings.get(address)
        if holding is None or not holding.claims or holding.sharing_key != ask.sharing_key:
            continue
        problem = _claim_problem(ask, holding, f"sharing key {ask.sharing_key}: ")
        if problem is not None:
            raise AllocationError("conflict", problem.text)


def _dynamic(
    ask: _Ask, request: IPRequest, current: Sequence[Address]
) -> tuple[list[Address], list[NewHolding], list[Address]]:
    chosen: list[Address] = []
    new: list[NewHolding] = []
    join: list[Address] = []
    index = index_of(ask.holdings)
    _refuse_if_current_collides(ask, current)
    for family in request.families:
        version = version_of(family)
        kept = [a for a in current if a.version == version and _still_fine(ask, a)][: request.count]
        chosen += kept
        need = request.count - len(kept)
        if need:
            joined = _joinable(ask, version, index, set(chosen))[:need]
            chosen += joined
            join += joined
            need -= len(joined)
        if need:
            _refuse_if_ports_collide(ask, version, index, set(chosen))
        if need:
            candidates = candidate_pools(ask.tenant, family, ask.named, ask.pools)
            if not candidates:
                raise no_pool(ask.tenant, family, ask.named, "ips.pool", f"drop {family} from ips.families")
            fresh = allocate_fresh(candidates, version, need, index.held(version))
            if len(fresh) < need:
                remedy = (
                    "add a prefix to a pool, release reserved IPs "
                    f"(`DELETE /v1/tenants/{ask.tenant}/ips/ADDR`) or ask for fewer (ips.count)"
                )
                raise exhausted(family, candidates, need, len(fresh), remedy)
            new += [NewHolding(a, pool, static=False, sharing_key=ask.sharing_key) for a, pool in fresh]
            chosen += [a for a, _ in fresh]
    return chosen, new, join
