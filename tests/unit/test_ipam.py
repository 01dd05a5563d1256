"""IPAM rules, one case per rule and message: pools a tenant may use, specific and dynamic VIPs,
sharing, reservations, releases, pool definitions, capacity, and the search's worst case."""

import ipaddress
from collections.abc import Iterable, Mapping

import pytest

from anycastlb.control.ipam import (
    Address,
    AddressPlan,
    AllocationError,
    Holding,
    HoldingTable,
    InvalidPoolError,
    NewHolding,
    PoolView,
    check_new_pool,
    check_release,
    plan_addresses,
    plan_reservation,
    pool_capacity,
    pool_containing,
    usable_pools,
)
from anycastlb.model.desired import IPFamily, IPRequest


def ip(text: str) -> Address:
    return ipaddress.ip_address(text)


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


PLATFORM_V4 = PoolView(
    "platform-v4", (net("198.51.100.0/24"),), reserved=((ip("198.51.100.1"), ip("198.51.100.9")),)
)
PLATFORM_V6 = PoolView("platform-v6", (net("2001:db8:100::/64"),))
ACME = PoolView("acme-byoip", (net("203.0.113.0/28"),), owner="acme")
BETA = PoolView("beta-byoip", (net("192.0.2.0/28"),), owner="beta")
MANUAL = PoolView("manual", (net("100.64.0.0/29"),), auto_assign=False)
POOLS = (PLATFORM_V4, PLATFORM_V6, ACME, BETA, MANUAL)
HTTPS = frozenset({(443, "tcp")})
HTTP = frozenset({(80, "tcp")})


def held(
    address: str,
    tenant: str = "acme",
    *,
    lbs: Iterable[str] = (),
    ports: frozenset[tuple[int, str]] = HTTPS,
    key: str | None = None,
    static: bool = False,
    pools: Iterable[PoolView] = POOLS,
) -> Holding:
    found = pool_containing(list(pools), ip(address))
    assert found is not None
    users = frozenset(lbs)
    return Holding(ip(address), found.name, tenant, static, key, users, ports if users else frozenset())


def table(*holdings: Holding) -> dict[Address, Holding]:
    return {holding.address: holding for holding in holdings}


def plan(
    holdings: Mapping[Address, Holding] | None = None,
    *,
    tenant: str = "acme",
    lb: str = "web",
    ports: frozenset[tuple[int, str]] = HTTPS,
    current: Iterable[str] = (),
    pools: Iterable[PoolView] = POOLS,
    **request: object,
) -> AddressPlan:
    return plan_addresses(
        IPRequest.model_validate(request),
        tenant=tenant,
        load_balancer=lb,
        ports=ports,
        current=[ip(text) for text in current],
        pools=list(pools),
        holdings=holdings if holdings is not None else {},
    )


def refused(call: object, kind: str, *phrases: str) -> AllocationError:
    assert callable(call)
    with pytest.raises(AllocationError) as caught:
        call()
    assert caught.value.kind == kind, caught.value.message
    for phrase in phrases:
        assert phrase in caught.value.message
    return caught.value


def ips(*texts: str) -> tuple[Address, ...]:
    return tuple(ip(text) for text in texts)


# --- pools a tenant may use ---------------------------------------------------------------------


def test_a_tenant_uses_its_own_byoip_pools_first_then_platform_pools_by_name() -> None:
    acme2 = PoolView("a-acme-second", (net("203.0.113.64/28"),), owner="acme")
    assert [p.name for p in usable_pools([*POOLS, acme2], "acme")] == [
        "a-acme-second",
        "acme-byoip",
        "manual",
        "platform-v4",
        "platform-v6",
    ]


def test_another_tenants_byoip_pool_is_never_usable() -> None:
    assert BETA not in usable_pools(POOLS, "acme")
    assert ACME not in usable_pools(POOLS, "beta")


def test_pool_containing_finds_the_pool_of_an_address_or_none() -> None:
    assert pool_containing(POOLS, ip("203.0.113.5")) == ACME
    assert pool_containing(POOLS, ip("2001:db8:100::5")) == PLATFORM_V6
    assert pool_containing(POOLS, ip("10.0.0.1")) is None
    assert pool_containing(POOLS, ip("::ffff:203.0.113.5")) is None


