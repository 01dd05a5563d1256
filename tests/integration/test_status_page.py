"""The status page in a real browser (Debian's chromium driven by Playwright) against a real
``anycastlb control`` and, for the key sentence, a real edge following it.

Sentences: the pages (PoPs, load balancers, usage) render for the admin and for a tenant; a tenant
sees nothing of another tenant (not in the HTML, not in the JSON, and a direct URL to its load
balancer is a 404); a bad
token gets a clear error; a hostile text from a PoP is shown as text; and a backend killed behind
a running edge is shown down within 5 s, without a reload.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anycastlb.lab.ports import free_port
from tests.support.control_plane import ADMIN_TOKEN, ControlProcess, listener, spec
from tests.support.controlled_edge import ControlledEdge

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
SHOWN_DOWN_WITHIN = 5.0  # the promise, from the kill to the page
_POOL = "127.78.0.0/24"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "status-page.png"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401, PLC0415 - optional: only this test drives a browser
    except ImportError:
        return "the Python package playwright (python3 -m pip install playwright)"
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return "Debian's chromium (apt-get install -y chromium)"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is missing: CI must run the status page's browser tests")
        pytest.skip(f"{missing} is missing")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=["--no-sandbox"],
        )
        yield launched
        launched.close()


def _sign_in(browser: Any, url: str, token: str) -> Any:
    page = browser.new_context(viewport={"width": 1100, "height": 620}).new_page()
    page.goto(f"{url}/status")
    assert page.url.endswith("/status/sign-in")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/status/pops")
    return page


def _tcp_backend(port: int) -> subprocess.Popen[bytes]:
    """A node that accepts and closes connections; SIGKILL is how it dies."""
    code = (
        "import socket\n"
        f"s = socket.create_server(('127.0.0.1', {port}))\n"
        "while True:\n"
        "    c, _ = s.accept(); c.close()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.02)
        else:
            return process


def test_each_viewer_sees_only_its_own_and_a_bad_token_is_told(tmp_path: Path, browser: Any) -> None:
    with ControlProcess(tmp_path) as control:
        with control.client() as admin:
            admin.post("/v1/pools", json={"name": "lab", "networks": [_POOL]}).raise_for_status()
            tokens = {}
            for tenant in ("acme", "globex"):
                admin.post("/v1/tenants", json={"name": tenant}).raise_for_status()
                tokens[tenant] = admin.post(f"/v1/tenants/{tenant}/tokens", json={}).json()["secret"]
            pop_token = admin.post("/v1/pops", json={"name": "fra"}).json()["token"]["secret"]
        ids, vips = {}, {}
        for tenant, name in (("acme", "web"), ("globex", "hidden-shop")):
            with control.client(tokens[tenant]) as client:
                created = client.post(f"/v1/tenants/{tenant}/loadbalancers", json=spec(name))
                assert created.status_code == 201, created.text
                ids[tenant], vips[tenant] = created.json()["id"], created.json()["addresses"][0]
        hostile = '<img src=x onerror="document.title=1">pwned'
        with control.client(pop_token) as pop:
            pop.put(
                "/v1/pops/fra/status",
                json={
                    "pop": "fra",
                    "applied_version": 1,
                    "problems": [
                        {"message": f"acme {hostile}", "load_balancer": ids["acme"]},
                        {"message": "globex-only trouble", "load_balancer": ids["globex"]},
                    ],
                    "usage": {
                        "epoch": "e1",
                        "sequence": 1,
                        "listeners": [
                            {
                                "listener": f"{tenant}-443",
                                "load_balancer": ids[tenant],
                                "address": vips[tenant],
                                "port": 443,
                                "bytes_in": bytes_in,
                                "bytes_out": 2 * bytes_in,
                                "connections": 3,
                            }
                            for tenant, bytes_in in (("acme", 2048), ("globex", 5 << 20))
                        ],
                    },
                },
            ).raise_for_status()

        # a bad token: a clear error, no cookie
        page = browser.new_context().new_page()
        page.goto(f"{control.url}/status/sign-in")
        page.fill("#token", "alb_tenant_nope_wrong")
        with page.expect_response(f"{control.url}/status/sign-in") as answer:
            page.click("button[type=submit]")
        assert answer.value.status == 401
        assert "That token was not accepted: unknown or revoked token" in page.inner_text(".error")
        assert not [c for c in page.context.cookies() if c["name"] == "anycastlb_status"]

        # a tenant: its own only, in HTML and JSON; another tenant's URL is 404
        acme = _sign_in(browser, control.url, tokens["acme"])
        (cookie,) = [c for c in acme.context.cookies() if c["name"] == "anycastlb_status"]
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/status")
        assert "fra" in acme.inner_text("table.pops")
        problems = acme.inner_text("table.pops")
        assert f"acme/web: acme {hostile}" in problems  # shown as text, not run
        assert acme.title() != "1"
        acme.click("text=Load balancers")
        acme.wait_for_url(f"{control.url}/status/load-balancers")
        assert "acme/web" in acme.inner_text("table.lbs")
        for url in (
            "/status/pops",
            "/status/load-balancers",
            "/status/data/pops",
            "/status/data/load-balancers",
        ):
            body = acme.request.get(f"{control.url}{url}").text()
            assert "globex" not in body and "hidden-shop" not in body, url
        for url in (
            "/status/load-balancers/globex/hidden-shop",
            "/status/data/load-balancers/globex/hidden-shop",
        ):
            assert acme.request.get(f"{control.url}{url}").status == 404, url
        assert acme.goto(f"{control.url}/status/load-balancers/globex/hidden-shop").status == 404
        assert acme.request.get(f"{control.url}/status/data/load-balancers/acme/web").status == 200
        acme.click("text=Usage")
        acme.wait_for_url(f"{control.url}/status/usage")
        assert "2.0 KiB" in acme.inner_text(f"tr[data-usage='acme/web/{vips['acme']}']")
        assert acme.locator("table.tenants").count() == 0  # totals per tenant: the admin's
        acme.click("text=1h")
        acme.wait_for_url(f"{control.url}/status/usage?window=1h")
        assert "acme/web" in acme.inner_text("table.usage")
        for url in ("/status/usage", "/status/data/usage?window=30d"):
            body = acme.request.get(f"{control.url}{url}").text()
            assert "globex" not in body and "hidden-shop" not in body and vips["globex"] not in body, url

        # the admin: everything
        root = _sign_in(browser, control.url, ADMIN_TOKEN)
        assert "globex/hidden-shop: globex-only trouble" in root.inner_text("table.pops")
        root.goto(f"{control.url}/status/load-balancers")
        assert {"acme/web", "globex/hidden-shop"} <= set(root.inner_text("table.lbs").split())
        root.goto(f"{control.url}/status/usage")
        assert "5.0 MiB" in root.inner_text(f"tr[data-usage='globex/hidden-shop/{vips['globex']}']")
        assert {"acme", "globex"} <= set(root.inner_text("table.tenants").split())
        csp = root.request.get(f"{control.url}/status/pops").headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp

        # sign-out ends the session
        acme.goto(f"{control.url}/status/pops")
        acme.click("text=Sign out")
        acme.wait_for_url(f"{control.url}/status/sign-in")
        acme.goto(f"{control.url}/status/pops")
        assert acme.url.endswith("/status/sign-in")
        assert acme.request.get(f"{control.url}/status/data/pops").status == 401


def test_a_backend_killed_behind_a_running_edge_is_shown_down_within_5_s_without_a_reload(
    tmp_path: Path, browser: Any
) -> None:
    ports = [free_port(), free_port()]
    nodes = [_tcp_backend(port) for port in ports]
    (tmp_path / "cp").mkdir()
    (tmp_path / "edge").mkdir()
    try:
        with ControlProcess(tmp_path / "cp") as control:
            with control.client() as admin:
                admin.post("/v1/pools", json={"name": "lab", "networks": [_POOL]}).raise_for_status()
                admin.post("/v1/tenants", json={"name": "acme"}).raise_for_status()
                token = admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"]
                pop_token = admin.post("/v1/pops", json={"name": "fra"}).json()["token"]["secret"]
            health = {"type": "tcp", "interval": "200ms", "timeout": "100ms", "rise": 2, "fall": 2}
            backends = tuple(("127.0.0.1", port) for port in ports)
            body = spec(
                "web", listeners=[listener(free_port(), backends, proxy_protocol="none", health=health)]
            )
            with control.client(token) as client:
                assert client.post("/v1/tenants/acme/loadbalancers", json=body).status_code == 201
            with ControlledEdge(tmp_path / "edge", control.url, pop_token):
                page = _sign_in(browser, control.url, token)
                page.goto(f"{control.url}/status/load-balancers/acme/web")
                rows = [f"tr[data-backend='127.0.0.1:{port}']" for port in ports]
                for row in rows:  # the edge applied it, checked both and reported
                    page.wait_for_selector(f"{row}.up", timeout=20_000)
                page.evaluate("window.notReloaded = true")

                nodes[1].kill()
                killed = time.monotonic()
                page.wait_for_selector(f"{rows[1]}.down", timeout=SHOWN_DOWN_WITHIN * 1000)
                took = time.monotonic() - killed
                print(f"backend killed -> shown down in {took * 1000:.0f} ms")
                assert took <= SHOWN_DOWN_WITHIN
                assert page.evaluate("window.notReloaded === true")  # refreshed in place
                assert "down: " in page.inner_text(rows[1])  # the reason of the transition
                assert page.locator(f"{rows[0]}.up").count() == 1
                shot = page.screenshot(full_page=True)
                (tmp_path / "status-page.png").write_bytes(shot)
                if os.environ.get("ANYCASTLB_UPDATE_SCREENSHOT") == "1":
                    SCREENSHOT.write_bytes(shot)
    finally:
        for node in nodes:
            node.kill()
            node.wait()
