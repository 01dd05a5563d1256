"""Every endpoint against every kind of caller, with the exact status each must get.

Rules: the admin may do everything except report a PoP's status; a tenant reaches only its own
objects and gets 404 (not 403) for another tenant's, so ids cannot be probed; a PoP reads only its
own desired state and writes only its own status; no token is 401 everywhere but /healthz and /livez.
A route missing from the table fails the completeness test, so a new endpoint cannot ship unchecked.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.control_plane import ControlApi, spec

pytestmark = pytest.mark.integration

CALLERS = ("admin", "tenant_a", "tenant_b", "pop", "none")
_serial = itertools.count()


@dataclass
class World:
    api: ControlApi
    tokens: dict[str, str | None]

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(_serial)}"


Prep = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: tuple[int, int, int, int, int]  # admin, tenant A, tenant B, PoP, no token
    prep: Prep = lambda world: {}  # path parameters and "json" for one call


def _fresh_tenant(world: World) -> dict[str, Any]:
    name = world.fresh("t")
    world.api.ok("POST", "/v1/tenants", json={"name": name})
    return {"tenant": name}


def _fresh_token(world: World) -> dict[str, Any]:
    return {"token_id": world.api.ok("POST", "/v1/tenants/acme/tokens", json={})["token_id"]}


def _fresh_pool_body(world: World) -> dict[str, Any]:
    index = next(_serial)
    return {"json": {"name": f"p{index}", "networks": [f"10.{index % 250}.{index // 250}.0/28"]}}


def _fresh_empty_pool(world: World) -> dict[str, Any]:
    body = _fresh_pool_body(world)["json"]
    world.api.ok("POST", "/v1/pools", json=body)
    return {"pool": body["name"]}


def _fresh_lb(world: World) -> dict[str, Any]:
    name = world.fresh("lb")
    world.api.ok("POST", "/v1/tenants/acme/loadbalancers", json=spec(name))
    return {"name": name}


def _fresh_reserved(world: World) -> dict[str, Any]:
    return {"address": world.api.ok("POST", "/v1/tenants/acme/ips/reserve", json={})["address"]}


def _fresh_pop(world: World) -> dict[str, Any]:
    name = world.fresh("pop")
    world.api.pop(name)
    return {"pop": name}


def _fresh_cluster(world: World) -> dict[str, Any]:
    name = world.fresh("c")
    world.api.ok("PUT", f"/v1/tenants/acme/clusters/{name}", json={})
    world.api.ok("PUT", f"/v1/tenants/acme/clusters/{name}/nodes", json={"nodes": ["n1"]})
    return {"tenant": "acme", "cluster": name}


def _status_report(world: World) -> dict[str, Any]:
    return {"json": {"pop": "fra", "applied_version": 1}}


TABLE = (
    Row("GET", "/healthz", (200, 200, 200, 200, 200)),
    Row("GET", "/livez", (200, 200, 200, 200, 200)),
    Row("GET", "/metrics", (200, 403, 403, 403, 401)),
    Row("GET", "/v1/whoami", (200, 200, 200, 200, 401)),
    Row("POST", "/v1/tenants", (201, 403, 403, 403, 401), lambda w: {"json": {"name": w.fresh("t")}}),
    Row("GET", "/v1/tenants", (200, 403, 403, 403, 401)),
    Row("GET", "/v1/tenants/{tenant}", (200, 200, 404, 403, 401), lambda w: {"tenant": "acme"}),
    Row(
        "PATCH",  # a tenant may not widen its own backend allowance
        "/v1/tenants/{tenant}",
        (200, 403, 403, 403, 401),
        lambda w: {"tenant": "acme", "json": {"allowed_backend_networks": ["10.20.0.0/16"]}},
    ),
    Row("DELETE", "/v1/tenants/{tenant}", (204, 403, 403, 403, 401), _fresh_tenant),
    Row(
        "POST",
        "/v1/tenants/{tenant}/tokens",
        (201, 201, 404, 403, 401),
        lambda w: {"tenant": "acme", "json": {}},
    ),
    Row("GET", "/v1/tenants/{tenant}/tokens", (200, 200, 404, 403, 401), lambda w: {"tenant": "acme"}),
    Row(
        "DELETE",
        "/v1/tenants/{tenant}/tokens/{token_id}",
        (204, 204, 404, 403, 401),
        lambda w: {"tenant": "acme", **_fresh_token(w)},
    ),
    Row(
        "POST",
        "/v1/tenants/{tenant}/tokens/{token_id}/rotate",
        (201, 201, 404, 403, 401),
        lambda w: {"tenant": "acme", **_fresh_token(w), "json": {}},
    ),
    Row("POST", "/v1/pools", (201, 403, 403, 403, 401), _fresh_pool_body),
    Row("GET", "/v1/pools", (200, 200, 200, 403, 401)),
    Row("GET", "/v1/pools/{pool}", (200, 200, 404, 403, 401), lambda w: {"pool": "acme-byoip"}),
    Row("PATCH", "/v1/pools/{pool}", (200, 403, 403, 403, 401), lambda w: {"pool": "platform", "json": {}}),
    Row("DELETE", "/v1/pools/{pool}", (204, 403, 403, 403, 401), _fresh_empty_pool),
    Row("GET", "/v1/ips", (200, 403, 403, 403, 401)),
    Row("GET", "/v1/limits", (200, 200, 200, 200, 401)),
    Row("GET", "/v1/audit", (200, 200, 200, 403, 401)),  # a tenant reads its own objects' rows
    Row("GET", "/v1/tenants/{tenant}/limits", (200, 200, 404, 403, 401), lambda w: {"tenant": "acme"}),
    Row("GET", "/v1/usage", (200, 403, 403, 403, 401)),
    Row("GET", "/v1/tenants/{tenant}/usage", (200, 200, 404, 403, 401), lambda w: {"tenant": "acme"}),
    Row(
        "PUT",
        "/v1/tenants/{tenant}/limits",
        (200, 403, 403, 403, 401),
        lambda w: {"tenant": "acme", "json": {}},
    ),
    Row("GET", "/v1/tenants/{tenant}/loadbalancers", (200, 200, 404, 403, 401), lambda w: {"tenant": "acme"}),
    Row(
        "GET",
        "/v1/tenants/{tenant}/loadbalancer-versions",
        (200, 200, 404, 403, 401),
        lambda w: {"tenant": "acme"},
    ),
    Row(
        "POST",
        "/v1/tenants/{tenant}/loadbalancers",
        (201, 201, 404, 403, 401),
        lambda w: {"tenant": "acme", "json": spec(w.fresh("lb"))},
    ),
    Row(
        "PUT",
        "/v1/tenants/{tenant}/loadbalancers/{name}",
        (200, 200, 404, 403, 401),
        lambda w: {"tenant": "acme", "name": "web", "json": spec("web")},
    ),
    Row(
        "GET",
        "/v1/tenants/{tenant}/loadbalancers/{name}",
        (200, 200, 404, 403, 401),
        lambda w: {"tenant": "acme", "name": "web"},
    ),
    Row(
        "GET",
        "/v1/tenants/{tenant}/loadbalancers/{name}/status",
        (200, 200, 404, 403, 401),
        lambda w: {"tenant": "acme", "name": "web"},
    ),
    Row(
        "DELETE",
        "/v1/tenants/{tenant}/loadbalancers/{name}",
        (204, 204, 404, 403, 401),
        lambda w: {"tenant": "acme", **_fresh_lb(w)},
    ),
    Row("GET", "/v1/tenants/{tenant}/ips", (200, 200, 404, 403, 401), lambda w: {"tenant": "acme"}),
    Row(
        "POST",
        "/v1/tenants/{tenant}/ips/reserve",
        (201, 201, 404, 403, 401),
        lambda w: {"tenant": "acme", "json": {}},
    ),
    Row(
        "DELETE",
        "/v1/tenants/{tenant}/ips/{address}",
        (204, 204, 404, 403, 401),
        lambda w: {"tenant": "acme", **_fresh_reserved(w)},
    ),
    Row("POST", "/v1/pops", (201, 403, 403, 403, 401), lambda w: {"json": {"name": w.fresh("pop")}}),
    Row("GET", "/v1/pops", (200, 200, 200, 403, 401)),
    Row("GET", "/v1/pops/{pop}", (200, 403, 403, 200, 401), lambda w: {"pop": "fra"}),
    Row("DELETE", "/v1/pops/{pop}", (204, 403, 403, 403, 401), _fresh_pop),
    Row("GET", "/v1/pops/{pop}/desired", (200, 403, 403, 200, 401), lambda w: {"pop": "fra"}),
    Row("GET", "/v1/pops/{pop}/credentials", (200, 403, 403, 403, 401), lambda w: {"pop": "fra"}),
    Row(
        "POST",
        "/v1/pops/{pop}/credentials/rotate",
        (201, 403, 403, 403, 401),
        lambda w: {**_fresh_pop(w), "json": {}},
    ),
    Row(
        "PUT",
        "/v1/pops/{pop}/status",
        (403, 403, 403, 204, 401),
        lambda w: {"pop": "fra", **_status_report(w)},
    ),
    Row(
        "PUT",
        "/v1/pops/{pop}/tunnel-endpoint",
        (200, 403, 403, 403, 401),
        lambda w: {"pop": "fra", "json": {"tunnel_endpoint": "192.0.2.1"}},
    ),
    Row("GET", "/v1/tenants/{tenant}/clusters", (200, 200, 404, 403, 401), lambda w: {"tenant": "acme"}),
    Row(
        "PUT",
        "/v1/tenants/{tenant}/clusters/{cluster}",
        (201, 201, 404, 403, 401),
        lambda w: {"tenant": "acme", "cluster": w.fresh("c"), "json": {}},
    ),
    Row(
        "GET",
        "/v1/tenants/{tenant}/clusters/{cluster}",
        (200, 200, 404, 403, 401),
        lambda w: {"tenant": "acme", "cluster": "k1"},
    ),
    Row("DELETE", "/v1/tenants/{tenant}/clusters/{cluster}", (204, 204, 404, 403, 401), _fresh_cluster),
    Row(
        "PUT",
        "/v1/tenants/{tenant}/clusters/{cluster}/nodes",
        (200, 200, 404, 403, 401),
        lambda w: {"tenant": "acme", "cluster": "k1", "json": {"nodes": ["n1", "n2"]}},
    ),
    Row(
        "GET",
        "/v1/tenants/{tenant}/clusters/{cluster}/nodes",
        (200, 200, 404, 403, 401),
        lambda w: {"tenant": "acme", "cluster": "k1"},
    ),
    Row(
        "GET",
        "/v1/tenants/{tenant}/clusters/{cluster}/tunnel",
        (200, 200, 404, 403, 401),
        lambda w: {"tenant": "acme", "cluster": "k1"},
    ),
    Row("POST", "/v1/tenants/{tenant}/clusters/{cluster}/rotate", (200, 200, 404, 403, 401), _fresh_cluster),
)


@pytest.fixture
def world(api: ControlApi) -> World:
    api.pool("platform", "203.0.113.0/24")
    tenant_a = api.tenant("acme")
    tenant_b = api.tenant("globex")
    api.pool("acme-byoip", "198.51.100.0/24", owner="acme")
    pop = api.pop("fra")
    api.ok("POST", "/v1/tenants/acme/loadbalancers", tenant_a, json=spec("web"))
    api.ok("PUT", "/v1/tenants/acme/clusters/k1", tenant_a, json={})
    return World(api, {"admin": None, "tenant_a": tenant_a, "tenant_b": tenant_b, "pop": pop, "none": None})


def _call(world: World, row: Row, caller: str) -> int:
    params = row.prep(world)
    body = params.pop("json", None)
    path = row.path.format(**params)
    if caller == "admin":
        response = world.api.call(row.method, path, json=body)
    else:
        response = world.api.call(row.method, path, token=world.tokens[caller], json=body)
    return response.status_code


def test_every_endpoint_gives_each_caller_exactly_its_status(world: World) -> None:
    wrong = []
    for row in TABLE:
        for caller, expected in zip(CALLERS, row.expect, strict=True):
            got = _call(world, row, caller)
            if got != expected:
                wrong.append(f"{row.method} {row.path} as {caller}: got {got}, want {expected}")
    assert not wrong, "\n".join(wrong)


def test_the_table_covers_every_route(api: ControlApi) -> None:
    routes = {(method.upper(), path) for path, item in api.app.openapi()["paths"].items() for method in item}
    covered = {(row.method, row.path) for row in TABLE}
    assert routes - covered == set(), "routes without a row in the authorization table"
    assert covered - routes == set(), "rows for routes that do not exist"


def test_a_pop_cannot_read_another_pops_state_and_sees_404(world: World) -> None:
    par = world.api.pop("par")
    assert world.api.call("GET", "/v1/pops/fra/desired", token=par).status_code == 404
    assert (
        world.api.call(
            "PUT", "/v1/pops/fra/status", token=par, json={"pop": "fra", "applied_version": 1}
        ).status_code
        == 404
    )


def test_a_revoked_token_is_refused(world: World) -> None:
    created = world.api.ok("POST", "/v1/tenants/globex/tokens", json={})
    assert world.api.call("GET", "/v1/tenants/globex", token=created["secret"]).status_code == 200
    world.api.ok("DELETE", f"/v1/tenants/globex/tokens/{created['token_id']}")
    refused = world.api.call("GET", "/v1/tenants/globex", token=created["secret"])
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
