"""Held addresses: what the allocator plans against, the tenant's IP list, reservations, releases."""

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from anycastlb.control.errors import Conflict, Forbidden, NotFound
from anycastlb.control.ipam import (
    AllocationError,
    Holding,
    HoldingTable,
    NewHolding,
    PortClaim,
    check_release,
    plan_reservation,
)
from anycastlb.control.limits import Limits
from anycastlb.control.schemas import AddressOut, IPReservation
from anycastlb.control.service.pools import pool_views
from anycastlb.control.service.quotas import check_address_quota
from anycastlb.control.service.revision import lock
from anycastlb.control.service.tenants import tenant_by_name
from anycastlb.control.store.tables import Address, LoadBalancer, LoadBalancerAddress, Pool, Tenant
from anycastlb.model.base import parse_address

__all__ = [
    "allocation_error",
    "drop_unused_dynamic",
    "insert_holdings",
    "list_addresses",
    "load_holdings",
    "release",
    "reserve",
    "set_sharing_key",
    "stored_claims",
    "stored_ports",
]

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def allocation_error(error: AllocationError) -> Exception:
    """The API error for an allocator refusal (its message already says what to do)."""
    if error.kind == "forbidden":
        return Forbidden(str(error))
    if error.kind == "not_found":
        return NotFound(str(error))
    return Conflict(str(error))


def stored_ports(spec: dict[str, Any]) -> frozenset[tuple[int, str]]:
    """(port, protocol) of a stored spec, read from its JSON: the store holds only validated specs,
    and validating every load balancer of a tenant again on each create was 36% of a create."""
    return frozenset((int(item["port"]), str(item.get("protocol", "tcp"))) for item in spec["listeners"])


def stored_claims(tenant: str, name: str, spec: dict[str, Any]) -> list[PortClaim]:
    """A stored spec's listeners as the SNI rule sees them (``ipam/sni.py``), read from its JSON."""
    return [
        PortClaim(
            tenant,
            name,
            int(item["port"]),
            str(item.get("protocol", "tcp")),
            frozenset(item.get("hostnames") or ()),
            bool(item.get("sni_default", False)),
        )
        for item in spec["listeners"]
    ]


def load_holdings(session: Session, tenant_id: int, sharing_key: str | None = None) -> HoldingTable:
    """Every held address. Load balancer names are filled in for the tenant's own addresses only;
    ports and claims (each user's listeners with hostnames) only for addresses shared under
    ``sharing_key``, the one request's key: the allocator compares listeners only between load
    balancers of one key (``ipam/plan.py`` ``_sharing_problem``). Those are the tenant's own, and,
    on pools with ``sni_sharing: pool``, any tenant's (their claims then name other tenants' load
    balancers: the allocator never puts those names in a message)."""
    rows = session.execute(
        select(
            Address.id,
            Address.address,
            Pool.name,
            Tenant.name,
            Address.tenant_id,
            Address.static,
            Address.sharing_key,
        )
        .join(Pool, Pool.id == Address.pool_id)
        .join(Tenant, Tenant.id == Address.tenant_id)
    ).all()
    users: dict[int, list[str]] = defaultdict(list)
    for address_id, lb_name in session.execute(
        select(LoadBalancerAddress.address_id, LoadBalancer.name)
        .join(LoadBalancer, LoadBalancer.id == LoadBalancerAddress.load_balancer_id)
        .where(LoadBalancer.tenant_id == tenant_id)
    ):
        users[address_id].append(lb_name)
    # Only the specs of that key's load balancers are read: a spec at 500 nodes is ~60 KB of JSON,
    # and decoding every one of a tenant's cost each create ~1 ms per load balancer held (a create
    # with 5,000 held took 0.9-1.6 s).
    ports: dict[int, set[tuple[int, str]]] = defaultdict(set)
    claims: dict[int, list[PortClaim]] = defaultdict(list)
    if sharing_key is not None:
        for address_id, lb_tenant, lb_name, spec in session.execute(
            select(LoadBalancerAddress.address_id, Tenant.name, LoadBalancer.name, LoadBalancer.spec)
            .join(LoadBalancer, LoadBalancer.id == LoadBalancerAddress.load_balancer_id)
            .join(Tenant, Tenant.id == LoadBalancer.tenant_id)
            .join(Address, Address.id == LoadBalancerAddress.address_id)
            .join(Pool, Pool.id == Address.pool_id)
            .where(
                Address.sharing_key == sharing_key,
                or_(LoadBalancer.tenant_id == tenant_id, Pool.sni_sharing == "pool"),
            )
        ):
            ports[address_id] |= stored_ports(spec)
            claims[address_id] += stored_claims(lb_tenant, lb_name, spec)
    holdings: list[Holding] = []
    for address_id, text, pool, tenant, owner_id, static, key in rows:
        own = owner_id == tenant_id
        address = parse_address(text)  # cached: the same addresses are read on every create
        holdings.append(
            Holding(
                address=address,
                pool=pool,
                tenant=tenant,
                static=static,
                sharing_key=key,
                load_balancers=frozenset(users.get(address_id, ())) if own else frozenset(),
                ports=frozenset(ports.get(address_id, ())),
                claims=tuple(claims.get(address_id, ())),
            )
        )
    return HoldingTable(holdings)  # indexed once: the lowest-free search bisects it


