"""IPAM properties over random small pools and random sequences of operations.

Each example draws pools (a platform IPv4 and IPv6 pool, BYOIP pools of two tenants, /28-/30 and
/124-/126, random reserved ranges, random auto-assign) and then runs creates, updates and deletes
of load balancers, reservations and releases against a simulated store that applies each plan the
way the control plane's services do. After every step:

(i) no address is held twice or by two tenants, and every load balancer's VIPs are held for it;
(ii) every held address is in a pool its tenant may use, never reserved, never a skipped network
or broadcast address, and a dynamic load balancer has ``count`` addresses of each requested family;
(iii) re-planning an applied request with its result as ``current`` changes nothing;
(iv) a dynamic request or a reservation is refused as exhausted exactly when a brute-force
enumeration of the small networks finds too few free addresses, and otherwise gets the lowest ones;
(v) an address is shared only by load balancers of one tenant with one sharing key, on distinct ports,
and a dynamic request with a key is refused (not given a fresh address) when an address shared under
the key was passed over because it already listens on one of the request's ports.
"""

import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal, TypeVar

from hypothesis import event, given, settings
from hypothesis import strategies as st

from anycastlb.control.ipam import (
    Address,
    AddressPlan,
    AllocationError,
    Holding,
    HoldingTable,
    NewHolding,
    PoolView,
    check_release,
    plan_addresses,
    plan_reservation,
    usable_pools,
)
from anycastlb.model.desired import IPFamily, IPRequest

Ports = frozenset[tuple[int, str]]
T = TypeVar("T")
TENANTS = ("acme", "beta")
LOAD_BALANCERS = ("web", "api", "db")
KEYS = (None, "k1", "k2")
PORTS = ((80, "tcp"), (443, "tcp"), (53, "udp"))
# name, owner, first network, second network, IP version
POOL_SHAPES = (
    ("platform-v4", None, "198.51.100.0", "198.51.100.64", 4),
    ("platform-v6", None, "2001:db8:100::", "2001:db8:100::100", 6),
    ("acme-v4", "acme", "203.0.113.0", "203.0.113.64", 4),
    ("acme-v6", "acme", "2001:db8:a::", "2001:db8:a::100", 6),
    ("beta-v4", "beta", "192.0.2.0", "192.0.2.64", 4),
)
OUTSIDE = (ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("2001:db8:ffff::1"))


# --- brute force over the small networks: the oracle ---------------------------------------------


@cache
def handed_out(pool: PoolView) -> tuple[Address, ...]:
    """Every address of the pool that may ever be handed out, ascending, by plain enumeration."""
    found: list[Address] = []
    for network in sorted(pool.networks, key=lambda n: (n.version, int(n.network_address))):
        special = {network.network_address}
        if network.version == 4 and network.prefixlen < 31:
            special.add(network.broadcast_address)
        if network.version == 6 and network.prefixlen >= 127:
            special = set()
        if network.version == 4 and network.prefixlen >= 31:
            special = set()
        for address in network:
            reserved = any(
                first.version == address.version and int(first) <= int(address) <= int(last)
                for first, last in pool.reserved
            )
            if address not in special and not reserved:
                found.append(address)
    return tuple(found)


@cache
def handed_set(pool: PoolView) -> frozenset[Address]:
    return frozenset(handed_out(pool))


def owning_pool(pools: Sequence[PoolView], address: Address) -> PoolView | None:
    matches = [pool for pool in pools if any(address in network for network in pool.networks)]
    assert len(matches) <= 1
    return matches[0] if matches else None


def allocatable(pools: Sequence[PoolView], tenant: str, address: Address, pool: str | None) -> bool:
    found = owning_pool(pools, address)
    return (
        found is not None
        and found.owner in (None, tenant)
        and (pool is None or found.name == pool)
        and address in handed_set(found)
    )


def candidates(pools: Sequence[PoolView], tenant: str, pool: str | None, version: int) -> list[PoolView]:
    if pool is not None:
        chosen = [p for p in pools if p.name == pool and p.owner in (None, tenant)]
    else:
        chosen = [p for p in usable_pools(pools, tenant) if p.auto_assign]
    return [p for p in chosen if any(n.version == version for n in p.networks)]


# --- the simulated store -------------------------------------------------------------------------


@dataclass
class Held:
    pool: str
    tenant: str
    static: bool
    key: str | None
    users: dict[str, Ports] = field(default_factory=dict)


