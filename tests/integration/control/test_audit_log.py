"""The audit log: one row per change, in the change's own transaction, readable by who may.

The completeness test enumerates the mutating routes of the app itself: a new endpoint that
changes something without an audit row (or without a row in the authorization table, whose
preparations it reuses) fails it.
"""

from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from anycastlb.control.service import audit
from anycastlb.control.store.tables import AuditEntry, Tenant
from anycastlb.control.tokens import token_id_of
from tests.integration.control.test_authorization import CALLERS, TABLE, Row, World, world
from tests.support.control_plane import ControlApi, spec

pytestmark = pytest.mark.integration
__all__ = ["world"]  # the authorization test's fixture, used here too

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes that change no configuration, and why (control/audit.py).
NOT_AUDITED = {
    ("PUT", "/v1/pops/{pop}/status"): "a PoP's status report is an observation, repeated every few seconds"
}


def _rows(api: ControlApi) -> list[AuditEntry]:
    with api.store.readers() as session:
        rows = list(session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())
        session.expunge_all()
        return rows


def _count(api: ControlApi) -> int:
    with api.store.readers() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def _mutating_routes(api: ControlApi) -> set[tuple[str, str]]:
    """From the OpenAPI schema, and from the routes themselves (a route hidden from the schema
    counts too). FastAPI keeps an included router as one entry holding its routes."""
    found = {
        (method.upper(), path)
        for path, item in api.app.openapi()["paths"].items()
        for method in item
        if method.upper() in _MUTATING
    }
    pending: list[Any] = list(api.app.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)
        if included is not None:
            pending += included.routes
        elif isinstance(route, APIRoute):
            found |= {(method, route.path) for method in (route.methods or set()) & _MUTATING}
    # The status page's sign-in and sign-out (control/status_page) set or clear a browser cookie and
    # write nothing to the store: no change to audit. Any other /status route that mutates is caught.
    return found - {("POST", "/status/sign-in"), ("POST", "/status/sign-out")}


def _prepared(world: World, row: Row) -> dict[str, Any]:
    params = row.prep(world)
    if row.method == "PUT" and row.path.endswith("/loadbalancers/{name}"):
        name = world.fresh("lb")  # the table's PUT repeats a stored spec: no change, no row
        params.update(name=name, json=spec(name))
    return params


def test_every_mutating_route_records_exactly_one_row_naming_its_caller(world: World) -> None:
    api = world.api
    rows_by_route = {(row.method, row.path): row for row in TABLE}
    routes = _mutating_routes(api)
    assert len(routes) >= 19, routes  # today's 19: an enumeration that finds none must not pass
    assert routes - set(rows_by_route) == set(), "mutating routes without a row in test_authorization.TABLE"
    wrong = []
    for method, path in sorted(routes):
        row = rows_by_route[(method, path)]
        allowed = dict(zip(CALLERS, row.expect, strict=True))
        caller = next(name for name in ("tenant_a", "admin", "pop") if allowed[name] < 300)
        params = _prepared(world, row)
        body = params.pop("json", None)
        before = _count(api)
        token = world.tokens[caller]
        response = api.call(method, path.format(**params), json=body, **({"token": token} if token else {}))
        assert response.status_code < 300, (
            f"{method} {path} as {caller}: {response.status_code} {response.text}"
        )
        added = _rows(api)[before:]
        if (method, path) in NOT_AUDITED:
            if added:
                wrong.append(f"{method} {path}: {len(added)} rows, want none ({NOT_AUDITED[(method, path)]})")
            continue
        if len(added) != 1:
            wrong.append(f"{method} {path} as {caller}: {len(added)} audit rows, want exactly 1")
            continue
        entry = added[0]
        want = (
            ("tenant", "acme", token_id_of(token))
            if caller == "tenant_a" and token
            else ("admin", "admin", None)
        )
        if (entry.actor_kind, entry.actor, entry.actor_token) != want:
            wrong.append(
                f"{method} {path}: actor {entry.actor_kind, entry.actor, entry.actor_token}, want {want}"
            )
        if entry.request_id != response.headers["X-Request-Id"]:
            wrong.append(f"{method} {path}: request id {entry.request_id} not the answered one")
    assert not wrong, "\n".join(wrong)


def test_a_load_balancer_row_carries_its_versions_and_an_unchanged_put_adds_none(api: ControlApi) -> None:
    api.pool("platform", "203.0.113.0/24")
    token = api.tenant("acme")
    start = _count(api)
    created = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", token, json=spec("web"))
    api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", token, json=spec("web"))  # a resync: no change
    updated = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", token, json=spec("web", count=2))
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/web", token)
    rows = _rows(api)[start:]
    assert [(r.action, r.object_type, r.object_name, r.tenant) for r in rows] == [
        ("create", "load_balancer", "web", "acme"),
        ("update", "load_balancer", "web", "acme"),
        ("delete", "load_balancer", "web", "acme"),
    ]
    assert [(r.version_before, r.version_after) for r in rows] == [
        (None, created["version"]),
        (created["version"], updated["version"]),
        (updated["version"], None),
    ]


def test_a_change_that_fails_leaves_no_row(api: ControlApi) -> None:
    api.ok("POST", "/v1/tenants", json={"name": "acme"})
    start = _count(api)
    assert api.call("POST", "/v1/tenants", json={"name": "acme"}).status_code == 409
    assert api.call("DELETE", "/v1/tenants/nobody").status_code == 404
    assert _count(api) == start