def insert_holdings(session: Session, tenant_id: int, new: Iterable[NewHolding]) -> None:
    ids = {name: pool_id for name, (pool_id, _) in pool_views(session).items()}
    for holding in new:
        session.add(
            Address(
                address=str(holding.address),
                pool_id=ids[holding.pool],
                tenant_id=tenant_id,
                static=holding.static,
                sharing_key=holding.sharing_key,
            )
        )
    session.flush()


def drop_unused_dynamic(session: Session, addresses: Iterable[IP]) -> None:
    """Free dynamic addresses that no load balancer uses any more (static ones stay reserved)."""
    texts = [str(address) for address in addresses]
    if not texts:
        return
    used = select(LoadBalancerAddress.address_id)
    session.execute(
        delete(Address).where(Address.address.in_(texts), Address.static.is_(False), Address.id.not_in(used))
    )
    # A reservation nobody uses shares with nobody: the next user brings its own sharing key.
    session.execute(
        update(Address)
        .where(Address.address.in_(texts), Address.static.is_(True), Address.id.not_in(used))
        .values(sharing_key=None)
    )


def set_sharing_key(session: Session, addresses: Iterable[IP], sharing_key: str | None) -> None:
    """The addresses a load balancer now uses carry its sharing key (the allocator checked that
    every other user has the same one), so the next load balancer with that key may join them."""
    texts = [str(address) for address in addresses]
    if texts:
        session.execute(update(Address).where(Address.address.in_(texts)).values(sharing_key=sharing_key))


def list_addresses(session: Session, tenant: str | None) -> list[AddressOut]:
    query = (
        select(Address, Pool.name, Tenant.name)
        .join(Pool, Pool.id == Address.pool_id)
        .join(Tenant, Tenant.id == Address.tenant_id)
        .order_by(Address.id)
    )
    if tenant is not None:
        query = query.where(Tenant.name == tenant)
    rows = session.execute(query).all()
    users: dict[int, list[str]] = defaultdict(list)
    listed = (
        select(LoadBalancerAddress.address_id, LoadBalancer.name)
        .join(LoadBalancer, LoadBalancer.id == LoadBalancerAddress.load_balancer_id)
        .order_by(LoadBalancer.name)
    )
    if tenant is not None:  # an address shared across tenants (SNI) lists only the caller's users
        listed = listed.join(Tenant, Tenant.id == LoadBalancer.tenant_id).where(Tenant.name == tenant)
    for address_id, lb_name in session.execute(listed):
        users[address_id].append(lb_name)
    return [
        AddressOut(
            address=row.address,
            tenant=tenant_name,
            pool=pool_name,
            static=row.static,
            sharing_key=row.sharing_key,
            load_balancers=tuple(users.get(row.id, [])),
            created_at=row.created_at,
        )
        for row, pool_name, tenant_name in rows
    ]


def _own(session: Session, tenant: str, address: IP) -> Address:
    row = session.execute(
        select(Address)
        .join(Tenant, Tenant.id == Address.tenant_id)
        .where(Address.address == str(address), Tenant.name == tenant)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{address} is not an address of tenant {tenant!r}")
    return row


def _check_not_shared_across_tenants(session: Session, tenant_id: int, address: IP, action: str) -> None:
    """A reserved address is the tenant's alone: one that other tenants' load balancers share by
    SNI (a pool with ``sni_sharing: pool``) is neither reserved nor released from under them."""
    foreign = session.scalar(
        select(func.count())
        .select_from(LoadBalancerAddress)
        .join(LoadBalancer, LoadBalancer.id == LoadBalancerAddress.load_balancer_id)
        .join(Address, Address.id == LoadBalancerAddress.address_id)
        .where(Address.address == str(address), LoadBalancer.tenant_id != tenant_id)
    )
    if foreign:
        raise Conflict(
            f"{address} is shared by SNI with load balancers of other tenants, so it cannot be {action}; "
            "reserve another address (omit address to get a free one)"
        )


def reserve(session: Session, tenant: str, body: IPReservation, limits: Limits) -> AddressOut:
    """A static address: kept after its load balancers are gone, until released explicitly."""
    lock(session)
    found = tenant_by_name(session, tenant)
    views = [view for _, view in pool_views(session).values()]
    try:
        result = plan_reservation(
            tenant=tenant,
            address=body.address,
            pool=body.pool,
            family=body.family,
            pools=views,
            holdings=load_holdings(session, found.id),
        )
    except AllocationError as error:
        raise allocation_error(error) from None
    if isinstance(result, NewHolding):
        check_address_quota(session, found, 1, limits)
        insert_holdings(session, found.id, [result])
        address: IP = result.address
    else:
        address = result
        _check_not_shared_across_tenants(session, found.id, address, "reserved")
        _own(session, tenant, address).static = True
        session.flush()
    return next(out for out in list_addresses(session, tenant) if out.address == str(address))


def release(session: Session, tenant: str, address: IP) -> None:
    lock(session)
    found = tenant_by_name(session, tenant)
    row = _own(session, tenant, address)
    holding = load_holdings(session, found.id)[parse_address(row.address)]
    try:
        check_release(holding)
    except AllocationError as error:
        raise allocation_error(error) from None
    session.delete(row)