@dataclass
class LoadBalancer:
    request: IPRequest
    ports: Ports
    addresses: tuple[Address, ...]


@dataclass
class Store:
    pools: list[PoolView]
    held: dict[Address, Held] = field(default_factory=dict)
    lbs: dict[tuple[str, str], LoadBalancer] = field(default_factory=dict)

    def holdings(self) -> dict[Address, Holding]:
        return {
            address: Holding(
                address,
                h.pool,
                h.tenant,
                h.static,
                h.key,
                frozenset(h.users),
                frozenset().union(*h.users.values()),
            )
            for address, h in self.held.items()
        }

    def insert(self, tenant: str, new: NewHolding) -> None:
        assert new.address not in self.held, f"{new.address} handed out twice"  # (i)
        self.held[new.address] = Held(new.pool, tenant, new.static, new.sharing_key)

    def unlink(self, tenant: str, lb: str, address: Address) -> None:
        h = self.held[address]
        assert h.tenant == tenant
        del h.users[lb]
        if not h.users:
            if h.static:
                h.key = None
            else:
                del self.held[address]

    def apply(self, tenant: str, lb: str, request: IPRequest, ports: Ports, plan: AddressPlan) -> bool:
        """Apply like the service does; False if its own port check refuses (nothing changed then)."""
        current = self.lbs[tenant, lb].addresses if (tenant, lb) in self.lbs else ()
        assert len(set(plan.addresses)) == len(plan.addresses)
        assert set(plan.leave) == set(current) - set(plan.addresses)
        new = {n.address for n in plan.new}
        for address in plan.addresses:
            # every VIP is kept, joined or new, and nothing else
            kinds = [address in current, address in plan.join, address in new]
            assert kinds.count(True) == 1, (address, kinds)
            if address in plan.join:
                assert self.held[address].tenant == tenant
                assert lb not in self.held[address].users
        for address in plan.addresses:
            h = self.held.get(address)
            if h is not None and any(p & ports for user, p in h.users.items() if user != lb):
                return False  # the caller's check on an address it already shares (plan module docstring)
        for n in plan.new:
            self.insert(tenant, n)
        for address in plan.addresses:
            h = self.held[address]
            h.users[lb] = ports
            h.key = request.sharing_key
        for address in plan.leave:
            self.unlink(tenant, lb, address)
        self.lbs[tenant, lb] = LoadBalancer(request, ports, plan.addresses)
        return True

    def delete(self, tenant: str, lb: str) -> None:
        found = self.lbs.pop((tenant, lb), None)
        for address in found.addresses if found else ():
            self.unlink(tenant, lb, address)


def check_invariants(store: Store) -> None:
    for address, h in store.held.items():
        pool = owning_pool(store.pools, address)
        assert pool is not None and pool.name == h.pool  # (ii)
        assert pool.owner in (None, h.tenant)  # (ii), (i): one tenant per address
        assert address in handed_set(pool)  # (ii): never reserved, never skipped
        for user in h.users:
            assert address in store.lbs[h.tenant, user].addresses  # (i)
        if len(h.users) > 1:  # (v)
            event("an address is shared")
            keys = {store.lbs[h.tenant, user].request.sharing_key for user in h.users}
            assert len(keys) == 1 and None not in keys, keys
            ports = [store.lbs[h.tenant, user].ports for user in h.users]
            assert sum(len(p) for p in ports) == len(frozenset().union(*ports)), ports
    for (tenant, name), lb in store.lbs.items():
        for address in lb.addresses:
            assert store.held[address].tenant == tenant and name in store.held[address].users  # (i)
        if not lb.request.addresses:  # (ii): count of each family asked for, nothing else
            versions = [address.version for address in lb.addresses]
            assert sorted(versions) == sorted(
                4 if family == "ipv4" else 6
                for family in lb.request.families
                for _ in range(lb.request.count)
            )


# --- the oracle for dynamic requests -------------------------------------------------------------


