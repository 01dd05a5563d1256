"""SNI-routed sharing of one port: the pure rule (ipam/sni.py) and the planner that applies it.

The property test states what the rule is for: any group of claims admitted one by one (each
checked against those already admitted) is one the edge can route without ambiguity. Every server
name reaches one claim, or, within one tenant, one exact name beside its own wildcard; and a port
has at most one default.
"""

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycastlb.control.ipam import (
    Address,
    AddressPlan,
    AllocationError,
    Holding,
    PoolView,
    PortClaim,
    clash_text,
    first_clash,
    plan_addresses,
)
from anycastlb.model.desired import IPRequest
from anycastlb.model.hostnames import hostname_matches


def claim(lb: str, *names: str, tenant: str = "acme", port: int = 443, default: bool = False) -> PortClaim:
    return PortClaim(tenant, lb, port, "tcp", frozenset(names), default)


# -- the rule ---------------------------------------------------------------------------------------


def test_different_hostnames_on_one_port_share_it() -> None:
    assert first_clash([claim("shop", "shop.a.com")], [claim("blog", "blog.a.com")]) is None


def test_the_same_hostname_twice_clashes_and_names_it() -> None:
    found = first_clash([claim("shop", "x.a.com", "shop.a.com")], [claim("blog", "shop.a.com")])
    assert found is not None and found.reason == "hostname" and found.hostname == "shop.a.com"


def test_a_listener_without_hostnames_shares_its_port_with_nobody() -> None:
    for mine, theirs in (
        (claim("shop"), claim("blog", "b.a.com")),
        (claim("shop", "s.a.com"), claim("blog")),
    ):
        found = first_clash([mine], [theirs])
        assert found is not None and found.reason == "port"


def test_two_defaults_on_one_port_clash() -> None:
    found = first_clash([claim("shop", "s.a.com", default=True)], [claim("blog", "b.a.com", default=True)])
    assert found is not None and found.reason == "default"
    assert first_clash([claim("shop", "s.a.com", default=True)], [claim("blog", "b.a.com")]) is None


def test_other_ports_never_clash() -> None:
    assert first_clash([claim("shop", port=80)], [claim("blog", port=443)]) is None


def test_an_exact_name_under_the_same_tenants_wildcard_does_not_clash() -> None:
    assert first_clash([claim("shop", "shop.a.com")], [claim("all", "*.a.com")]) is None


def test_an_exact_name_under_another_tenants_wildcard_clashes_both_ways() -> None:
    mine, theirs = claim("shop", "shop.a.com", tenant="beta"), claim("all", "*.a.com")
    for first, second in ((mine, theirs), (theirs, mine)):
        found = first_clash([first], [second])
        assert found is not None and found.reason == "hostname"


def test_the_askers_own_old_claims_are_ignored() -> None:
    assert first_clash([claim("shop", "shop.a.com")], [claim("shop", "shop.a.com")]) is None


def test_a_clash_names_the_other_load_balancer_only_within_the_tenant() -> None:
    own = first_clash([claim("shop", "s.a.com")], [claim("blog", "s.a.com")])
    assert own is not None
    assert "load balancer blog" in clash_text(own, "198.51.100.10")
    foreign = first_clash([claim("shop", "s.a.com", tenant="beta")], [claim("blog", "s.a.com")])
    assert foreign is not None
    text = clash_text(foreign, "198.51.100.10")
    assert "blog" not in text and "acme" not in text
    assert "hostname s.a.com on port 443/tcp is already taken on 198.51.100.10 (by another tenant)" in text


_LABELS = st.sampled_from(["a", "b", "shop", "*"])
_NAMES = st.builds(
    lambda head, parent: f"{head}.{parent}", _LABELS, st.sampled_from(["x.com", "y.com", "a.x.com"])
)
_CLAIMS = st.builds(
    lambda lb, tenant, names, default: PortClaim(tenant, f"lb{lb}", 443, "tcp", frozenset(names), default),
    st.integers(0, 5),
    st.sampled_from(["acme", "beta"]),
    st.frozensets(_NAMES, max_size=3),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CLAIMS, max_size=8))
def test_claims_admitted_one_by_one_are_routable_without_ambiguity(candidates: list[PortClaim]) -> None:
    admitted: list[PortClaim] = []
    for candidate in candidates:
        if candidate.owner in {item.owner for item in admitted}:
            continue
        if first_clash([candidate], admitted) is None:
            assert all(first_clash([item], [candidate]) is None for item in admitted)  # symmetric
            admitted.append(candidate)
    assert sum(item.sni_default for item in admitted) <= 1
    if len(admitted) > 1:
        assert all(item.hostnames for item in admitted)
    servers = {name.replace("*", "w") for item in admitted for name in item.hostnames}
    for server in servers:
        matching = [item for item in admitted if any(hostname_matches(p, server) for p in item.hostnames)]
        exact = [item for item in matching if server in item.hostnames]
        assert len(matching) <= 1 or (len({item.tenant for item in matching}) == 1 and len(exact) == 1)


# -- the planner ------------------------------------------------------------------------------------


def ip(text: str) -> Address:
    return ipaddress.ip_address(text)


SHARED = PoolView("shared", (ipaddress.ip_network("198.51.100.0/28"),), auto_assign=False, sni_sharing="pool")
PLATFORM = PoolView("platform", (ipaddress.ip_network("203.0.113.0/28"),))
POOLS = (PLATFORM, SHARED)
HTTPS = frozenset({(443, "tcp")})