# --- specific addresses -------------------------------------------------------------------------


def test_a_free_specific_address_becomes_a_new_dynamic_holding_with_the_requests_sharing_key() -> None:
    result = plan(addresses=["203.0.113.5", "198.51.100.20"], sharing_key="edge")
    assert result == AddressPlan(
        ips("203.0.113.5", "198.51.100.20"),
        new=(
            NewHolding(ip("203.0.113.5"), "acme-byoip", static=False, sharing_key="edge"),
            NewHolding(ip("198.51.100.20"), "platform-v4", static=False, sharing_key="edge"),
        ),
    )


@pytest.mark.parametrize("address", ["10.0.0.1", "192.0.2.5", "2001:db8:ffff::1"])
def test_an_address_outside_every_pool_the_tenant_may_use_is_forbidden_without_naming_the_owner(
    address: str,
) -> None:
    error = refused(
        lambda: plan(addresses=[address]),
        "forbidden",
        f"{address} is not in any pool tenant acme may use",
        "ask an admin for a BYOIP prefix",
        "`GET /v1/pools`",
    )
    assert "beta" not in error.message


def test_an_address_in_a_reserved_range_is_a_conflict() -> None:
    refused(
        lambda: plan(addresses=["198.51.100.5"]),
        "conflict",
        "198.51.100.5 is in reserved range 198.51.100.1-198.51.100.9 of pool platform-v4",
        "pick another address or omit addresses",
    )


@pytest.mark.parametrize(
    ("address", "what"),
    [
        ("203.0.113.0", "the network address of 203.0.113.0/28"),
        ("203.0.113.15", "the broadcast address of 203.0.113.0/28"),
        ("2001:db8:100::", "the network address of 2001:db8:100::/64"),
    ],
)
def test_network_and_broadcast_addresses_are_never_handed_out(address: str, what: str) -> None:
    refused(lambda: plan(addresses=[address]), "conflict", what, "never handed out")


@pytest.mark.parametrize(
    "network", ["198.18.0.0/31", "198.18.0.0/32", "2001:db8:7::/127", "2001:db8:7::/128"]
)
def test_point_to_point_and_host_prefixes_hand_out_every_address(network: str) -> None:
    pool = PoolView("tiny", (net(network),))
    every = [str(address) for address in net(network)]
    assert plan(addresses=every, pools=[pool]).addresses == ips(*every)


def test_an_address_held_by_another_tenant_is_a_conflict_that_names_nobody() -> None:
    holdings = table(held("198.51.100.20", "beta", lbs=["secret-lb"], key="edge"))
    error = refused(
        lambda: plan(holdings, addresses=["198.51.100.20"], sharing_key="edge"),
        "conflict",
        "198.51.100.20 is already allocated (to another tenant); pick another address or omit addresses",
    )
    assert "beta" not in error.message
    assert "secret-lb" not in error.message


def test_an_address_this_load_balancer_already_uses_is_kept() -> None:
    holdings = table(held("203.0.113.5", lbs=["web"]))
    assert plan(holdings, addresses=["203.0.113.5"], current=["203.0.113.5"]) == AddressPlan(
        ips("203.0.113.5")
    )


def test_a_reserved_address_no_load_balancer_uses_is_joined() -> None:
    holdings = table(held("203.0.113.5", static=True))
    assert plan(holdings, addresses=["203.0.113.5"]) == AddressPlan(
        ips("203.0.113.5"), join=ips("203.0.113.5")
    )


def test_sharing_with_the_same_key_and_distinct_ports_joins() -> None:
    holdings = table(held("203.0.113.5", lbs=["api"], ports=HTTP, key="edge"))
    result = plan(holdings, addresses=["203.0.113.5"], sharing_key="edge", ports=HTTPS)
    assert result == AddressPlan(ips("203.0.113.5"), join=ips("203.0.113.5"))