def test_a_database_error_after_the_audit_row_rolls_back_the_change_and_the_row(
    api: ControlApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row and the change commit together: an error after both were written (here, injected
    right after the audit row is added) leaves neither."""
    original = audit.record

    def record_then_fail(*args: Any, **kwargs: Any) -> AuditEntry | None:
        entry = original(*args, **kwargs)
        raise OperationalError("INSERT", {}, Exception("injected: the disk is full"))
        return entry  # pragma: no cover

    start = _count(api)
    monkeypatch.setattr(audit, "record", record_then_fail)
    assert api.call("POST", "/v1/tenants", json={"name": "acme"}).status_code == 409  # retried, then refused
    monkeypatch.undo()
    assert _count(api) == start
    with api.store.readers() as session:
        assert session.scalar(select(func.count()).where(Tenant.name == "acme")) == 0


def test_secrets_never_reach_the_audit_log(api: ControlApi) -> None:
    secrets = [api.tenant("acme"), api.pop("fra")]
    created = api.ok("POST", "/v1/tenants/acme/tokens", json={"description": "ci"})
    rotated = api.ok("POST", f"/v1/tenants/acme/tokens/{created['token_id']}/rotate", json={})
    pop_rotated = api.ok("POST", "/v1/pops/fra/credentials/rotate", json={})
    secrets += [created["secret"], rotated["secret"], pop_rotated["secret"]]
    answer = api.call("GET", "/v1/audit", params={"limit": 1000}).text
    stored = repr([vars(row) for row in _rows(api)])
    for secret in secrets:
        tail = secret.removeprefix(token_id_of(secret) + "_")  # the secret part (it may hold "_" too)
        assert len(tail) >= 20, secret
        assert tail not in answer
        assert tail not in stored
    assert created["token_id"] in answer  # tokens are named by id


def test_the_admin_reads_everything_and_a_tenant_only_its_own_objects(api: ControlApi) -> None:
    api.pool("platform", "203.0.113.0/24")
    acme = api.tenant("acme")
    globex = api.tenant("globex")
    api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    api.ok("POST", "/v1/tenants/globex/loadbalancers", globex, json=spec("shop"))
    everything = api.ok("GET", "/v1/audit")["entries"]
    assert {e["tenant"] for e in everything} == {None, "acme", "globex"}
    assert everything == sorted(everything, key=lambda e: -e["id"]), "newest first"
    seen = api.ok("GET", "/v1/audit", acme)["entries"]
    assert {e["tenant"] for e in seen} == {"acme"}
    assert [(e["action"], e["object_type"], e["object_name"]) for e in seen] == [
        ("create", "load_balancer", "web"),
        ("create", "token", token_id_of(acme)),
        ("create", "tenant", "acme"),
    ]
    assert seen[0]["actor_token"] == token_id_of(acme)
    assert seen[1]["actor"] == "admin"  # the admin's changes to a tenant's objects are its to see
    pop = api.pop("fra")
    assert api.call("GET", "/v1/audit", pop).status_code == 403


def test_filters_and_the_cursor_walk_every_row_once(api: ControlApi) -> None:
    for index in range(7):
        api.pool(f"p{index}", f"10.{index}.0.0/24")
    api.ok("DELETE", "/v1/pools/p3")
    everything = api.ok("GET", "/v1/audit")["entries"]
    pages, cursor = [], None
    while True:
        page = api.ok("GET", "/v1/audit", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        pages.append(page["entries"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [e["id"] for page in pages for e in page] == [e["id"] for e in everything]
    only_p3 = api.ok("GET", "/v1/audit", params={"type": "pool", "object": "p3"})["entries"]
    assert [e["action"] for e in only_p3] == ["delete", "create"]
    assert api.ok("GET", "/v1/audit", params={"actor": "globex"})["entries"] == []
    assert len(api.ok("GET", "/v1/audit", params={"actor": "admin"})["entries"]) == 8
    middle = everything[4]["at"]
    newer = api.ok("GET", "/v1/audit", params={"since": middle})["entries"]
    older = api.ok("GET", "/v1/audit", params={"until": middle})["entries"]
    assert {e["id"] for e in newer} | {e["id"] for e in older} == {e["id"] for e in everything}
    assert not {e["id"] for e in newer} & {e["id"] for e in older}
    naive = api.ok("GET", "/v1/audit", params={"since": middle.removesuffix("Z")})["entries"]
    assert naive == newer, "a time without a zone is UTC"
    assert api.call("GET", "/v1/audit", params={"cursor": "x"}).status_code == 422


def test_a_request_id_is_taken_from_the_client_or_generated_and_answered(api: ControlApi) -> None:
    given = api.call("POST", "/v1/tenants", json={"name": "acme"}, headers={"X-Request-Id": "deploy-42/a"})
    assert given.headers["X-Request-Id"] == "deploy-42/a"
    generated = api.call("POST", "/v1/tenants", json={"name": "globex"})
    assert len(generated.headers["X-Request-Id"]) == 32
    for unusable in (b"has space", b"x" * 65, b"", b"t\xe9", b"a\x7fb"):
        answered = api.call("GET", "/v1/whoami", headers={"X-Request-Id": unusable})
        assert answered.headers["X-Request-Id"] != unusable.decode("latin-1")
        assert len(answered.headers["X-Request-Id"]) == 32
    assert [row.request_id for row in _rows(api)] == ["deploy-42/a", generated.headers["X-Request-Id"]]
