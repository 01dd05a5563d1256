"""A PoP's desired state becomes edge listeners with stable, readable names; what the edge cannot
serve is skipped with a reason, never failing the whole state."""

import ipaddress
import re
from typing import Any

import pytest

from anycastlb.edge.desired_listeners import (
    ListenerOrigin,
    Skipped,
    edge_config_for,
    listener_origins,
    listeners_for,
)
from anycastlb.edge.vips import vip_listeners
from anycastlb.model.base import check_name
from anycastlb.model.bgp import BgpConfig
from anycastlb.model.config import ConfigError, EdgeConfig, Listener, ListenerSettings
from anycastlb.model.desired import DesiredLoadBalancer, PopDesiredState

BACKENDS = [{"address": "10.0.0.11", "port": 30443}, {"address": "10.0.0.12", "port": 30443, "weight": 2}]
BGP = {"local_as": 65001, "router_id": "10.20.0.11", "peers": [{"address": "10.20.0.1", "remote_as": 65000}]}


def lb(
    name: str = "web",
    tenant: str = "acme",
    vips: tuple[str, ...] = ("203.0.113.10",),
    ports: tuple[int | tuple[int, str], ...] = (443,),
    lb_id: str | None = None,
    **settings: Any,
) -> DesiredLoadBalancer:
    listeners = []
    for entry in ports:
        port, protocol = entry if isinstance(entry, tuple) else (entry, "tcp")
        listeners.append({"port": port, "protocol": protocol, "backends": BACKENDS, **settings})
    return DesiredLoadBalancer.model_validate(
        {
            "id": lb_id or f"lb-{tenant}-{name}",
            "tenant": tenant,
            "name": name,
            "version": 1,
            "vips": vips,
            "listeners": listeners,
        }
    )


def state(*load_balancers: DesiredLoadBalancer, version: int = 7, pop: str = "fra") -> PopDesiredState:
    return PopDesiredState(pop=pop, version=version, load_balancers=load_balancers)


def names(desired: PopDesiredState) -> list[str]:
    return [listener.name for listener in listeners_for(desired, None)[0]]


@pytest.mark.parametrize(
    ("load_balancer", "expected"),
    [
        (lb(), ["acme-web-443"]),
        (lb(ports=(80, 443)), ["acme-web-80", "acme-web-443"]),
        (
            lb(vips=("203.0.113.10", "2001:db8::10"), ports=(80, 443)),
            ["acme-web-80", "acme-web-443", "acme-web-80-1", "acme-web-443-1"],
        ),
        (lb(tenant="Acme_Corp", name="shop.front"), ["acme-corp-shop-front-443"]),
        (lb(tenant="--x--", name="a__b"), ["x-a-b-443"]),
    ],
    ids=["one-vip", "two-ports", "two-vips", "odd-characters", "only-dashes"],
)
def test_listener_names_read_as_tenant_lb_port(
    load_balancer: DesiredLoadBalancer, expected: list[str]
) -> None:
    assert names(state(load_balancer)) == expected


def test_every_name_passes_the_edge_name_rule() -> None:
    desired = state(
        lb(tenant="Acme_Corp", name="shop.front", vips=("203.0.113.10", "203.0.113.11"), ports=(80, 443)),
        lb(tenant="t" * 80, name="n" * 80),
        lb(tenant="a-b", name="c", vips=("203.0.113.20",)),
        lb(tenant="a", name="b-c", vips=("203.0.113.21",)),
    )

    for name in names(desired):
        assert check_name(name, "listener name") == name


def test_names_are_stable_when_other_load_balancers_come_and_go() -> None:
    web = lb()
    before = names(state(web, version=1))

    after = names(state(lb(name="api", vips=("203.0.113.11",)), web, version=2))

    assert before == ["acme-web-443"]
    assert after == ["acme-api-443", "acme-web-443"]