@pytest.mark.parametrize(
    ("their_key", "our_key", "phrases"),
    [
        (None, "edge", ["used by load balancer(s) api without a sharing key, so it cannot be shared"]),
        ("edge", None, ["under sharing key edge (this request has none)", "set ips.sharing_key: edge"]),
        ("edge", "other", ["under sharing key edge (not other)", "set ips.sharing_key: edge"]),
    ],
)
def test_sharing_an_address_needs_the_same_sharing_key(
    their_key: str | None, our_key: str | None, phrases: list[str]
) -> None:
    holdings = table(held("203.0.113.5", lbs=["api"], ports=HTTP, key=their_key))
    refused(
        lambda: plan(holdings, addresses=["203.0.113.5"], sharing_key=our_key, ports=HTTPS),
        "conflict",
        *phrases,
        "pick another address",
    )


def test_sharing_an_address_needs_distinct_ports() -> None:
    holdings = table(held("203.0.113.5", lbs=["api", "db"], ports=HTTP | HTTPS, key="edge"))
    refused(
        lambda: plan(holdings, addresses=["203.0.113.5"], sharing_key="edge", ports=HTTPS),
        "conflict",
        "shared by load balancer(s) api, db, which already listen on 443/tcp",
        "use other ports",
    )


def test_a_load_balancer_that_changes_its_sharing_key_cannot_keep_a_shared_address() -> None:
    holdings = table(held("203.0.113.5", lbs=["api", "web"], ports=HTTP | HTTPS, key="edge"))
    refused(
        lambda: plan(holdings, addresses=["203.0.113.5"], current=["203.0.113.5"], sharing_key="new"),
        "conflict",
        "under sharing key edge (not new)",
    )


def test_an_address_outside_the_named_pool_is_a_conflict() -> None:
    refused(
        lambda: plan(addresses=["198.51.100.20"], pool="acme-byoip"),
        "conflict",
        "198.51.100.20 is in pool platform-v4, not in pool acme-byoip that the field `ips.pool` names",
    )


def test_addresses_no_longer_asked_for_are_left() -> None:
    holdings = table(held("203.0.113.5", lbs=["web"]), held("203.0.113.6", lbs=["web"]))
    result = plan(holdings, addresses=["203.0.113.6", "203.0.113.7"], current=["203.0.113.5", "203.0.113.6"])
    assert result.addresses == ips("203.0.113.6", "203.0.113.7")
    assert result.leave == ips("203.0.113.5")
    assert [n.address for n in result.new] == [ip("203.0.113.7")]


# --- dynamic addresses --------------------------------------------------------------------------


def test_the_lowest_free_address_of_the_tenants_own_pool_comes_first() -> None:
    result = plan()
    assert result == AddressPlan(
        ips("203.0.113.1"), new=(NewHolding(ip("203.0.113.1"), "acme-byoip", False, None),)
    )


def test_a_tenant_without_byoip_gets_the_first_platform_address_after_the_reserved_range() -> None:
    assert plan(tenant="gamma").addresses == ips("198.51.100.10")


def test_held_addresses_and_reserved_ranges_are_skipped_together() -> None:
    pool = PoolView(
        "p",
        (net("198.18.0.0/24"),),
        reserved=((ip("198.18.0.4"), ip("198.18.0.6")), (ip("198.18.0.9"), ip("198.18.0.9"))),
    )
    holdings = table(*(held(f"198.18.0.{i}", lbs=["x"], pools=[pool]) for i in (1, 2, 3, 7, 8, 10)))
    assert plan(holdings, pools=[pool], count=3).addresses == ips("198.18.0.11", "198.18.0.12", "198.18.0.13")


def test_count_addresses_of_each_family_come_in_family_order() -> None:
    result = plan(tenant="gamma", families=["ipv6", "ipv4"], count=2)
    assert result.addresses == ips("2001:db8:100::1", "2001:db8:100::2", "198.51.100.10", "198.51.100.11")


def test_an_update_keeps_its_current_addresses_in_order_even_when_lower_ones_are_free() -> None:
    holdings = table(held("203.0.113.9", lbs=["web"]), held("203.0.113.4", lbs=["web"]))
    result = plan(holdings, current=["203.0.113.9", "203.0.113.4"], count=2)
    assert result == AddressPlan(ips("203.0.113.9", "203.0.113.4"))


def test_an_update_keeps_only_count_of_its_current_addresses() -> None:
    holdings = table(held("203.0.113.9", lbs=["web"]), held("203.0.113.4", lbs=["web"]))
    result = plan(holdings, current=["203.0.113.9", "203.0.113.4"], count=1)
    assert result == AddressPlan(ips("203.0.113.9"), leave=ips("203.0.113.4"))


