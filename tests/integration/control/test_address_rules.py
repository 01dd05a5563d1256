"""Issue 11, defect 1, through the real routes: one address has one spelling everywhere, scope ids
and stray characters are refused, and no pool is "everything" (each test runs on SQLite and
PostgreSQL, whose UNIQUE column must see every clash)."""

from urllib.parse import quote

import pytest

from tests.support.control_plane import ControlApi, spec

pytestmark = pytest.mark.integration


def _setup(api: ControlApi) -> tuple[str, str]:
    api.pool("platform-v4", "203.0.113.0/29")
    api.pool("platform-v6", "2001:db8::/120")
    return api.tenant("acme"), api.tenant("globex")


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("::1%1", "scope id"),
        ("2001:db8::1%eth0", "scope id"),
        ("2001:db8::1%eth0\nHost: evil", "scope id"),
        ("2001:db8::1\n", "whitespace"),
        (" 2001:db8::1", "whitespace"),
        ("2001:db8::1\x00", "control character"),
        ("::ffff:203.0.113.5", "write the IPv4 address 203.0.113.5"),
        ("203.0.113.05", "not an IPv4 or IPv6 address"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("ff02::1", "multicast"),
    ],
)
def test_reserving_an_address_spelled_with_a_scope_or_stray_text_is_refused(
    api: ControlApi, address: str, words: str
) -> None:
    acme, _ = _setup(api)
    response = api.call("POST", "/v1/tenants/acme/ips/reserve", acme, json={"address": address})
    assert response.status_code == 422, response.text
    assert words in response.text
    assert api.ok("GET", "/v1/tenants/acme/ips", acme) == []


def test_a_load_balancer_asking_for_a_scoped_address_is_refused(api: ControlApi) -> None:
    acme, _ = _setup(api)
    body = spec("web", addresses=["2001:db8::1%1"], families=["ipv6"])
    response = api.call("POST", "/v1/tenants/acme/loadbalancers", acme, json=body)
    assert response.status_code == 422, response.text
    assert "scope id" in response.text


@pytest.mark.parametrize("other", ["2001:db8::0001", "2001:DB8::1", "2001:0db8:0:0:0:0:0:1", "2001:db8:0::1"])
def test_a_second_tenant_cannot_take_an_address_by_another_spelling(api: ControlApi, other: str) -> None:
    acme, globex = _setup(api)
    held = api.ok("POST", "/v1/tenants/acme/ips/reserve", acme, json={"address": "2001:db8::1"})
    assert held["address"] == "2001:db8::1"
    reserve = api.call("POST", "/v1/tenants/globex/ips/reserve", globex, json={"address": other})
    assert reserve.status_code in (403, 409), reserve.text
    assert "acme" in reserve.text or "another tenant" in reserve.text or "reserved" in reserve.text
    body = spec("steal", addresses=[other], families=["ipv6"])
    create = api.call("POST", "/v1/tenants/globex/loadbalancers", globex, json=body)
    assert create.status_code in (403, 409), create.text
    assert api.ok("GET", "/v1/tenants/globex/ips", globex) == []
    assert [row["address"] for row in api.ok("GET", "/v1/ips")] == ["2001:db8::1"]


def test_an_address_is_stored_and_released_in_its_canonical_spelling(api: ControlApi) -> None:
    acme, _ = _setup(api)
    held = api.ok("POST", "/v1/tenants/acme/ips/reserve", acme, json={"address": "2001:0DB8::0002"})
    assert held["address"] == "2001:db8::2"
    again = api.call("POST", "/v1/tenants/acme/ips/reserve", acme, json={"address": "2001:db8::2"})
    assert again.status_code == 409, again.text  # the same address, whatever the spelling
    assert "already reserved by tenant acme" in again.text
    assert [row["address"] for row in api.ok("GET", "/v1/ips")] == ["2001:db8::2"]
    api.ok("DELETE", f"/v1/tenants/acme/ips/{quote('2001:DB8:0::2')}", acme)
    assert api.ok("GET", "/v1/ips") == []


def test_releasing_a_scoped_path_parameter_is_refused_not_matched(api: ControlApi) -> None:
    acme, _ = _setup(api)
    api.ok("POST", "/v1/tenants/acme/ips/reserve", acme, json={"address": "2001:db8::3"})
    response = api.call("DELETE", f"/v1/tenants/acme/ips/{quote('2001:db8::3%1')}", acme)
    assert response.status_code == 422, response.text
    assert "scope id" in response.text
    assert [row["address"] for row in api.ok("GET", "/v1/ips")] == ["2001:db8::3"]


@pytest.mark.parametrize(
    ("network", "words"),
    [
        ("2001:db8:7::%1/64", "scope id"),
        ("2001:db8:7::%1\n/64", "scope id"),
        ("0.0.0.0/0", "/0"),
        ("::/0", "/0"),
        ("224.0.0.0/24", "multicast"),
        ("ff02::/16", "multicast"),
        ("0.0.0.0/8", "unspecified"),
        ("255.255.255.0/24", "broadcast"),
        ("::ffff:203.0.113.0/120", "IPv4-mapped"),
        (" 198.51.100.0/24", "whitespace"),
        ("198.51.100.0/024", "decimal prefix length"),
        ("198.51.100.0/255.255.255.0", "decimal prefix length"),
        ("198.51.100.1/24", "host bits"),
    ],
)
def test_a_pool_with_a_scoped_everything_or_multicast_network_is_refused(
    api: ControlApi, network: str, words: str
) -> None:
    response = api.call("POST", "/v1/pools", json={"name": "bad", "networks": [network]})
    assert response.status_code == 422, response.text
    assert words in response.text
    assert api.ok("GET", "/v1/pools") == []


def test_pool_networks_and_reserved_ranges_are_stored_canonically(api: ControlApi) -> None:
    pool = api.pool("v6", "2001:0DB8:0:0::/64", reserved=["2001:db8::0010-2001:DB8::20"])
    assert pool["networks"] == ["2001:db8::/64"]
    assert pool["reserved"] == ["2001:db8::10-2001:db8::20"]
    same = api.call("POST", "/v1/pools", json={"name": "again", "networks": ["2001:db8:0::/64"]})
    assert same.status_code == 409, same.text  # the overlap is seen whatever the spelling
