"""Load balancers: create, update (idempotent ensure), delete, read; each change versioned.

A change runs in one transaction: take the writers' lock, check the tenant's quotas, plan the VIPs
with the pure allocator against current holdings, write rows, bump the revision and mark the PoPs
that must see it. The UNIQUE address index backs the plan: a second allocator that planned the same
address would fail to commit rather than hand it out twice.

Nothing under the lock costs time in proportion to the spec except writing its JSON (and, on an
update, decoding the old one for its PoPs): the spec arrives validated, dumped and digested
(:class:`PreparedSpec`), an unchanged spec is recognised by its digest, and no stored spec is
validated again (the size limits in control/limits.py bound the rest).
"""

import uuid
from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, defer

from anycastlb.control.backend_policy import BackendPolicy, PlatformAddresses, spec_refusals
from anycastlb.control.errors import Conflict, Invalid, NotFound, PreconditionFailed
from anycastlb.control.ipam import (
    AddressPlan,
    AllocationError,
    PortClaim,
    clash_text,
    first_clash,
    plan_addresses,
)
from anycastlb.control.limits import Limits
from anycastlb.control.preconditions import IfMatch
from anycastlb.control.schemas import LoadBalancerOut, LoadBalancerVersion
from anycastlb.control.service.addresses import (
    allocation_error,
    drop_unused_dynamic,
    insert_holdings,
    load_holdings,
    set_sharing_key,
    stored_claims,
)
from anycastlb.control.service.clusters import tunnel_networks
from anycastlb.control.service.pools import pool_views
from anycastlb.control.service.prepared import PreparedSpec, stored_pops
from anycastlb.control.service.quotas import check_address_quota, check_load_balancer_quota
from anycastlb.control.service.revision import bump, lock, touch_pops
from anycastlb.control.service.tenants import tenant_by_name
from anycastlb.control.store.tables import Address, LoadBalancer, LoadBalancerAddress, Pop, Tenant, utcnow
from anycastlb.model.addresses import parse_address, parse_network
from anycastlb.model.desired import LoadBalancerSpec
from anycastlb.model.duration import STORED_SECONDS

__all__ = [
    "addresses_of",
    "check_backends",
    "create_load_balancer",
    "delete_load_balancer",
    "ensure_load_balancer",
    "get_load_balancer",
    "list_load_balancers",
    "load_balancer_versions",
]


def addresses_of(session: Session, lb_ids: list[str]) -> dict[str, tuple[str, ...]]:
    """VIPs per load balancer id, in the order they were allocated."""
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for lb_id, position, address in session.execute(
        select(LoadBalancerAddress.load_balancer_id, LoadBalancerAddress.position, Address.address)
        .join(Address, Address.id == LoadBalancerAddress.address_id)
        .where(LoadBalancerAddress.load_balancer_id.in_(lb_ids))
    ):
        found[lb_id].append((position, address))
    return {lb_id: tuple(address for _, address in sorted(rows)) for lb_id, rows in found.items()}


def _out(
    lb: LoadBalancer, tenant: str, addresses: tuple[str, ...], spec: LoadBalancerSpec | None = None
) -> LoadBalancerOut:
    """``spec``: the validated spec just written or found equal to the stored one (validating the
    stored JSON again costs ~2 ms per 1,000 backends; a controller's resync sends thousands)."""
    return LoadBalancerOut(
        id=lb.id,
        tenant=tenant,
        name=lb.name,
        version=lb.version,
        addresses=addresses,
        spec=spec if spec is not None else LoadBalancerSpec.model_validate(lb.spec, context=STORED_SECONDS),
        created_at=lb.created_at,
        updated_at=lb.updated_at,
    )


def _find(session: Session, tenant_id: int, name: str, *, with_spec: bool = True) -> LoadBalancer | None:
    """``with_spec=False``: the spec's JSON is decoded only if it is read (writers compare digests)."""
    query = select(LoadBalancer).where(LoadBalancer.tenant_id == tenant_id, LoadBalancer.name == name)
    if not with_spec:
        query = query.options(defer(LoadBalancer.spec))
    return session.execute(query).scalar_one_or_none()


def list_load_balancers(session: Session, tenant: str) -> list[LoadBalancerOut]:
    found = tenant_by_name(session, tenant)
    lbs = (
        session.execute(
            select(LoadBalancer).where(LoadBalancer.tenant_id == found.id).order_by(LoadBalancer.name)
        )
        .scalars()
        .all()
    )
    vips = addresses_of(session, [lb.id for lb in lbs])
    return [_out(lb, tenant, vips.get(lb.id, ())) for lb in lbs]