def test_an_update_moves_a_vip_that_is_now_in_a_reserved_range() -> None:
    pool = PoolView(
        "acme-byoip",
        (net("203.0.113.0/28"),),
        reserved=((ip("203.0.113.9"), ip("203.0.113.9")),),
        owner="acme",
    )
    holdings = table(held("203.0.113.9", lbs=["web"]))
    result = plan(holdings, current=["203.0.113.9"], pools=[pool])
    assert result.addresses == ips("203.0.113.1")
    assert result.leave == ips("203.0.113.9")


def test_an_update_moves_a_vip_outside_a_newly_named_pool() -> None:
    holdings = table(held("203.0.113.9", lbs=["web"]))
    result = plan(holdings, current=["203.0.113.9"], pool="platform-v4")
    assert result.addresses == ips("198.51.100.10")
    assert result.leave == ips("203.0.113.9")


def test_an_update_moves_a_vip_whose_pool_the_tenant_may_no_longer_use() -> None:
    holdings = table(held("203.0.113.9", lbs=["web"]))
    taken_back = PoolView("acme-byoip", ACME.networks, owner="someone-else")
    result = plan(holdings, current=["203.0.113.9"], pools=[taken_back, PLATFORM_V4])
    assert result.addresses == ips("198.51.100.10")


def test_a_sharing_key_joins_addresses_the_tenant_shares_under_it_lowest_first() -> None:
    holdings = table(
        held("203.0.113.7", lbs=["api"], ports=HTTP, key="edge"),
        held("203.0.113.3", lbs=["db"], ports=HTTPS, key="edge"),  # same port: not joinable
        held("203.0.113.5", lbs=["dns"], ports=HTTP, key="edge"),
        held("203.0.113.2", lbs=["x"], ports=HTTP, key="other"),
        held("198.51.100.50", "beta", lbs=["web"], ports=HTTP, key="edge"),
    )
    result = plan(holdings, sharing_key="edge", count=2)
    assert result.addresses == ips("203.0.113.5", "203.0.113.7")
    assert result.join == ips("203.0.113.5", "203.0.113.7")
    assert result.new == ()


def test_a_sharing_key_with_fewer_addresses_than_asked_adds_fresh_ones_under_the_key() -> None:
    holdings = table(held("203.0.113.7", lbs=["api"], ports=HTTP, key="edge"))
    result = plan(holdings, sharing_key="edge", count=2)
    assert result.addresses == ips("203.0.113.7", "203.0.113.1")
    assert result.new == (NewHolding(ip("203.0.113.1"), "acme-byoip", static=False, sharing_key="edge"),)


def test_a_sharing_key_whose_address_already_listens_on_the_port_is_refused_not_given_another() -> None:
    holdings = table(held("203.0.113.3", lbs=["db", "api"], ports=HTTPS | HTTP, key="edge"))
    refused(
        lambda: plan(holdings, sharing_key="edge", ports=HTTPS),
        "conflict",
        "sharing key edge: 203.0.113.3 is shared by load balancer(s) api, db, which already listen on",
        "443/tcp",
        "use other ports",
    )


def test_a_sharing_key_that_needs_more_than_its_free_ports_allow_is_refused() -> None:
    holdings = table(
        held("203.0.113.7", lbs=["api"], ports=HTTP, key="edge"),
        held("203.0.113.3", lbs=["db"], ports=HTTPS, key="edge"),
    )
    refused(lambda: plan(holdings, sharing_key="edge", count=2), "conflict", "203.0.113.3", "443/tcp", "db")


def test_a_sharing_key_keeps_the_address_it_has_even_when_another_of_the_key_collides() -> None:
    holdings = table(
        held("203.0.113.3", lbs=["db"], ports=HTTPS, key="edge"),
        held("203.0.113.9", lbs=["web"], ports=HTTPS, key="edge"),
    )
    assert plan(holdings, sharing_key="edge", current=["203.0.113.9"]) == AddressPlan(ips("203.0.113.9"))


