"""Issue 15 part 3 through the real routes, on SQLite and PostgreSQL: load balancers share one
VIP and port when SNI can route them apart; a clash is a 409 that names the other holder only when
it is the same tenant; cross-tenant sharing only on a pool whose admin allows it."""

from typing import Any

import pytest

from tests.support.control_plane import ControlApi, listener, spec

pytestmark = pytest.mark.integration

LBS = "/v1/tenants/{}/loadbalancers"


def https(name: str, *hostnames: str, default: bool = False, **ips: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {"hostnames": list(hostnames)} if hostnames else {}
    if default:
        extra["sni_default"] = True
    return spec(name, listeners=[listener(443, **extra)], sharing_key="web", **ips)


def create(api: ControlApi, tenant: str, token: str, body: dict[str, Any]) -> Any:
    return api.call("POST", LBS.format(tenant), token, json=body)


def test_same_tenant_services_with_other_hostnames_share_one_address_on_443(api: ControlApi) -> None:
    api.pool("platform", "203.0.113.0/29")
    acme = api.tenant("acme")
    first = create(api, "acme", acme, https("shop", "shop.acme.com", default=True))
    second = create(api, "acme", acme, https("blog", "blog.acme.com", "*.acme.com"))
    assert first.status_code == second.status_code == 201, second.text
    assert first.json()["addresses"] == second.json()["addresses"] == ["203.0.113.1"]
    rows = api.ok("GET", "/v1/tenants/acme/ips", acme)
    assert [(row["address"], row["load_balancers"]) for row in rows] == [("203.0.113.1", ["blog", "shop"])]


def test_a_clashing_hostname_is_a_409_naming_the_same_tenants_holder(api: ControlApi) -> None:
    api.pool("platform", "203.0.113.0/29")
    acme = api.tenant("acme")
    assert create(api, "acme", acme, https("shop", "shop.acme.com")).status_code == 201
    refused = create(api, "acme", acme, https("shop2", "shop.acme.com"))
    assert refused.status_code == 409, refused.text
    assert "load balancer shop" in refused.text and "shop.acme.com" in refused.text
    no_names = create(api, "acme", acme, https("plain"))
    assert no_names.status_code == 409, no_names.text
    assert "name this load balancer's hostnames on 443/tcp" in no_names.text


def test_an_update_that_adds_a_clashing_hostname_is_a_409_and_changes_nothing(api: ControlApi) -> None:
    api.pool("platform", "203.0.113.0/29")
    acme = api.tenant("acme")
    create(api, "acme", acme, https("shop", "shop.acme.com"))
    blog = create(api, "acme", acme, https("blog", "blog.acme.com")).json()
    path = LBS.format("acme") + "/blog"
    refused = api.call("PUT", path, acme, json=https("blog", "blog.acme.com", "shop.acme.com"))
    assert refused.status_code == 409, refused.text
    assert "load balancer shop" in refused.text
    after = api.ok("GET", path, acme)
    assert after["version"] == blog["version"]
    assert after["spec"]["listeners"][0]["hostnames"] == ["blog.acme.com"]
    second_default = api.call("PUT", path, acme, json=https("blog", "blog.acme.com", default=True))
    assert second_default.status_code == 200, second_default.text  # shop is no default: one is fine


def test_two_tenants_share_only_on_a_pool_that_allows_it(api: ControlApi) -> None:
    api.pool("platform", "203.0.113.0/29")
    api.pool("shared", "198.51.100.0/29", auto_assign=False, sni_sharing="pool")
    acme, globex = api.tenant("acme"), api.tenant("globex")
    on_platform = create(api, "acme", acme, https("shop", "shop.acme.com")).json()["addresses"]
    apart = create(api, "globex", globex, https("www", "www.globex.com")).json()["addresses"]
    assert on_platform != apart  # the platform pool keeps the default, tenant-only rule
    mine = create(api, "acme", acme, https("pay", "pay.acme.com", pool="shared"))
    theirs = create(api, "globex", globex, https("api", "api.globex.com", pool="shared"))
    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert mine.json()["addresses"] == theirs.json()["addresses"] == ["198.51.100.1"]
    # each tenant lists only its own load balancers among the address's users
    acme_rows = {row["address"]: row["load_balancers"] for row in api.ok("GET", "/v1/tenants/acme/ips", acme)}
    assert acme_rows["198.51.100.1"] == ["pay"]


def test_a_cross_tenant_clash_says_only_that_the_hostname_is_taken(api: ControlApi) -> None:
    api.pool("shared", "198.51.100.0/29", auto_assign=False, sni_sharing="pool")
    acme, globex = api.tenant("acme"), api.tenant("globex")
    assert create(api, "acme", acme, https("secret-pay", "*.acme.com", pool="shared")).status_code == 201
    refused = create(api, "globex", globex, https("grab", "pay.acme.com", pool="shared"))
    assert refused.status_code == 409, refused.text
    assert (
        "hostname pay.acme.com on port 443/tcp is already taken on 198.51.100.1 (by another tenant)"
        in (refused.json()["detail"])
    )
    assert "secret-pay" not in refused.text and "acme" not in refused.text.replace("pay.acme.com", "")


def test_a_pool_is_not_narrowed_to_tenant_sharing_under_cross_tenant_sharers(api: ControlApi) -> None:
    api.pool("shared", "198.51.100.0/29", auto_assign=False, sni_sharing="pool")
    acme, globex = api.tenant("acme"), api.tenant("globex")
    create(api, "acme", acme, https("pay", "pay.acme.com", pool="shared"))
    create(api, "globex", globex, https("api", "api.globex.com", pool="shared"))
    refused = api.call("PATCH", "/v1/pools/shared", json={"sni_sharing": "tenant"})
    assert refused.status_code == 409, refused.text
    assert "1 addresses shared by load balancers of several tenants" in refused.text
    api.ok("DELETE", LBS.format("globex") + "/api", globex)
    assert api.ok("PATCH", "/v1/pools/shared", json={"sni_sharing": "tenant"})["sni_sharing"] == "tenant"


def test_deleting_the_first_sharer_keeps_the_address_for_the_other_tenant(api: ControlApi) -> None:
    api.pool("shared", "198.51.100.0/29", auto_assign=False, sni_sharing="pool")
    acme, globex = api.tenant("acme"), api.tenant("globex")
    create(api, "acme", acme, https("pay", "pay.acme.com", pool="shared"))
    create(api, "globex", globex, https("api", "api.globex.com", pool="shared"))
    api.ok("DELETE", LBS.format("acme") + "/pay", acme)
    assert api.ok("GET", LBS.format("globex") + "/api", globex)["addresses"] == ["198.51.100.1"]
    reserve = api.call("POST", "/v1/tenants/acme/ips/reserve", acme, json={"address": "198.51.100.1"})
    assert reserve.status_code == 409, reserve.text
