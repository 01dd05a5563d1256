"""Issue 11, defect 4, through the real routes: a tenant's backends may not point at the PoP, the
platform or the control plane, in any spelling; private networks only where the admin allows them.

This control plane runs without the lab switch (the production default), listens on 192.0.2.10
and is told that 198.51.100.0/24 holds the PoPs (``--platform-network``).
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anycastlb.cli import app
from tests.support.control_plane import ADMIN_TOKEN, ControlApi, ControlProcess, listener, spec

pytestmark = pytest.mark.integration

PUBLIC_NODE = "192.0.2.77"  # a documentation address: an ordinary public node here


@pytest.fixture
def strict(database_url: str) -> Iterator[ControlApi]:
    control = ControlApi(
        database_url, allow_backend_networks=(), platform_networks=("198.51.100.0/24",), listen="192.0.2.10"
    )
    control.pool("platform", "203.0.113.0/28")
    yield control
    control.close()


def _lb(name: str, address: str, port: int = 30443) -> dict[str, object]:
    return spec(name, listeners=[listener(443, ((PUBLIC_NODE, 30443), (address, port)))])


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "rule loopback"),
        ("127.9.9.9", "rule loopback"),
        ("::1", "rule loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("169.254.169.254", "rule link-local"),
        ("fe80::1", "rule link-local"),
        ("fe80::1%eth0", "scope id"),
        ("::ffff:127.0.0.1", "write the IPv4 address 127.0.0.1"),
        ("::ffff:203.0.113.1", "write the IPv4 address 203.0.113.1"),
        ("203.0.113.5", "rule vip"),
        ("198.51.100.7", "rule platform-network"),
        ("192.0.2.10", "rule control-plane"),
        ("10.1.2.3", "rule private"),
        ("172.16.0.1", "rule private"),
        ("192.168.1.1", "rule private"),
        ("100.64.0.1", "rule private"),
        ("fd00::1", "rule private"),
    ],
)
def test_a_backend_pointing_at_the_platform_is_refused_naming_the_rule(
    strict: ControlApi, address: str, words: str
) -> None:
    acme = strict.tenant("acme")
    for method, path in (
        ("POST", "/v1/tenants/acme/loadbalancers"),
        ("PUT", "/v1/tenants/acme/loadbalancers/web"),
    ):
        response = strict.call(method, path, acme, json=_lb("web", address))
        assert response.status_code == 422, response.text
        assert words in response.text
        if "rule" in words:  # the policy's answer names the backend and says what to do
            assert address in response.text
            assert "listener port 443" in response.text
    assert strict.ok("GET", "/v1/tenants/acme/loadbalancers", acme) == []


def test_an_update_cannot_add_a_forbidden_backend_to_an_accepted_load_balancer(strict: ControlApi) -> None:
    acme = strict.tenant("acme")
    created = strict.ok(
        "PUT",
        "/v1/tenants/acme/loadbalancers/web",
        acme,
        json=spec("web", listeners=[listener(443, ((PUBLIC_NODE, 30443),))]),
    )
    response = strict.call(
        "PUT", "/v1/tenants/acme/loadbalancers/web", acme, json=_lb("web", "127.0.0.1", 9100)
    )
    assert response.status_code == 422, response.text
    assert "backend 127.0.0.1:9100 is a loopback address" in response.text
    assert strict.ok("GET", "/v1/tenants/acme/loadbalancers/web", acme)["version"] == created["version"]


def test_a_private_backend_is_accepted_only_inside_the_tenants_allow_list(strict: ControlApi) -> None:
    acme = strict.tenant("acme")
    strict.tenant("globex")
    refused = strict.call("POST", "/v1/tenants/acme/loadbalancers", acme, json=_lb("web", "10.1.2.3"))
    assert refused.status_code == 422, refused.text
    tenant = strict.ok("PATCH", "/v1/tenants/acme", json={"allowed_backend_networks": ["10.1.0.0/16"]})
    assert tenant["allowed_backend_networks"] == ["10.1.0.0/16"]
    strict.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=_lb("web", "10.1.2.3"))
    outside = strict.call("POST", "/v1/tenants/acme/loadbalancers", acme, json=_lb("api", "10.2.0.1"))
    assert outside.status_code == 422, outside.text
    assert "rule private" in outside.text
    loopback = strict.call("POST", "/v1/tenants/acme/loadbalancers", acme, json=_lb("lo", "127.0.0.1"))
    assert loopback.status_code == 422, loopback.text  # the allow-list lifts the private rule only
    globex = strict.call("GET", "/v1/tenants/globex")  # another tenant's list is its own
    assert globex.json()["allowed_backend_networks"] == []


@pytest.mark.parametrize(
    ("network", "words"),
    [
        ("127.0.0.0/8", "not inside a private range"),
        ("169.254.0.0/16", "not inside a private range"),
        ("203.0.113.0/24", "not inside a private range"),
        ("10.0.0.0/7", "not inside a private range"),
        ("10.1.0.0%1/16", "scope id"),
        ("0.0.0.0/0", "/0"),
    ],
)
def test_a_tenant_allow_list_holds_private_networks_only(
    strict: ControlApi, network: str, words: str
) -> None:
    strict.tenant("acme")
    response = strict.call("PATCH", "/v1/tenants/acme", json={"allowed_backend_networks": [network]})
    assert response.status_code == 422, response.text
    assert words in response.text
    created = strict.call("POST", "/v1/tenants", json={"name": "new", "allowed_backend_networks": [network]})
    assert created.status_code == 422, created.text


def test_the_cli_sets_a_tenants_allow_list_and_the_lab_switch_is_off_by_default(tmp_path: Path) -> None:
    with ControlProcess(tmp_path, allow_backend_networks=()) as control:

        def run(*args: str) -> str:
            env = {
                "ANYCASTLB_URL": control.url,
                "ANYCASTLB_TOKEN": ADMIN_TOKEN,
                "ANYCASTLB_TENANT": None,
                "COLUMNS": None,  # a pipe's 200 columns (see test_cli.run)
            }
            result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
            return f"exit {result.exit_code}\n{result.output}"

        assert run("pools", "create", "platform", "--network", "203.0.113.0/29").startswith("exit 0")
        assert run("tenants", "create", "acme").startswith("exit 0")
        lb = ("lb", "create", "web", "--tenant", "acme", "--port", "443", "--backend", "10.20.0.5:30443")
        refused = run(*lb)
        assert "rule private" in refused, refused
        updated = run("tenants", "update", "acme", "--allow-backend-network", "10.20.0.0/16", "-o", "json")
        assert json.loads(updated.split("\n", 1)[1])["allowed_backend_networks"] == ["10.20.0.0/16"]
        assert run(*lb).startswith("exit 0")
        scoped = run(
            "lb", "create", "api", "--tenant", "acme", "--port", "80", "--backend", "[fe80::1%eth0]:80"
        )
        assert not scoped.startswith("exit 0"), scoped
        itself = run("lb", "create", "cp", "--tenant", "acme", "--port", "80", "--backend", "127.0.0.1:9100")
        assert "rule control-plane" in itself, itself  # it listens on 127.0.0.1
        lo = run("lb", "create", "lo", "--tenant", "acme", "--port", "80", "--backend", "127.0.0.2:9100")
        assert "rule loopback" in lo, lo
        assert "allow-backend-network" not in control.log_path.read_text()  # no lab warning: none given