def test_a_sharing_key_never_joins_another_tenants_address() -> None:
    holdings = table(held("198.51.100.50", "beta", lbs=["web"], ports=HTTP, key="edge"))
    assert plan(holdings, tenant="gamma", sharing_key="edge").addresses == ips("198.51.100.10")


def test_a_sharing_key_joins_only_inside_the_named_pool() -> None:
    holdings = table(held("203.0.113.7", lbs=["api"], ports=HTTP, key="edge"))
    assert plan(holdings, sharing_key="edge", pool="platform-v4").addresses == ips("198.51.100.10")


def test_allocation_spills_into_the_next_pool_when_the_first_is_full() -> None:
    holdings = table(*(held(f"203.0.113.{i}", lbs=["x"]) for i in range(1, 14)))
    result = plan(holdings, count=3)
    assert result.addresses == ips("203.0.113.14", "198.51.100.10", "198.51.100.11")
    assert [n.pool for n in result.new] == ["acme-byoip", "platform-v4", "platform-v4"]


def test_a_pool_that_is_not_auto_assign_is_used_only_when_named() -> None:
    assert plan(tenant="gamma").addresses == ips("198.51.100.10")
    assert plan(tenant="gamma", pool="manual").addresses == ips("100.64.0.1")


@pytest.mark.parametrize("name", ["no-such-pool", "beta-byoip"])
def test_an_unknown_or_foreign_pool_name_is_forbidden_with_the_same_message(name: str) -> None:
    error = refused(
        lambda: plan(pool=name),
        "forbidden",
        f"{name} is not a pool tenant acme may use",
        "`GET /v1/pools`",
        "leave out the field `ips.pool`",
    )
    assert "beta" not in error.message.replace(name, "")


def test_exhaustion_names_the_pools_tried_the_family_and_how_many_were_missing() -> None:
    small = PoolView("acme-byoip", (net("203.0.113.0/30"),), owner="acme")
    platform = PoolView("platform-v4", (net("198.51.100.0/30"),))
    holdings = table(
        held("203.0.113.1", lbs=["x"], pools=[small]), held("198.51.100.1", lbs=["x"], pools=[platform])
    )
    refused(
        lambda: plan(holdings, pools=[platform, small], count=3),
        "exhausted",
        "no free IPv4 address in pools acme-byoip, platform-v4 (needed 3, found 2); add a prefix to a pool, "
        "release reserved IPs (`DELETE /v1/tenants/acme/ips/ADDR`) or ask for fewer (ips.count)",
    )


def test_no_auto_assign_pool_of_a_family_is_exhausted_saying_so() -> None:
    refused(
        lambda: plan(pools=[ACME, PLATFORM_V4], families=["ipv6"]),
        "exhausted",
        "tenant acme has no pool with IPv6 addresses to allocate from automatically",
        "drop ipv6 from ips.families",
    )


def test_a_named_pool_without_the_family_is_exhausted_saying_so() -> None:
    refused(
        lambda: plan(pool="acme-byoip", families=["ipv6"]),
        "exhausted",
        "pool acme-byoip has no IPv6 network",
    )


def test_a_holding_table_plans_exactly_like_a_plain_dict() -> None:
    holdings = table(
        held("203.0.113.1", lbs=["api"], ports=HTTP, key="edge"),
        held("203.0.113.2", lbs=["x"]),
        held("2001:db8:100::1", lbs=["x"]),
    )
    fast = plan(HoldingTable(holdings.values()), families=["ipv4", "ipv6"], count=2, sharing_key="edge")
    assert fast == plan(holdings, families=["ipv4", "ipv6"], count=2, sharing_key="edge")


def test_a_holding_table_refuses_an_address_listed_twice() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        HoldingTable([held("203.0.113.1"), held("203.0.113.1")])


# --- reservations and releases ------------------------------------------------------------------


def reserve(
    holdings: Mapping[Address, Holding] | None = None,
    *,
    address: str | None = None,
    pool: str | None = None,
    family: IPFamily = "ipv4",
    tenant: str = "acme",
) -> NewHolding | Address:
    return plan_reservation(
        tenant=tenant,
        address=None if address is None else ip(address),
        pool=pool,
        family=family,
        pools=list(POOLS),
        holdings=holdings or {},
    )


