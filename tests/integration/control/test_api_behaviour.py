"""The control plane's API on a real store (each test runs on SQLite and on PostgreSQL)."""

import psycopg
import pytest
from sqlalchemy.engine import make_url

from anycastlb.model.desired import LoadBalancerSpec
from tests.support.control_plane import ControlApi, listener, spec
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration


def _setup(api: ControlApi) -> str:
    api.pool("platform-v4", "203.0.113.0/29")
    api.pool("platform-v6", "2001:db8:1::/125")
    api.pop("fra")
    api.pop("par")
    return api.tenant("acme")


def test_healthz_needs_no_token_and_names_the_database(api: ControlApi) -> None:
    body = api.ok("GET", "/healthz", token=None)
    assert body["status"] == "ok"
    assert body["database"] in ("sqlite", "postgresql")


def test_livez_answers_while_the_database_is_gone_and_healthz_does_not(postgres: PostgresServer) -> None:
    """The Helm chart's probes: readiness on /healthz (503 while the database is unreachable, so
    the Service sends no request to a replica that cannot answer it), liveness on /livez (a
    restart would not bring the database back)."""
    url = postgres.new_database()
    api = ControlApi(url)
    try:
        assert api.call("GET", "/healthz", token=None).status_code == 200
        assert api.ok("GET", "/livez", token=None) == {"status": "ok"}
        name = make_url(url).database
        with psycopg.connect(postgres.admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        health = api.call("GET", "/healthz", token=None)
        assert health.status_code == 503
        assert health.json()["status"] == "database unreachable"
        assert api.ok("GET", "/livez", token=None) == {"status": "ok"}
    finally:
        api.close()


def test_a_load_balancer_gets_the_first_free_address_and_every_pop_sees_it(api: ControlApi) -> None:
    acme = _setup(api)
    created = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    assert created["addresses"] == ["203.0.113.1"]  # .0 (network) is skipped
    for pop in ("fra", "par"):
        state = api.ok("GET", f"/v1/pops/{pop}/desired")
        assert [lb["name"] for lb in state["load_balancers"]] == ["web"]
        assert state["load_balancers"][0]["vips"] == ["203.0.113.1"]
        assert state["version"] >= created["version"]


def test_deleting_a_load_balancer_frees_its_dynamic_address(api: ControlApi) -> None:
    acme = _setup(api)
    first = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/web", acme)
    assert api.ok("GET", "/v1/tenants/acme/ips", acme) == []
    again = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("api"))
    assert again["addresses"] == first["addresses"]


def test_a_reserved_address_outlives_its_load_balancer_until_released(api: ControlApi) -> None:
    acme = _setup(api)
    reserved = api.ok("POST", "/v1/tenants/acme/ips/reserve", acme, json={"family": "ipv4"})
    address = reserved["address"]
    assert reserved["static"] is True
    api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web", addresses=[address]))
    busy = api.call("DELETE", f"/v1/tenants/acme/ips/{address}", acme)
    assert busy.status_code == 409
    assert "web" in busy.json()["detail"]
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/web", acme)
    assert [ip["address"] for ip in api.ok("GET", "/v1/tenants/acme/ips", acme)] == [address]
    api.ok("DELETE", f"/v1/tenants/acme/ips/{address}", acme)
    assert api.ok("GET", "/v1/tenants/acme/ips", acme) == []


def test_reserving_a_dynamic_vip_keeps_it_after_the_load_balancer_is_deleted(api: ControlApi) -> None:
    acme = _setup(api)
    lb = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    address = lb["addresses"][0]
    api.ok("POST", "/v1/tenants/acme/ips/reserve", acme, json={"address": address})
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/web", acme)
    assert [(ip["address"], ip["static"]) for ip in api.ok("GET", "/v1/tenants/acme/ips", acme)] == [
        (address, True)
    ]