def load_balancer_versions(session: Session, tenant: str) -> list[LoadBalancerVersion]:
    found = tenant_by_name(session, tenant)
    rows = session.execute(
        select(LoadBalancer.id, LoadBalancer.name, LoadBalancer.version, LoadBalancer.spec_digest)
        .where(LoadBalancer.tenant_id == found.id)
        .order_by(LoadBalancer.name)
    ).all()
    vips = addresses_of(session, [row.id for row in rows])
    return [
        LoadBalancerVersion(
            name=row.name, version=row.version, spec_digest=row.spec_digest, addresses=vips.get(row.id, ())
        )
        for row in rows
    ]


def get_load_balancer(session: Session, tenant: str, name: str) -> LoadBalancerOut:
    found = tenant_by_name(session, tenant)
    lb = _find(session, found.id, name)
    if lb is None:
        raise NotFound(f"load balancer {name!r} not found in tenant {tenant!r}")
    return _out(lb, tenant, addresses_of(session, [lb.id]).get(lb.id, ()))


def _check_pops(session: Session, spec: LoadBalancerSpec) -> None:
    known = set(session.execute(select(Pop.name)).scalars())
    unknown = [pop for pop in spec.pops if pop not in known]
    if unknown:
        raise Invalid(
            f"pops: unknown PoP(s) {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none yet'} "
            "(leave pops empty to be served by every PoP)"
        )


def claims_of(tenant: str, spec: LoadBalancerSpec) -> list[PortClaim]:
    """The spec's listeners as the SNI-sharing rule sees them (``ipam/sni.py``)."""
    return [
        PortClaim(
            tenant,
            spec.name,
            listener.port,
            listener.protocol,
            frozenset(listener.hostnames),
            listener.sni_default,
        )
        for listener in spec.listeners
    ]


def _check_shared_ports(
    session: Session, lb_id: str, tenant: str, spec: LoadBalancerSpec, addresses: tuple[str, ...]
) -> None:
    """Load balancers sharing an address must not listen on one port unless SNI routes them apart
    (``ipam/sni.py``). The allocator checks new shares; this also catches an update that adds a
    port, drops a hostname's partner or names a hostname a sharer already serves (the 409 rolls
    the whole change back). Another tenant's load balancer is never named."""
    rows = session.execute(
        select(Address.address, Tenant.name, LoadBalancer.name, LoadBalancer.spec)
        .join(LoadBalancerAddress, LoadBalancerAddress.address_id == Address.id)
        .join(LoadBalancer, LoadBalancer.id == LoadBalancerAddress.load_balancer_id)
        .join(Tenant, Tenant.id == LoadBalancer.tenant_id)
        .where(Address.address.in_(addresses), LoadBalancer.id != lb_id)
        .order_by(Address.address, Tenant.name, LoadBalancer.name)
    ).all()
    mine = claims_of(tenant, spec)
    for address, other_tenant, other, other_spec in rows:
        clash = first_clash(mine, stored_claims(other_tenant, other, other_spec))
        if clash is not None:
            raise Conflict(clash_text(clash, address))


def check_backends(
    session: Session, tenant: str, spec: LoadBalancerSpec, platform: PlatformAddresses
) -> None:
    """Refuse backends that point at the platform or at the PoP itself (``control/backend_policy.py``).

    Called in a read transaction before the writers' lock is taken: at the backend limit the check
    costs milliseconds that would otherwise be added to every other tenant's write. A pool created
    or an allow-list narrowed between this read and the write applies from the next change, as it
    does to load balancers stored before it."""
    found = tenant_by_name(session, tenant)
    tunnels = tunnel_networks(session)
    policy = BackendPolicy(
        platform=platform,
        pools=tuple(
            (view.name, network) for _, view in pool_views(session).values() for network in view.networks
        ),
        tenant_allowed=(
            *(parse_network(text) for text in found.allowed_backend_networks or ()),
            *(network for owner, network in tunnels if owner == tenant),
        ),
        foreign_tunnels=tuple(network for owner, network in tunnels if owner != tenant),
    )
    problems = spec_refusals(
        policy,
        (
            (listener.port, ((backend.address, backend.port) for backend in listener.backends))
            for listener in spec.listeners
        ),
    )
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise Invalid("backends refused: " + "; ".join(shown))


def _plan(session: Session, tenant: Tenant, spec: LoadBalancerSpec, current: tuple[str, ...]) -> AddressPlan:
    try:
        return plan_addresses(
            spec.ips,
            tenant=tenant.name,
            load_balancer=spec.name,
            ports=spec.ports,
            current=[parse_address(text) for text in current],
            pools=[view for _, view in pool_views(session).values()],
            holdings=load_holdings(session, tenant.id, spec.ips.sharing_key),
            claims=claims_of(tenant.name, spec),
        )
    except AllocationError as error:
        raise allocation_error(error) from None


