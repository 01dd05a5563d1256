"""The status page's HTTP shell without a browser (each test on SQLite and PostgreSQL): sign-in
and its refusals, the cookie, what a tenant may fetch, and the headers every answer carries.
The browser itself (rendering, the refresh without reload) is tests/integration/test_status_page.py."""

import re
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from tests.support.control_plane import ADMIN_TOKEN, ControlApi, spec

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "http://testserver"}


def _browser(api: ControlApi) -> TestClient:
    return TestClient(api.app, base_url="http://testserver", follow_redirects=False)


def _sign_in(client: TestClient, token: str, **headers: str) -> httpx2.Response:
    form = client.get("/status/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    return client.post(
        "/status/sign-in", data={"csrf": csrf.group(1), "token": token}, headers=headers or ORIGIN
    )


def _world(api: ControlApi) -> dict[str, str]:
    api.pool("platform", "203.0.113.0/28")
    tokens = {"acme": api.tenant("acme"), "globex": api.tenant("globex"), "ams": api.pop("ams")}
    api.ok("POST", "/v1/tenants/acme/loadbalancers", tokens["acme"], json=spec("web"))
    theirs = api.ok("POST", "/v1/tenants/globex/loadbalancers", tokens["globex"], json=spec("hidden-shop"))
    tokens["globex_vip"] = theirs["addresses"][0]
    return tokens


def test_without_a_session_pages_send_to_the_sign_in_form_and_the_json_answers_401(api: ControlApi) -> None:
    client = _browser(api)
    page = client.get("/status/pops")
    assert (page.status_code, page.headers["location"]) == (303, "/status/sign-in")
    assert client.get("/status/data/pops").status_code == 401
    assert client.get("/status/data/load-balancers/acme/web").status_code == 401