def test_a_taken_address_is_refused_with_409_and_no_owner_named(api: ControlApi) -> None:
    acme = _setup(api)
    globex = api.tenant("globex")
    lb = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    taken = api.call(
        "POST", "/v1/tenants/globex/loadbalancers", globex, json=spec("web", addresses=lb["addresses"])
    )
    assert taken.status_code == 409
    assert "acme" not in taken.json()["detail"]


def test_an_address_outside_every_usable_pool_is_refused_with_403(api: ControlApi) -> None:
    acme = _setup(api)
    response = api.call("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec(addresses=["198.51.100.7"]))
    assert response.status_code == 403
    assert "198.51.100.7" in response.json()["detail"]


def test_tenant_b_cannot_take_tenant_a_byoip_prefix(api: ControlApi) -> None:
    acme = _setup(api)
    globex = api.tenant("globex")
    api.pool("acme-byoip", "198.51.100.0/28", owner="acme")
    # a specific address in acme's prefix
    hijack = api.call(
        "POST", "/v1/tenants/globex/loadbalancers", globex, json=spec(addresses=["198.51.100.5"])
    )
    assert hijack.status_code == 403
    assert "acme" not in hijack.json()["detail"]
    # the pool by name, for an allocation or a reservation
    by_pool = api.call("POST", "/v1/tenants/globex/loadbalancers", globex, json=spec(pool="acme-byoip"))
    assert by_pool.status_code == 403
    reserve = api.call("POST", "/v1/tenants/globex/ips/reserve", globex, json={"pool": "acme-byoip"})
    assert reserve.status_code == 403
    # globex does not even see the pool
    assert "acme-byoip" not in [p["name"] for p in api.ok("GET", "/v1/pools", globex)]
    assert api.call("GET", "/v1/pools/acme-byoip", globex).status_code == 404
    # and acme's own allocations prefer its prefix
    mine = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    assert mine["addresses"] == ["198.51.100.1"]


def test_an_overlapping_pool_is_refused(api: ControlApi) -> None:
    _setup(api)
    response = api.call("POST", "/v1/pools", json={"name": "other", "networks": ["203.0.113.4/30"]})
    assert response.status_code == 409
    assert "platform-v4" in response.json()["detail"]


def test_exhaustion_is_a_409_that_says_what_to_do(api: ControlApi) -> None:
    acme = _setup(api)
    for index in range(6):  # a /29 has 6 usable addresses
        api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec(f"lb{index}"))
    response = api.call("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("lb6"))
    assert response.status_code == 409
    assert "no free IPv4 address" in response.json()["detail"]


def test_several_addresses_and_both_families_for_dns_load_balancing(api: ControlApi) -> None:
    acme = _setup(api)
    lb = api.ok(
        "POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web", count=2, families=["ipv4", "ipv6"])
    )
    assert lb["addresses"] == ["203.0.113.1", "203.0.113.2", "2001:db8:1::1", "2001:db8:1::2"]


def test_sharing_an_address_needs_the_same_key_and_disjoint_ports(api: ControlApi) -> None:
    acme = _setup(api)
    web = api.ok(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        acme,
        json=spec("web", listeners=[listener(443)], sharing_key="front"),
    )
    dns = api.ok(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        acme,
        json=spec("dns", listeners=[listener(53)], sharing_key="front"),
    )
    assert dns["addresses"] == web["addresses"]
    clash = api.call(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        acme,
        json=spec("web2", listeners=[listener(443)], sharing_key="front", addresses=web["addresses"]),
    )
    assert clash.status_code == 409
    assert "443/tcp" in clash.json()["detail"]
    # without named addresses too: the key asks for the shared address, so no other one is handed out
    dynamic = api.call(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        acme,
        json=spec("web3", listeners=[listener(443)], sharing_key="front"),
    )
    assert dynamic.status_code == 409
    # it names the load balancer already on that port (dns, on 53, is no obstacle: SNI sharing
    # compares listeners one by one since issue 15)
    assert "load balancer web, which already listens on 443/tcp" in dynamic.json()["detail"]
    # an update that adds a port the sharer uses is refused too
    update = api.call(
        "PUT",
        "/v1/tenants/acme/loadbalancers/dns",
        acme,
        json=spec("dns", listeners=[listener(53), listener(443)], sharing_key="front"),
    )
    assert update.status_code == 409
    # the shared address is freed only when both are gone
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/web", acme)
    assert [ip["address"] for ip in api.ok("GET", "/v1/tenants/acme/ips", acme)] == web["addresses"]
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/dns", acme)
    assert api.ok("GET", "/v1/tenants/acme/ips", acme) == []