def expected_fresh(
    store: Store, tenant: str, lb: str, request: IPRequest, ports: Ports
) -> dict[int, list[Address]] | Literal["conflict"] | None:
    """Per IP version the fresh addresses a dynamic request must get, None if it must be exhausted,
    "conflict" if it must be refused because its key's address already listens on one of its ports."""
    current = store.lbs[tenant, lb].addresses if (tenant, lb) in store.lbs else ()
    holdings = store.holdings()
    chosen: set[Address] = set()
    fresh: dict[int, list[Address]] = {}
    for family in request.families:
        version = 4 if family == "ipv4" else 6
        kept = [
            a
            for a in current
            if a.version == version
            and allocatable(store.pools, tenant, a, request.pool)
            and (
                not holdings[a].load_balancers - {lb}
                or (request.sharing_key is not None and holdings[a].sharing_key == request.sharing_key)
            )
        ][: request.count]
        chosen |= set(kept)
        need = request.count - len(kept)
        joinable = sorted(
            (
                a
                for a, h in holdings.items()
                if request.sharing_key is not None
                and h.tenant == tenant
                and h.sharing_key == request.sharing_key
                and a.version == version
                and h.load_balancers
                and lb not in h.load_balancers
                and not h.ports & ports
                and a not in chosen
                and allocatable(store.pools, tenant, a, request.pool)
            ),
            key=int,
        )[:need]
        chosen |= set(joinable)
        need -= len(joinable)
        collides = any(
            request.sharing_key is not None
            and h.tenant == tenant
            and h.sharing_key == request.sharing_key
            and a.version == version
            and h.load_balancers
            and lb not in h.load_balancers
            and h.ports & ports
            and a not in chosen
            and allocatable(store.pools, tenant, a, request.pool)
            for a, h in holdings.items()
        )
        if need and collides:
            return "conflict"
        free = [
            a
            for pool in candidates(store.pools, tenant, request.pool, version)
            for a in handed_out(pool)
            if a.version == version and a not in holdings
        ]
        if len(free) < need:
            return None
        fresh[version] = free[:need]
    return fresh


# --- strategies ----------------------------------------------------------------------------------


@st.composite
def pools(draw: st.DrawFn) -> list[PoolView]:
    found = []
    for name, owner, first, second, version in POOL_SHAPES:
        if not draw(st.booleans()) and owner is not None:
            continue
        lengths = st.integers(28, 30) if version == 4 else st.integers(124, 126)
        bases = [first] if draw(st.booleans()) else [first, second]
        networks = tuple(ipaddress.ip_network(f"{base}/{draw(lengths)}") for base in bases)
        reserved = []
        for network in networks:
            for _ in range(draw(st.integers(0, 2))):
                a, b = sorted(draw(st.integers(0, network.num_addresses - 1)) for _ in range(2))
                reserved.append((network[a], network[b]))
        found.append(
            PoolView(name, networks, tuple(reserved), owner, auto_assign=draw(st.booleans() | st.just(True)))
        )
    return found


def all_addresses(pools: Sequence[PoolView]) -> list[Address]:
    return sorted(
        (a for p in pools for n in p.networks for a in n), key=lambda a: (a.version, int(a))
    ) + list(OUTSIDE)


def requests(store: Store) -> st.SearchStrategy[IPRequest]:
    names = [p.name for p in store.pools]
    pool_names = st.one_of(st.none(), st.none(), st.none(), st.sampled_from([*names, "nope"]))
    keys = st.sampled_from((None, "k1", "k1", "k2"))
    # specific addresses: any address of the pools, or one already held (to share, or to be refused)
    universe = all_addresses(store.pools)
    held = sorted(store.held, key=lambda a: (a.version, int(a)))
    one = st.one_of(st.sampled_from(universe), st.sampled_from(held)) if held else st.sampled_from(universe)
    specific = st.builds(
        lambda addresses, key, pool: IPRequest(addresses=tuple(addresses), sharing_key=key, pool=pool),
        st.lists(one, min_size=1, max_size=2, unique=True),
        keys,
        st.one_of(st.none(), st.none(), pool_names),
    )
    families: st.SearchStrategy[tuple[IPFamily, ...]] = st.sampled_from(
        [("ipv4",), ("ipv6",), ("ipv4", "ipv6"), ("ipv6", "ipv4")]
    )
    dynamic = st.builds(
        lambda families, count, key, pool: IPRequest(
            families=families, count=count, sharing_key=key, pool=pool
        ),
        families,
        st.integers(1, 3),
        keys,
        pool_names,
    )
    return st.one_of(dynamic, dynamic, specific)


# --- the steps -----------------------------------------------------------------------------------


def attempt(call: Callable[[], T]) -> T | AllocationError:
    try:
        return call()
    except AllocationError as error:
        return error