def test_a_signed_in_tenant_gets_a_strict_cookie_and_sees_nothing_of_another_tenant(api: ControlApi) -> None:
    tokens = _world(api)
    client = _browser(api)
    signed_in = _sign_in(client, tokens["acme"])
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/status/pops")
    cookie = signed_in.headers["set-cookie"].lower()
    assert all(part in cookie for part in ("httponly", "samesite=strict", "path=/status"))
    assert "secure" not in cookie  # plain http here; https sets it

    for path in (
        "/status/pops",
        "/status/load-balancers",
        "/status/data/pops",
        "/status/data/load-balancers",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "globex" not in answer.text and "hidden-shop" not in answer.text, path
        assert tokens["globex_vip"] not in answer.text, path
    assert "acme/web" in client.get("/status/load-balancers").text
    for path in (
        "/status/load-balancers/globex/hidden-shop",
        "/status/data/load-balancers/globex/hidden-shop",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get("/status/data/load-balancers/acme/web").json()["load_balancer"]["row"]["name"] == "web"
    assert client.get("/v1/whoami").status_code == 401  # the cookie is no API credential


def test_the_admin_sees_every_tenants_load_balancers(api: ControlApi) -> None:
    _world(api)
    client = _browser(api)
    assert _sign_in(client, ADMIN_TOKEN).status_code == 303
    names = {
        (row["tenant"], row["name"])
        for row in client.get("/status/data/load-balancers").json()["load_balancers"]
    }
    assert names == {("acme", "web"), ("globex", "hidden-shop")}
    assert client.get("/status/load-balancers/globex/hidden-shop").status_code == 200


@pytest.mark.parametrize(
    ("token", "status", "says"),
    [
        ("alb_tenant_nope_wrong", 401, "That token was not accepted: unknown or revoked token"),
        ("", 401, "Paste a token first"),
        ("ams", 403, "A PoP credential cannot sign in"),
    ],
    ids=["unknown", "empty", "pop"],
)
def test_a_token_that_cannot_sign_in_is_told_why_and_gets_no_cookie(
    api: ControlApi, token: str, status: int, says: str
) -> None:
    tokens = _world(api)
    client = _browser(api)
    answer = _sign_in(client, tokens.get(token, token))
    assert answer.status_code == status
    assert says in answer.text
    assert "anycastlb_status=" not in answer.headers.get("set-cookie", "")


def test_a_sign_in_without_the_forms_csrf_value_or_from_another_site_is_refused(api: ControlApi) -> None:
    client = _browser(api)
    client.get("/status/sign-in")
    forged = client.post("/status/sign-in", data={"csrf": "guessed", "token": ADMIN_TOKEN}, headers=ORIGIN)
    assert forged.status_code == 403
    assert _sign_in(client, ADMIN_TOKEN, Origin="https://evil.example").status_code == 403
    assert _sign_in(client, ADMIN_TOKEN, Origin="null").status_code == 403
    assert client.get("/status/data/pops").status_code == 401


def test_a_revoked_token_ends_the_session_with_the_reason(api: ControlApi) -> None:
    api.ok("POST", "/v1/tenants", json={"name": "acme"})
    created = api.ok("POST", "/v1/tenants/acme/tokens", json={})
    client = _browser(api)
    assert _sign_in(client, created["secret"]).status_code == 303
    assert client.get("/status/pops").status_code == 200
    api.ok("DELETE", f"/v1/tenants/acme/tokens/{created['token_id']}")
    api.runtime.forget_tokens()
    page = client.get("/status/pops")
    assert page.status_code == 401
    assert "no longer accepted" in page.text
    assert client.get("/status/data/pops").status_code == 401


def test_sign_out_clears_the_cookie(api: ControlApi) -> None:
    client = _browser(api)
    assert _sign_in(client, ADMIN_TOKEN).status_code == 303
    csrf = client.cookies["anycastlb_status_csrf"]
    out = client.post("/status/sign-out", data={"csrf": csrf}, headers=ORIGIN)
    assert (out.status_code, out.headers["location"]) == (303, "/status/sign-in")
    assert client.get("/status/data/pops").status_code == 401


def test_every_answer_carries_a_strict_content_security_policy_and_the_script_is_served_here(
    api: ControlApi,
) -> None:
    client = _browser(api)
    _sign_in(client, ADMIN_TOKEN)
    for path in ("/status/sign-in", "/status/pops", "/status/data/pops", "/status/static/status.js"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in client.get("/status/pops").text.replace(
        '<script src="/status/static/status.js"', ""
    )
    assert client.get("/status/static/../app.py").status_code == 404
    assert client.get("/status/static/other.js").status_code == 404
    assert not [path for path in api.app.openapi()["paths"] if path.startswith("/status")]


def test_over_https_the_session_cookie_is_secure(api: ControlApi) -> None:
    client = TestClient(api.app, base_url="https://testserver", follow_redirects=False)
    signed_in = _sign_in(client, ADMIN_TOKEN, Origin="https://testserver")
    assert signed_in.status_code == 303
    assert "secure" in signed_in.headers["set-cookie"].lower()


def _usage_report(api: ControlApi, pop_token: str, *lbs: tuple[dict[str, Any], tuple[int, int, int]]) -> None:
    """A PoP's status report with a usage block, as tests/integration/control/test_usage_api.py sends."""
    listeners = [
        {
            "listener": f"{lb['id']}-443",
            "load_balancer": lb["id"],
            "address": lb["addresses"][0],
            "port": 443,
            "bytes_in": counts[0],
            "bytes_out": counts[1],
            "connections": counts[2],
        }
        for lb, counts in lbs
    ]
    usage = {"epoch": "e1", "sequence": 1, "listeners": listeners}
    api.ok("PUT", "/v1/pops/ams/status", pop_token, json={"pop": "ams", "applied_version": 1, "usage": usage})


def test_the_usage_page_shows_the_admin_every_tenants_numbers_and_a_tenant_only_its_own(
    api: ControlApi,
) -> None:
    api.pool("platform", "203.0.113.0/28")
    acme, globex = api.tenant("acme"), api.tenant("globex")
    web = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    shop = api.ok("POST", "/v1/tenants/globex/loadbalancers", globex, json=spec("hidden-shop"))
    gone = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("gone"))
    _usage_report(api, api.pop("ams"), (web, (1536, 3 << 30, 1234)), (shop, (5, 6, 1)), (gone, (7, 8, 2)))
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/gone", acme)
    web_vip, shop_vip = web["addresses"][0], shop["addresses"][0]

    admin = _browser(api)
    assert _sign_in(admin, ADMIN_TOKEN).status_code == 303
    data = admin.get("/status/data/usage", params={"window": "1h"}).json()["usage"]
    assert data["span"] == "1h"
    assert {
        (row["tenant"], row["load_balancer"], row["vip"], row["deleted"]): (
            row["total"]["bytes_in"],
            row["total"]["bytes_out"],
            row["total"]["connections"],
        )
        for row in data["rows"]
    } == {
        ("acme", "gone", gone["addresses"][0], True): (7, 8, 2),
        ("acme", "web", web_vip, False): (1536, 3 << 30, 1234),
        ("globex", "hidden-shop", shop_vip, False): (5, 6, 1),
    }
    assert [(item["tenant"], item["total"]["bytes_in"]) for item in data["tenants"]] == [
        ("acme", 1543),
        ("globex", 5),
    ]
    page = admin.get("/status/usage")
    assert page.status_code == 200
    assert 'data-refresh="/status/data/usage?window=24h"' in page.text  # the default window
    assert all(text in page.text for text in ("1.5 KiB", "3.0 GiB", "1,234", "globex/hidden-shop", shop_vip))
    assert '<a href="/status/usage" aria-current="page">Usage</a>' in page.text
    hostile = admin.get("/status/usage", params={"window": '"><script>x</script>'})
    assert "<script>x" not in hostile.text and 'data-refresh="/status/data/usage?window=24h"' in hostile.text

    tenant = _browser(api)
    assert _sign_in(tenant, acme).status_code == 303
    for path in ("/status/usage", "/status/usage?window=30d", "/status/data/usage"):
        answer = tenant.get(path)
        assert answer.status_code == 200, path
        assert (
            "globex" not in answer.text and "hidden-shop" not in answer.text and shop_vip not in answer.text
        ), path
        assert "acme/web" in answer.text and "acme/gone" in answer.text, path
    mine = tenant.get("/status/data/usage").json()["usage"]
    assert [(row["load_balancer"], row["total"]["connections"]) for row in mine["rows"]] == [
        ("gone", 2),
        ("web", 1234),
    ]
    assert mine["tenants"] == []
    assert _browser(api).get("/status/data/usage").status_code == 401