def test_reserving_a_free_address_makes_a_static_holding() -> None:
    assert reserve(address="203.0.113.5") == NewHolding(ip("203.0.113.5"), "acme-byoip", True, None)


def test_reserving_without_an_address_takes_the_lowest_free_one() -> None:
    holdings = table(held("203.0.113.1", lbs=["x"]))
    assert reserve(holdings) == NewHolding(ip("203.0.113.2"), "acme-byoip", True, None)
    assert reserve(pool="platform-v4") == NewHolding(ip("198.51.100.10"), "platform-v4", True, None)
    assert reserve(family="ipv6") == NewHolding(ip("2001:db8:100::1"), "platform-v6", True, None)
    assert reserve(pool="manual") == NewHolding(ip("100.64.0.1"), "manual", True, None)


def test_reserving_a_dynamic_address_of_the_tenant_promotes_it() -> None:
    assert reserve(table(held("203.0.113.5", lbs=["web"])), address="203.0.113.5") == ip("203.0.113.5")


def test_reserving_an_address_already_reserved_is_a_conflict() -> None:
    holdings = table(held("203.0.113.5", static=True))
    refused(lambda: reserve(holdings, address="203.0.113.5"), "conflict", "203.0.113.5 is already reserved")


def test_reserving_another_tenants_address_is_a_conflict_that_names_nobody() -> None:
    holdings = table(held("198.51.100.20", "beta", lbs=["secret"]))
    error = refused(
        lambda: reserve(holdings, address="198.51.100.20"),
        "conflict",
        "already allocated (to another tenant)",
    )
    assert "beta" not in error.message
    assert "secret" not in error.message


@pytest.mark.parametrize(
    ("address", "pool", "kind", "phrase"),
    [
        ("192.0.2.5", None, "forbidden", "is not in any pool tenant acme may use"),
        ("198.51.100.3", None, "conflict", "in reserved range 198.51.100.1-198.51.100.9"),
        ("203.0.113.15", None, "conflict", "the broadcast address of 203.0.113.0/28"),
        ("203.0.113.5", "platform-v4", "conflict", "not in pool platform-v4 that the field `pool` names"),
        (None, "beta-byoip", "forbidden", "beta-byoip is not a pool tenant acme may use"),
    ],
)
def test_reserving_follows_the_same_pool_rules(
    address: str | None, pool: str | None, kind: str, phrase: str
) -> None:
    refused(lambda: reserve(address=address, pool=pool), kind, phrase)


def test_reserving_in_a_full_pool_is_exhausted() -> None:
    holdings = table(*(held(f"100.64.0.{i}", lbs=["x"]) for i in range(1, 7)))
    refused(
        lambda: reserve(holdings, pool="manual"),
        "exhausted",
        "no free IPv4 address in pool manual (needed 1, found 0); "
        "add a prefix to a pool or release reserved IPs",
    )


def test_reserving_a_family_no_pool_has_is_exhausted_saying_so() -> None:
    refused(
        lambda: reserve(pool="manual", family="ipv6"),
        "exhausted",
        "pool manual has no IPv6 network; set the field `pool` to a pool with IPv6 addresses, or reserve "
        "another family",
    )


def test_reserving_a_family_without_any_pool_of_it_says_which_field_to_set() -> None:
    """Not "name a pool in pool": the field is named as a field."""
    refused(
        lambda: plan_reservation(
            tenant="acme", address=None, pool=None, family="ipv6", pools=[PLATFORM_V4], holdings={}
        ),
        "exhausted",
        "tenant acme has no pool with IPv6 addresses to allocate from automatically; ask an admin for "
        "one, set the field `pool` to a pool with IPv6 addresses, or reserve another family",
    )


def test_releasing_a_dynamic_address_is_a_conflict() -> None:
    refused(
        lambda: check_release(held("203.0.113.5", lbs=["web", "api"])),
        "conflict",
        "203.0.113.5 is a dynamic address of load balancer(s) api, web; it is freed when they are deleted",
    )


def test_releasing_a_reserved_address_still_in_use_is_a_conflict() -> None:
    refused(
        lambda: check_release(held("203.0.113.5", lbs=["web", "api"], static=True)),
        "conflict",
        "delete load balancers api, web first, or keep the reservation",
    )