def test_a_long_name_is_shortened_with_a_stable_hash_of_the_listener() -> None:
    long = lb(tenant="a-tenant-with-a-rather-long-name", name="and-a-load-balancer-with-a-long-name-too")

    first = names(state(long, version=1))[0]
    again = names(state(long, version=2))[0]
    other_lb = names(state(long.model_copy(update={"id": "another-id"})))[0]

    assert len(first) == 63
    assert re.fullmatch(r"a-tenant-with-a-rather-long-name-and-a-load-balanc-[0-9a-f]{8}-443", first)
    assert again == first
    assert other_lb != first  # another load balancer with the same names hashes differently


def test_two_load_balancers_whose_names_would_collide_both_get_a_hash() -> None:
    desired = state(
        lb(tenant="a-b", name="c", vips=("203.0.113.20",), lb_id="lb-1"),
        lb(tenant="a", name="b-c", vips=("203.0.113.21",), lb_id="lb-2"),
    )

    first, second = names(desired)

    assert first != second
    assert re.fullmatch(r"a-b-c-[0-9a-f]{8}-443", first) and re.fullmatch(r"a-b-c-[0-9a-f]{8}-443", second)


def test_settings_are_copied_field_for_field_and_the_vip_is_the_address() -> None:
    web = lb(proxy_protocol="v1", idle_timeout="120s", retries=4, max_connections=10)

    (listener,), skipped = listeners_for(state(web), None)

    assert skipped == ()
    assert listener.address == ipaddress.ip_address("203.0.113.10")
    copied = listener.model_dump(exclude={"name", "address"})
    assert copied == web.listeners[0].model_dump()
    assert set(copied) == set(ListenerSettings.model_fields)


def test_udp_listeners_are_skipped_with_a_reason_and_the_rest_is_served() -> None:
    dns = lb(name="dns", ports=((53, "udp"), (53, "tcp")))

    listeners, skipped = listeners_for(state(dns), None)

    assert [(listener.name, listener.protocol) for listener in listeners] == [("acme-dns-53", "tcp")]
    assert skipped == (
        Skipped(
            "lb-acme-dns", "203.0.113.10", 53, "udp", "udp listeners are not supported by this data plane yet"
        ),
    )


def test_an_endpoint_claimed_twice_is_served_for_the_first_load_balancer_only() -> None:
    first = lb(name="one")
    second = lb(name="two", ports=(443, 8443))

    listeners, skipped = listeners_for(state(first, second), None)

    assert [listener.name for listener in listeners] == ["acme-one-443", "acme-two-8443"]
    assert len(skipped) == 1
    assert skipped[0].load_balancer_id == "lb-acme-two"
    assert skipped[0].reason == "203.0.113.10 port 443/tcp is served by load balancer lb-acme-one"


def test_origins_name_the_load_balancer_and_endpoint_of_each_listener() -> None:
    desired = state(lb(vips=("203.0.113.10", "2001:db8::10")))

    assert listener_origins(desired, None) == {
        "acme-web-443": ListenerOrigin("lb-acme-web", "203.0.113.10", 443, "tcp"),
        "acme-web-443-1": ListenerOrigin("lb-acme-web", "2001:db8::10", 443, "tcp"),
    }


def test_edge_config_keeps_the_base_and_takes_the_listeners_from_the_state() -> None:
    base = EdgeConfig.model_validate(
        {"pop": "fra", "workers": 3, "drain_timeout": "5s", "relay": "copy", "metrics": None, "bgp": BGP}
    )

    config = edge_config_for(base, state(lb(vips=("203.0.113.10", "2001:db8::10"))))

    assert (config.workers, config.drain_timeout, config.relay, config.metrics) == (3, 5.0, "copy", None)
    assert config.bgp == base.bgp
    assert [listener.name for listener in config.listeners] == ["acme-web-443", "acme-web-443-1"]


