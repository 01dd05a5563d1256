"""``anycastlb tenants|pools|ips|lb|pops`` run through typer's CliRunner against a real
``anycastlb control`` process on loopback (SQLite)."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from anycastlb.cli import app
from anycastlb.lab.ports import free_port
from tests.support.control_plane import ADMIN_TOKEN, ControlProcess

pytestmark = pytest.mark.integration

SPEC_YAML = """\
name: web
listeners:
  - port: 443
    proxy_protocol: v2
    backends:
      - {address: 10.0.0.11, port: 30443}
      - {address: 10.0.0.12, port: 30443}
    health: {type: tcp, interval: 500ms}
"""


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ControlProcess]:
    with ControlProcess(tmp_path) as process:
        yield process


def run(url: str, *args: str, token: str | None = ADMIN_TOKEN) -> Result:
    """The CLI as a user runs it: URL and token from the environment, nothing else inherited."""
    env = {
        "ANYCASTLB_URL": url,
        "ANYCASTLB_TOKEN": token,
        "ANYCASTLB_ADMIN_TOKEN": None,
        "ANYCASTLB_TENANT": None,
        # Output to a pipe (200 columns) whatever the runner's terminal: pytest imports GNU readline,
        # which exports COLUMNS=80 to every process pytest starts, pytest-xdist's workers included.
        "COLUMNS": None,
    }
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def ok(url: str, *args: str, token: str | None = ADMIN_TOKEN) -> Result:
    result = run(url, *args, token=token)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
    return result


def platform(control: ControlProcess) -> str:
    """A pool, a PoP and tenant acme; returns acme's token (from the CLI's JSON output)."""
    ok(control.url, "pools", "create", "platform-v4", "--network", "203.0.113.0/29")
    ok(control.url, "pops", "create", "fra")
    ok(control.url, "tenants", "create", "acme")
    created = ok(control.url, "tenants", "token", "create", "acme", "-o", "json")
    return str(json.loads(created.stdout)["secret"])


def test_the_admin_creates_a_pool_a_tenant_a_token_and_a_pop(control: ControlProcess) -> None:
    pool = ok(
        control.url,
        "pools",
        "create",
        "platform-v4",
        "--network",
        "203.0.113.0/29",
        "--reserved",
        "203.0.113.7",
    )
    assert "203.0.113.0/29" in pool.stdout
    ok(control.url, "tenants", "create", "acme")
    token = ok(control.url, "tenants", "token", "create", "acme", "--description", "ci")
    secret = token.stdout.splitlines()[1]
    assert secret.startswith("alb_tenant_")
    assert "will not be shown again" in token.stdout
    pop = ok(control.url, "pops", "create", "fra")
    assert "alb_pop_" in pop.stdout
    assert "will not be shown again" in pop.stdout

    assert "platform-v4" in ok(control.url, "pools", "list").stdout
    assert "acme" in ok(control.url, "tenants", "list").stdout
    assert "ci" in ok(control.url, "tenants", "token", "list", "acme").stdout
    pops = ok(control.url, "pops", "list").stdout
    assert "fra" in pops
    assert "no report yet" in pops
    assert json.loads(ok(control.url, "pops", "desired", "fra").stdout)["pop"] == "fra"
    assert ok(control.url, "tenants", "show", "acme", token=secret).exit_code == 0


def test_a_tenant_applies_a_spec_file_and_sees_its_vip_in_lb_list_and_json(
    control: ControlProcess, tmp_path: Path
) -> None:
    acme = platform(control)
    spec = tmp_path / "web.yaml"
    spec.write_text(SPEC_YAML)

    applied = ok(control.url, "lb", "apply", "-f", str(spec), token=acme)
    assert "created web version" in applied.stdout
    listed = ok(control.url, "lb", "list", token=acme).stdout
    assert "web" in listed
    assert "203.0.113.1" in listed

    machine = json.loads(ok(control.url, "lb", "list", "-o", "json", token=acme).stdout)
    with control.client(acme) as http:
        assert machine == http.get("/v1/tenants/acme/loadbalancers").json()  # the API's JSON, unchanged
    assert machine[0]["addresses"] == ["203.0.113.1"]

    again = ok(control.url, "lb", "apply", "-f", str(spec), token=acme)
    assert f"applied web version {machine[0]['version']}" in again.stdout  # the same spec changes nothing
    status = ok(control.url, "lb", "status", "web", token=acme).stdout
    assert "fra" in status
    assert "not ready" in status
    assert "10.0.0.12:30443" in ok(control.url, "lb", "show", "web", token=acme).stdout


def test_a_malformed_spec_file_is_reported_with_field_paths_before_any_request(tmp_path: Path) -> None:
    spec = tmp_path / "web.yaml"
    spec.write_text(SPEC_YAML.replace("port: 443", "port: 70000").replace("backends:", "backnds:"))
    nobody = f"http://127.0.0.1:{free_port()}"  # a request would fail with exit 1 and "cannot reach"

    result = run(nobody, "lb", "apply", "-f", str(spec))
    assert result.exit_code == 2
    assert "listeners[0] (port 70000).port: Input should be less than or equal to 65535" in result.stderr
    assert "listeners[0] (port 70000).backnds: unknown field" in result.stderr
    assert "cannot reach" not in result.stderr


def test_a_conflict_is_printed_with_the_apis_detail_and_exits_1(control: ControlProcess) -> None:
    ok(control.url, "tenants", "create", "acme")
    result = run(control.url, "tenants", "create", "acme")
    assert result.exit_code == 1
    assert result.stderr == "error: tenant 'acme' already exists (HTTP 409)\n"


def test_a_tenant_running_an_admin_command_gets_the_apis_403(control: ControlProcess) -> None:
    acme = platform(control)
    result = run(control.url, "pools", "create", "mine", "--network", "198.51.100.0/24", token=acme)
    assert result.exit_code == 1
    assert result.stderr == "error: this needs the admin token (HTTP 403)\n"


def test_an_unknown_token_is_told_which_variable_to_fix(control: ControlProcess) -> None:
    unknown = "alb_tenant_000000000000_" + "x" * 43
    result = run(control.url, "pools", "list", token=unknown)
    assert result.exit_code == 1
    assert "refused the token from ANYCASTLB_TOKEN (unknown or revoked token)" in result.stderr
    assert "ANYCASTLB_ADMIN_TOKEN" in result.stderr


def test_an_unreachable_control_plane_gets_a_friendly_message() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    result = run(nobody, "pools", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach the control plane at {nobody}: ")
    assert "is `anycastlb control` running?" in result.stderr


def test_the_admin_names_the_tenant_of_tenant_commands(control: ControlProcess) -> None:
    platform(control)
    result = run(control.url, "lb", "list")
    assert result.exit_code == 2
    assert "as the admin, name the tenant to act for with --tenant NAME" in result.stderr
    assert json.loads(ok(control.url, "lb", "list", "--tenant", "acme", "-o", "json").stdout) == []


def test_a_tenant_reserves_and_releases_an_ip(control: ControlProcess) -> None:
    acme = platform(control)
    reserved = json.loads(
        ok(control.url, "ips", "reserve", "--family", "ipv4", "-o", "json", token=acme).stdout
    )
    address = reserved["address"]
    assert reserved["static"] is True
    assert address in ok(control.url, "ips", "list", token=acme).stdout
    everyone = ok(control.url, "ips", "list", "--all").stdout
    assert address in everyone
    assert "acme" in everyone

    assert ok(control.url, "ips", "release", address, token=acme).stdout == f"released {address}\n"
    assert json.loads(ok(control.url, "ips", "list", "-o", "json", token=acme).stdout) == []


def test_lb_create_builds_one_listener_per_port_and_lb_delete_removes_it(control: ControlProcess) -> None:
    acme = platform(control)
    ok(
        control.url,
        *("lb", "create", "api", "--port", "443", "--port", "80", "--backend", "10.0.0.11:30443"),
        *("--backend", "[2001:db8::12]:30443", "--proxy-protocol", "v1", "--pop", "fra"),
        token=acme,
    )
    created = json.loads(ok(control.url, "lb", "show", "api", "-o", "json", token=acme).stdout)
    listeners = created["spec"]["listeners"]
    assert [listener["port"] for listener in listeners] == [443, 80]
    assert {listener["proxy_protocol"] for listener in listeners} == {"v1"}
    assert [backend["address"] for backend in listeners[1]["backends"]] == ["10.0.0.11", "2001:db8::12"]
    assert created["spec"]["pops"] == ["fra"]

    taken = run(control.url, "lb", "create", "api", "--port", "443", "--backend", "10.0.0.11:1", token=acme)
    assert taken.exit_code == 1
    assert "already exists" in taken.stderr
    assert ok(control.url, "lb", "delete", "api", token=acme).stdout == "deleted load balancer api\n"
    assert json.loads(ok(control.url, "lb", "list", "-o", "json", token=acme).stdout) == []


def test_pools_set_changes_only_what_is_given(control: ControlProcess) -> None:
    ok(control.url, "pools", "create", "platform-v4", "--network", "203.0.113.0/29")
    changed = json.loads(
        ok(control.url, "pools", "set", "platform-v4", "--no-auto-assign", "-o", "json").stdout
    )
    assert changed["auto_assign"] is False
    nothing = run(control.url, "pools", "set", "platform-v4")
    assert nothing.exit_code == 2
    assert "nothing to change" in nothing.stderr
    assert ok(control.url, "pools", "delete", "platform-v4").stdout == "deleted pool platform-v4\n"


def test_a_tenant_token_is_created_with_a_lifetime_and_rotated_without_grace(control: ControlProcess) -> None:
    platform(control)
    created = json.loads(
        ok(control.url, "tenants", "token", "create", "acme", "--ttl", "1d", "-o", "json").stdout
    )
    assert created["expires_at"] is not None
    listed = ok(control.url, "tenants", "token", "list", "acme")
    assert "EXPIRES" in listed.stdout and "never" in listed.stdout  # platform()'s token has no lifetime

    rotated = ok(
        control.url, "tenants", "token", "rotate", "acme", created["token_id"], "--grace", "0", "-o", "json"
    )
    new_secret = json.loads(rotated.stdout)["secret"]

    refused = run(control.url, "lb", "list", token=created["secret"])
    assert refused.exit_code == 1 and "expired" in refused.stderr
    ok(control.url, "lb", "list", token=new_secret)


def test_a_lifetime_that_is_not_a_duration_is_refused_before_any_request(control: ControlProcess) -> None:
    result = run(control.url, "tenants", "token", "create", "acme", "--ttl", "soon")
    assert result.exit_code == 2
    assert "--ttl 'soon' is not a duration; write e.g. 90d" in result.stderr


def test_the_admin_rotates_a_pops_credential_and_both_work_during_the_grace(control: ControlProcess) -> None:
    created = json.loads(ok(control.url, "pops", "create", "fra", "-o", "json").stdout)
    rotated = json.loads(
        ok(control.url, "pops", "rotate-credential", "fra", "--grace", "10m", "-o", "json").stdout
    )

    for secret in (created["token"]["secret"], rotated["secret"]):
        with control.client(secret) as pop:
            assert pop.get("/v1/pops/fra/desired").status_code == 200
    listed = ok(control.url, "pops", "credentials", "fra")
    assert created["token"]["token_id"] in listed.stdout and rotated["token_id"] in listed.stdout