def _link(
    session: Session, lb_id: str, plan: AddressPlan, tenant_id: int, sharing_key: str | None
) -> tuple[str, ...]:
    insert_holdings(session, tenant_id, plan.new)
    set_sharing_key(session, plan.addresses, sharing_key)
    texts = tuple(str(address) for address in plan.addresses)
    rows = session.execute(select(Address.address, Address.id).where(Address.address.in_(texts)))
    ids: dict[str, int] = {row[0]: row[1] for row in rows}
    session.execute(delete(LoadBalancerAddress).where(LoadBalancerAddress.load_balancer_id == lb_id))
    for position, text in enumerate(texts):
        session.add(LoadBalancerAddress(load_balancer_id=lb_id, address_id=ids[text], position=position))
    session.flush()
    return texts


def create_load_balancer(
    session: Session, tenant: str, prepared: PreparedSpec, limits: Limits
) -> LoadBalancerOut:
    spec = prepared.spec
    lock(session)
    found = tenant_by_name(session, tenant)
    if _find(session, found.id, spec.name, with_spec=False) is not None:
        raise Conflict(
            f"load balancer {spec.name!r} already exists; update it instead (PUT, or `anycastlb lb apply`)"
        )
    check_load_balancer_quota(session, found, limits)
    _check_pops(session, spec)
    plan = _plan(session, found, spec, ())
    check_address_quota(session, found, len(plan.new), limits)
    version = bump(session)
    lb = LoadBalancer(
        id=str(uuid.uuid4()),
        tenant_id=found.id,
        name=spec.name,
        spec=prepared.stored,
        spec_digest=prepared.digest,
        version=version,
    )
    session.add(lb)
    session.flush()
    addresses = _link(session, lb.id, plan, found.id, spec.ips.sharing_key)
    _check_shared_ports(session, lb.id, tenant, spec, addresses)
    touch_pops(session, spec.pops, version)
    return _out(lb, tenant, addresses, spec)


def ensure_load_balancer(
    session: Session,
    tenant: str,
    prepared: PreparedSpec,
    limits: Limits,
    if_match: IfMatch | None = None,
) -> tuple[LoadBalancerOut, bool]:
    """Create or update to exactly ``spec``; returns (load balancer, created). An unchanged spec is a
    no-op that keeps the version (controllers re-send the same spec on every resync)."""
    spec = prepared.spec
    lock(session)
    found = tenant_by_name(session, tenant)
    lb = _find(session, found.id, spec.name, with_spec=False)
    if lb is None:
        if if_match is not None:
            raise PreconditionFailed(if_match.refusal(spec.name, None))
        return create_load_balancer(session, tenant, prepared, limits), True
    if if_match is not None and not if_match.matches(lb.version):
        raise PreconditionFailed(if_match.refusal(spec.name, lb.version))
    current = addresses_of(session, [lb.id]).get(lb.id, ())
    # Equal digests: the stored JSON is this dump of an equal spec (no JSON to decode). A row from
    # before migration 0002 has no digest: compare the JSON once, and fill the digest in.
    if lb.spec_digest == prepared.digest or (lb.spec_digest is None and lb.spec == prepared.stored):
        lb.spec_digest = prepared.digest
        return _out(lb, tenant, current, spec), False
    old_pops = stored_pops(lb.spec)
    _check_pops(session, spec)
    plan = _plan(session, found, spec, current)
    check_address_quota(session, found, len(plan.new), limits)
    version = bump(session)
    lb.spec = prepared.stored
    lb.spec_digest = prepared.digest
    lb.version = version
    lb.updated_at = utcnow()
    addresses = _link(session, lb.id, plan, found.id, spec.ips.sharing_key)
    _check_shared_ports(session, lb.id, tenant, spec, addresses)
    drop_unused_dynamic(session, plan.leave)
    touch_pops(session, () if not old_pops or not spec.pops else tuple({*old_pops, *spec.pops}), version)
    return _out(lb, tenant, addresses, spec), False


def delete_load_balancer(session: Session, tenant: str, name: str) -> None:
    """Delete it; its dynamic addresses are freed, static (reserved) ones stay with the tenant."""
    lock(session)
    found = tenant_by_name(session, tenant)
    lb = _find(session, found.id, name)
    if lb is None:
        raise NotFound(f"load balancer {name!r} not found in tenant {tenant!r}")
    current = addresses_of(session, [lb.id]).get(lb.id, ())
    pops = stored_pops(lb.spec)
    session.delete(lb)
    session.flush()
    drop_unused_dynamic(session, [parse_address(text) for text in current])
    touch_pops(session, pops, bump(session))