def test_the_vips_the_bgp_block_announces_are_the_states_vips() -> None:
    base = EdgeConfig.model_validate({"pop": "fra", "bgp": BGP})
    desired = state(
        lb(vips=("203.0.113.10", "2001:db8::10"), ports=(80, 443)), lb(name="api", vips=("203.0.113.11",))
    )

    config = edge_config_for(base, desired)

    assert {str(prefix) for prefix in vip_listeners(config)} == {
        "203.0.113.10/32",
        "2001:db8::10/128",
        "203.0.113.11/32",
    }


def test_per_vip_bgp_attributes_apply_to_the_vips_the_state_has() -> None:
    bgp = {**BGP, "vips": [{"prefix": "203.0.113.10/32", "med": 50}, {"prefix": "198.51.100.1/32", "med": 9}]}
    # base.yaml's loader keeps overrides for VIPs no listener has yet (EdgeConfig alone refuses them)
    base = EdgeConfig(pop="fra").model_copy(update={"bgp": BgpConfig.model_validate(bgp)})

    config = edge_config_for(base, state(lb()))

    assert config.bgp is not None
    assert [(vip.prefix, vip.med) for vip in config.bgp.vips] == [("203.0.113.10/32", 50)]


def test_a_base_with_listeners_is_refused_in_control_mode() -> None:
    listener = Listener(name="web", address=ipaddress.ip_address("127.0.0.1"), port=8080)
    base = EdgeConfig(pop="fra", listeners=(listener,))

    with pytest.raises(ConfigError, match=r"remove listeners: from base.yaml"):
        edge_config_for(base, state(lb()))


def test_a_state_for_another_pop_is_refused() -> None:
    with pytest.raises(ConfigError, match="for PoP 'par' but this edge is PoP 'fra'"):
        edge_config_for(EdgeConfig(pop="fra"), state(lb(), pop="par"))


def test_an_empty_state_is_an_edge_with_no_listeners() -> None:
    config = edge_config_for(EdgeConfig(pop="fra"), state())

    assert config.listeners == ()


def test_adding_a_second_vip_renames_no_listener() -> None:
    one = names(PopDesiredState(pop="fra", version=1, load_balancers=(lb(vips=("203.0.113.10",)),)))
    two = names(
        PopDesiredState(pop="fra", version=2, load_balancers=(lb(vips=("203.0.113.10", "2001:db8::10")),))
    )
    assert one == ["acme-web-443"]
    assert two[0] == one[0]


def test_load_balancers_naming_disjoint_hostnames_share_a_vip_port_as_listeners_of_their_own() -> None:
    shop = lb(name="shop", hostnames=["shop.example.com"], sni_default=True)
    blog = lb(name="blog", tenant="other", hostnames=["blog.example.com", "*.blog.example.com"])

    listeners, skipped = listeners_for(state(shop, blog), None)

    assert skipped == ()
    assert [(listener.name, listener.endpoint) for listener in listeners] == [
        ("acme-shop-443", ("203.0.113.10", 443, "tcp")),
        ("other-blog-443", ("203.0.113.10", 443, "tcp")),
    ]
    EdgeConfig.model_validate({"pop": "fra", "listeners": listeners})  # the edge's own rule agrees


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (lb(name="two"), "203.0.113.10 port 443/tcp is served by load balancer lb-acme-one"),
        (
            lb(name="two", hostnames=["Shop.example.com"]),
            "hostname 'shop.example.com' on 203.0.113.10 port 443/tcp is served by load balancer lb-acme-one",
        ),
        (
            lb(name="two", hostnames=["two.example.com"], sni_default=True),
            "load balancer lb-acme-one is already the sni_default of 203.0.113.10 port 443/tcp",
        ),
    ],
    ids=["no-hostnames", "same-hostname", "second-default"],
)
def test_a_sharer_that_clashes_is_skipped_and_the_first_claim_keeps_the_port(
    second: DesiredLoadBalancer, reason: str
) -> None:
    first = lb(name="one", hostnames=["shop.example.com"], sni_default=True)

    listeners, skipped = listeners_for(state(first, second), None)

    assert [listener.name for listener in listeners] == ["acme-one-443"]
    assert [item.reason for item in skipped] == [reason]