def test_put_is_an_idempotent_ensure_that_keeps_the_vip_and_the_version(api: ControlApi) -> None:
    acme = _setup(api)
    created = api.call("PUT", "/v1/tenants/acme/loadbalancers/web", acme, json=spec("web"))
    assert created.status_code == 201
    same = api.call("PUT", "/v1/tenants/acme/loadbalancers/web", acme, json=spec("web"))
    assert same.status_code == 200
    assert same.json()["version"] == created.json()["version"]
    changed = api.ok(
        "PUT",
        "/v1/tenants/acme/loadbalancers/web",
        acme,
        json=spec("web", listeners=[listener(443), listener(80)]),
    )
    assert changed["version"] > created.json()["version"]
    assert changed["addresses"] == created.json()["addresses"]
    stale = api.call(
        "PUT",
        "/v1/tenants/acme/loadbalancers/web",
        acme,
        json=spec("web"),
        headers={"If-Match": str(created.json()["version"])},
    )
    assert stale.status_code == 412


def test_versions_list_every_load_balancer_of_the_tenant_and_follow_changes(api: ControlApi) -> None:
    acme = _setup(api)
    globex = api.tenant("globex")
    web = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", acme, json=spec("web"))
    api.ok("PUT", "/v1/tenants/globex/loadbalancers/other", globex, json=spec("other"))
    digest = LoadBalancerSpec.model_validate(spec("web")).digest()  # what a controller computes
    assert api.ok("GET", "/v1/tenants/acme/loadbalancer-versions", acme) == [
        {"name": "web", "version": web["version"], "spec_digest": digest, "addresses": web["addresses"]}
    ]
    api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", acme, json=spec("web"))  # unchanged
    assert api.ok("GET", "/v1/tenants/acme/loadbalancer-versions", acme)[0]["version"] == web["version"]
    edited = spec("web", listeners=[listener(80)])
    changed = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", acme, json=edited)
    api_ = api.ok("PUT", "/v1/tenants/acme/loadbalancers/api", acme, json=spec("api"))
    assert [
        (item["name"], item["version"], item["spec_digest"])
        for item in api.ok("GET", "/v1/tenants/acme/loadbalancer-versions", acme)
    ] == [
        ("api", api_["version"], LoadBalancerSpec.model_validate(spec("api")).digest()),
        ("web", changed["version"], LoadBalancerSpec.model_validate(edited).digest()),
    ]
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/web", acme)
    assert [item["name"] for item in api.ok("GET", "/v1/tenants/acme/loadbalancer-versions", acme)] == ["api"]


def test_a_load_balancer_pinned_to_one_pop_reaches_only_that_pop(api: ControlApi) -> None:
    acme = _setup(api)
    before = api.ok("GET", "/v1/pops/par/desired")["version"]
    api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json={**spec("web"), "pops": ["fra"]})
    assert [lb["name"] for lb in api.ok("GET", "/v1/pops/fra/desired")["load_balancers"]] == ["web"]
    par = api.ok("GET", "/v1/pops/par/desired")
    assert par["load_balancers"] == []
    assert par["version"] == before
    unknown = api.call("POST", "/v1/tenants/acme/loadbalancers", acme, json={**spec("api"), "pops": ["nyc"]})
    assert unknown.status_code == 422
    assert "nyc" in unknown.json()["detail"] and "fra" in unknown.json()["detail"]