def plan_step(store: Store, tenant: str, lb: str, request: IPRequest, ports: Ports) -> None:
    current = store.lbs[tenant, lb].addresses if (tenant, lb) in store.lbs else ()
    holdings = store.holdings()

    def run(table: dict[Address, Holding] | HoldingTable, now: Sequence[Address] = current) -> AddressPlan:
        return plan_addresses(
            request,
            tenant=tenant,
            load_balancer=lb,
            ports=ports,
            current=now,
            pools=store.pools,
            holdings=table,
        )

    expected = None if request.addresses else expected_fresh(store, tenant, lb, request, ports)
    pool_ok = request.pool is None or any(
        p.name == request.pool and p.owner in (None, tenant) for p in store.pools
    )
    result = attempt(lambda: run(holdings))
    if isinstance(result, AllocationError):
        event(f"plan refused: {result.kind}")
        if result.kind == "forbidden":
            assert not pool_ok or request.addresses, result.message
        elif result.kind == "exhausted":
            assert not request.addresses and expected is None, result.message  # (iv)
        else:
            assert result.kind == "conflict", result.message
            assert request.addresses or expected == "conflict", result.message  # (v)
        return
    assert result == run(HoldingTable(holdings.values()))  # deterministic, whatever the Mapping
    assert pool_ok
    if not request.addresses:
        assert expected is not None and expected != "conflict"  # (iv), (v)
        for version, addresses in expected.items():
            assert [n.address for n in result.new if n.address.version == version] == addresses  # (iv)
    event("plan: joined a shared address" if result.join else "plan: no join")
    event("plan: kept an address" if set(result.addresses) & set(current) else "plan: kept none")
    if not store.apply(tenant, lb, request, ports, result):
        event("plan: refused by the caller's port check")
        return
    assert run(store.holdings(), result.addresses) == AddressPlan(result.addresses)  # (iii)


def reserve_step(
    store: Store, tenant: str, address: Address | None, pool: str | None, family: IPFamily
) -> None:
    holdings = store.holdings()
    version = 4 if family == "ipv4" else 6
    free = [
        a for p in candidates(store.pools, tenant, pool, version) for a in handed_out(p) if a not in holdings
    ]
    result = attempt(
        lambda: plan_reservation(
            tenant=tenant, address=address, pool=pool, family=family, pools=store.pools, holdings=holdings
        )
    )
    if isinstance(result, AllocationError):
        event(f"reservation refused: {result.kind}")
        if address is None and result.kind == "exhausted":
            assert not free, result.message  # (iv)
        return
    if isinstance(result, NewHolding):
        if address is None:
            assert result.address == free[0]  # (iv): the lowest free one
        assert result.static
        store.insert(tenant, result)
    else:
        h = store.held[result]
        assert h.tenant == tenant and not h.static
        h.static = True


def release_step(store: Store, tenant: str, pick: int) -> None:
    own = sorted((a for a, h in store.held.items() if h.tenant == tenant), key=lambda a: (a.version, int(a)))
    if not own:
        return
    address = own[pick % len(own)]
    try:
        check_release(store.holdings()[address])
    except AllocationError:
        assert not store.held[address].static or store.held[address].users
        return
    assert store.held[address].static and not store.held[address].users
    del store.held[address]


def steps(store: Store, data: st.DataObject) -> Iterator[None]:
    tenants, names = st.sampled_from(TENANTS), st.sampled_from(LOAD_BALANCERS)
    ports = st.one_of(
        st.sampled_from(PORTS).map(lambda port: frozenset({port})), st.frozensets(st.sampled_from(PORTS))
    )
    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        kind = data.draw(st.sampled_from(["plan", "plan", "plan", "delete", "reserve", "release"]))
        tenant = data.draw(tenants)
        if kind == "plan":
            plan_step(store, tenant, data.draw(names), data.draw(requests(store)), data.draw(ports))
        elif kind == "delete":
            store.delete(tenant, data.draw(names))
        elif kind == "reserve":
            address = data.draw(st.none() | st.sampled_from(all_addresses(store.pools)))
            pool = data.draw(st.none() | st.sampled_from([p.name for p in store.pools]))
            reserve_step(store, tenant, address, pool, data.draw(st.sampled_from(["ipv4", "ipv6"])))
        else:
            release_step(store, tenant, data.draw(st.integers(0, 100)))
        yield


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_operations_keep_every_ipam_invariant(data: st.DataObject) -> None:
    store = Store(data.draw(pools(), label="pools"))
    for _ in steps(store, data):
        check_invariants(store)