def test_releasing_an_unused_reserved_address_is_allowed() -> None:
    check_release(held("203.0.113.5", static=True))


# --- pool definitions and capacity --------------------------------------------------------------


def test_a_pool_overlapping_another_pool_is_a_conflict_naming_it() -> None:
    new = PoolView("new", (net("198.51.100.128/25"),))
    refused(
        lambda: check_new_pool(new, POOLS),
        "conflict",
        "network 198.51.100.128/25 of pool new overlaps 198.51.100.0/24 of pool platform-v4",
    )


def test_a_pool_whose_networks_overlap_each_other_is_a_conflict() -> None:
    new = PoolView("new", (net("10.0.0.0/24"), net("10.0.0.128/25")))
    refused(
        lambda: check_new_pool(new, POOLS), "conflict", "networks 10.0.0.0/24 and 10.0.0.128/25 of pool new"
    )


def test_the_previous_version_of_a_pool_is_not_an_overlap() -> None:
    check_new_pool(PoolView("platform-v4", (net("198.51.100.0/23"),)), POOLS)


def test_a_pool_with_ipv4_and_ipv6_networks_and_valid_reserved_ranges_is_fine() -> None:
    check_new_pool(
        PoolView(
            "dual",
            (net("10.0.0.0/24"), net("2001:db8:9::/64")),
            reserved=((ip("10.0.0.1"), ip("10.0.0.9")), (ip("2001:db8:9::1"), ip("2001:db8:9::1"))),
        ),
        POOLS,
    )


@pytest.mark.parametrize(
    ("first", "last", "phrase"),
    [
        ("10.0.1.1", "10.0.1.2", "is not inside one network of the pool (10.0.0.0/24)"),
        ("10.0.0.200", "10.0.1.2", "is not inside one network"),
        ("10.0.0.9", "10.0.0.1", "ends before it starts; write it as 10.0.0.1-10.0.0.9"),
        ("10.0.0.1", "2001:db8::1", "mixes IPv4 and IPv6"),
    ],
)
def test_a_malformed_reserved_range_is_an_invalid_pool(first: str, last: str, phrase: str) -> None:
    new = PoolView("new", (net("10.0.0.0/24"),), reserved=((ip(first), ip(last)),))
    with pytest.raises(InvalidPoolError) as caught:
        check_new_pool(new, POOLS)
    assert phrase in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_capacity_excludes_reserved_and_skipped_addresses_once_each() -> None:
    pool = PoolView(
        "p",
        (net("10.0.0.0/28"), net("10.0.1.0/31"), net("2001:db8:9::/124")),
        reserved=(
            (ip("10.0.0.0"), ip("10.0.0.3")),
            (ip("10.0.0.2"), ip("10.0.0.4")),
            (ip("2001:db8:9::f"),) * 2,
        ),
    )
    # /28: 16 - .0-.4 (5, network included) - .15 (broadcast) = 10; /31: 2; /124: 16 - ::0 - ::f = 14
    assert pool_capacity(pool) == {"ipv4": 12, "ipv6": 14}
    assert pool_capacity(PoolView("empty", ())) == {}


# --- the worst case for the search -------------------------------------------------------------


def test_the_lowest_free_address_after_100000_held_ones_and_a_reserved_range_is_found() -> None:
    # Its speed (and a naive address walk's, for reference) is in bench/ipam_cost.py.
    network = net("2001:db8:100::/48")
    base = int(network.network_address)
    reserved = (ipaddress.IPv6Address(base + 100_001), ipaddress.IPv6Address(base + 100_010))
    pool = PoolView("big", (network,), reserved=(reserved,))
    holdings = HoldingTable(
        Holding(ipaddress.IPv6Address(base + i), "big", "acme", False, None, frozenset({f"lb{i}"}), HTTPS)
        for i in range(1, 100_001)  # the worst case: every address from the start of the pool is held
    )
    request = IPRequest(families=("ipv6",), count=1)
    result = plan_addresses(
        request,
        tenant="acme",
        load_balancer="new",
        ports=HTTPS,
        current=(),
        pools=[pool],
        holdings=holdings,
    )
    assert result.addresses == (ipaddress.IPv6Address(base + 100_011),)