def test_invalid_specs_get_422_naming_the_field(api: ControlApi) -> None:
    acme = _setup(api)
    bad = api.call("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("Web!"))
    assert bad.status_code == 422
    assert "name" in bad.json()["detail"]
    no_listeners = api.call(
        "POST", "/v1/tenants/acme/loadbalancers", acme, json={"name": "web", "listeners": []}
    )
    assert no_listeners.status_code == 422
    bad_port = api.call(
        "POST", "/v1/tenants/acme/loadbalancers", acme, json=spec(listeners=[listener(70000)])
    )
    assert bad_port.status_code == 422
    assert "listeners[0].port" in bad_port.json()["detail"]
    too_many = api.call("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec(count=1000))
    assert too_many.status_code == 422


def test_watch_answers_at_once_when_behind_and_after_the_timeout_when_current(api: ControlApi) -> None:
    _setup(api)
    current = api.ok("GET", "/v1/pops/fra/desired")["version"]
    behind = api.ok("GET", "/v1/pops/fra/desired", params={"watch": 1, "since": current - 1, "timeout": 5})
    assert behind["version"] == current
    waited = api.ok("GET", "/v1/pops/fra/desired", params={"watch": 1, "since": current, "timeout": 0.2})
    assert waited["version"] == current


def test_status_reports_aggregate_per_load_balancer(api: ControlApi) -> None:
    acme = _setup(api)
    lb = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    ams_token = api.pop("ams")
    state = api.ok("GET", "/v1/pops/ams/desired", ams_token)
    report = {
        "pop": "ams",
        "applied_version": state["version"],
        "announced": [f"{lb['addresses'][0]}/32"],
        "listeners": [
            {
                "load_balancer": lb["id"],
                "address": lb["addresses"][0],
                "port": 443,
                "serving": True,
                "active_connections": 7,
                "backends": [{"address": "10.0.0.11", "port": 30443, "up": True}],
            }
        ],
    }
    api.ok("PUT", "/v1/pops/ams/status", ams_token, json=report)
    status = api.ok("GET", "/v1/tenants/acme/loadbalancers/web/status", acme)
    assert status["ready"] is True
    ams = next(p for p in status["pops"] if p["pop"] == "ams")
    assert (
        ams["applied"]
        and ams["backends_up"] == 1
        and ams["active_connections"] == 7
        and ams["announced"] == [f"{lb['addresses'][0]}/32"]
    )
    assert status["pops_serving"] == 1  # fra and par never reported
    wrong = api.call("PUT", "/v1/pops/ams/status", ams_token, json={**report, "pop": "fra"})
    assert wrong.status_code == 422


def test_tenants_list_pops_without_problems_that_name_other_tenants(api: ControlApi) -> None:
    _setup(api)
    globex = api.tenant("globex")
    ams = api.pop("ams")
    problem = "load balancer acme/secret-project: port 443/udp not supported"
    api.ok(
        "PUT", "/v1/pops/ams/status", ams, json={"pop": "ams", "applied_version": 1, "problems": [problem]}
    )
    seen_by_admin = {pop["name"]: pop for pop in api.ok("GET", "/v1/pops")}
    assert [p["message"] for p in seen_by_admin["ams"]["problems"]] == [problem]
    seen_by_tenant = {pop["name"]: pop for pop in api.ok("GET", "/v1/pops", globex)}
    assert seen_by_tenant["ams"]["problems"] == []


def test_a_reservation_shared_under_a_key_is_shareable_by_the_next_load_balancer_with_that_key(
    api: ControlApi,
) -> None:
    acme = _setup(api)
    address = api.ok("POST", "/v1/tenants/acme/ips/reserve", acme, json={})["address"]
    api.ok(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        acme,
        json=spec("web", listeners=[listener(443)], addresses=[address], sharing_key="front"),
    )
    dns = api.ok(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        acme,
        json=spec("dns", listeners=[listener(53)], addresses=[address], sharing_key="front"),
    )
    assert dns["addresses"] == [address]