def used(address: str, pool: PoolView, *claims: PortClaim, key: str = "web") -> Holding:
    tenant = claims[0].tenant
    return Holding(
        ip(address),
        pool.name,
        tenant,
        False,
        key,
        frozenset(item.load_balancer for item in claims if item.tenant == tenant),
        frozenset((item.port, item.protocol) for item in claims),
        tuple(claims),
    )


def plan(
    holdings: Iterable[Holding],
    *names: str,
    tenant: str = "acme",
    lb: str = "new",
    default: bool = False,
    pool: str | None = None,
    addresses: list[str] | None = None,
) -> AddressPlan:
    request: dict[str, object] = {"sharing_key": "web"}
    if pool is not None:
        request["pool"] = pool
    if addresses is not None:
        request["addresses"] = addresses
    table: Mapping[Address, Holding] = {holding.address: holding for holding in holdings}
    mine = PortClaim(tenant, lb, 443, "tcp", frozenset(names), default)
    return plan_addresses(
        IPRequest.model_validate(request),
        tenant=tenant,
        load_balancer=lb,
        ports=HTTPS,
        current=[],
        pools=list(POOLS),
        holdings=table,
        claims=[mine] if names else [],
    )


def refused(
    holdings: Iterable[Holding],
    *names: str,
    default: bool = False,
    pool: str | None = None,
    addresses: list[str] | None = None,
) -> str:
    with pytest.raises(AllocationError) as caught:
        plan(holdings, *names, default=default, pool=pool, addresses=addresses)
    assert caught.value.kind == "conflict"
    return caught.value.message


def test_a_load_balancer_with_other_hostnames_joins_the_keys_address_on_the_same_port() -> None:
    result = plan([used("203.0.113.1", PLATFORM, claim("shop", "shop.a.com"))], "blog.a.com")
    assert result.addresses == (ip("203.0.113.1"),) and result.join == (ip("203.0.113.1"),)


def test_a_clashing_hostname_is_refused_naming_the_same_tenants_holder() -> None:
    message = refused([used("203.0.113.1", PLATFORM, claim("shop", "shop.a.com"))], "shop.a.com")
    assert "sharing key web: 203.0.113.1 is shared with load balancer shop" in message
    assert "hostname shop.a.com on 443/tcp" in message


def test_without_hostnames_the_port_is_refused_with_the_way_to_share_it() -> None:
    message = refused([used("203.0.113.1", PLATFORM, claim("shop", "shop.a.com"))])
    assert "name this load balancer's hostnames on 443/tcp" in message


def test_another_tenants_key_is_not_joined_on_a_tenant_only_pool() -> None:
    holding = used("203.0.113.1", PLATFORM, claim("shop", "shop.a.com", tenant="beta"))
    result = plan([holding], "blog.a.com", pool="platform")
    assert result.addresses == (ip("203.0.113.2"),)


def test_another_tenants_address_is_joined_on_a_pool_that_allows_it_when_named() -> None:
    holding = used("198.51.100.1", SHARED, claim("shop", "shop.b.com", tenant="beta"))
    assert plan([holding], "blog.a.com", pool="shared").addresses == (ip("198.51.100.1"),)


def test_another_tenants_address_is_not_joined_without_naming_the_pool() -> None:
    holding = used("198.51.100.1", SHARED, claim("shop", "shop.b.com", tenant="beta"))
    assert plan([holding], "blog.a.com").addresses == (ip("203.0.113.1"),)


def test_a_cross_tenant_clash_names_no_load_balancer_and_no_tenant() -> None:
    holding = used("198.51.100.1", SHARED, claim("secret-shop", "*.b.com", tenant="beta"))
    message = refused([holding], "pay.b.com", pool="shared")
    assert (
        "hostname pay.b.com on port 443/tcp is already taken on 198.51.100.1 (by another tenant)" in message
    )
    assert "secret-shop" not in message and "beta" not in message


def test_a_specific_address_of_another_tenant_needs_the_pool_named() -> None:
    holding = used("198.51.100.1", SHARED, claim("shop", "shop.b.com", tenant="beta"))
    message = refused([holding], "blog.a.com", addresses=["198.51.100.1"])
    assert "already allocated (to another tenant)" in message
    result = plan([holding], "blog.a.com", addresses=["198.51.100.1"], pool="shared")
    assert result.join == (ip("198.51.100.1"),) and result.new == ()


def test_the_second_default_is_refused() -> None:
    holding = used("203.0.113.1", PLATFORM, claim("shop", "shop.a.com", default=True))
    message = refused([holding], "blog.a.com", default=True)
    assert "already the SNI default on 443/tcp" in message


def test_an_update_into_a_clash_is_refused_rather_than_moved_to_a_fresh_address() -> None:
    holding = used("203.0.113.1", PLATFORM, claim("shop", "shop.a.com"), claim("new", "blog.a.com"))
    with pytest.raises(AllocationError) as caught:
        plan_addresses(
            IPRequest(sharing_key="web"),
            tenant="acme",
            load_balancer="new",
            ports=HTTPS,
            current=[ip("203.0.113.1")],
            pools=list(POOLS),
            holdings={holding.address: holding},
            claims=[claim("new", "blog.a.com", "shop.a.com")],
        )
    assert caught.value.kind == "conflict"
    assert "load balancer shop, which already serves hostname shop.a.com" in caught.value.message


def test_another_tenants_reserved_address_is_never_shared() -> None:
    holding = dataclasses.replace(
        used("198.51.100.1", SHARED, claim("shop", "shop.b.com", tenant="beta")), static=True
    )
    assert plan([holding], "blog.a.com", pool="shared").addresses == (ip("198.51.100.2"),)
