"""A PoP's problems reach a tenant only when they name that tenant's load balancer by id; names,
addresses and ids that merely appear in a message never decide (each test on SQLite and
PostgreSQL, and through the CLI against a real control plane process)."""

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from anycastlb.cli import app
from tests.support.control_plane import ADMIN_TOKEN, ControlApi, ControlProcess, spec

pytestmark = pytest.mark.integration


def _two_tenants(api: ControlApi) -> tuple[str, dict[str, Any], str, dict[str, Any], str]:
    """acme with a load balancer named ``a`` (a substring of almost any line), globex with one
    named ``secret``, and PoP ams: (acme token, acme's lb, globex token, globex's lb, ams token)."""
    api.pool("platform", "203.0.113.0/28")
    acme, globex = api.tenant("acme"), api.tenant("globex")
    ams = api.pop("ams")
    mine = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("a"))
    theirs = api.ok("POST", "/v1/tenants/globex/loadbalancers", globex, json=spec("secret"))
    return acme, mine, globex, theirs, ams


def _problem(lb: dict[str, Any], message: str, port: int = 443) -> dict[str, Any]:
    return {
        "kind": "listener_unbound",
        "message": message,
        "load_balancer": lb["id"],
        "listener": {"address": lb["addresses"][0], "port": port, "protocol": "tcp"},
    }


def _report(ams: str, api: ControlApi, problems: list[Any]) -> None:
    api.ok("PUT", "/v1/pops/ams/status", ams, json={"pop": "ams", "applied_version": 1, "problems": problems})


def _status_problems(api: ControlApi, tenant: str, token: str, name: str) -> list[dict[str, Any]]:
    status = api.ok("GET", f"/v1/tenants/{tenant}/loadbalancers/{name}/status", token)
    (ams,) = [pop for pop in status["pops"] if pop["pop"] == "ams"]
    return list(ams["problems"])


def test_a_load_balancer_named_a_sees_only_problems_naming_its_id(api: ControlApi) -> None:
    acme, mine, globex, theirs, ams = _two_tenants(api)
    their_line = (
        f"{theirs['addresses'][0]} port 443/tcp is not served: a squatter has it (lb a, {mine['id']})"
    )
    _report(
        ams,
        api,
        [
            _problem(theirs, their_line),
            _problem(mine, "port 443 is not served: address in use"),
            {"kind": "version_rejected", "message": f"version 9 rejected: a listener of {mine['id']} is bad"},
        ],
    )

    assert [p["message"] for p in _status_problems(api, "acme", acme, "a")] == [
        "port 443 is not served: address in use"
    ]
    assert [p["message"] for p in _status_problems(api, "globex", globex, "secret")] == [their_line]


def test_the_admin_sees_every_problem_in_the_pop_list_and_tenants_none(api: ControlApi) -> None:
    acme, mine, _globex, theirs, ams = _two_tenants(api)
    problems = [_problem(theirs, "globex's"), _problem(mine, "acme's"), {"message": "BGP session down"}]
    _report(ams, api, problems)

    (admin_view,) = [pop for pop in api.ok("GET", "/v1/pops") if pop["name"] == "ams"]
    assert [(p["load_balancer"], p["message"]) for p in admin_view["problems"]] == [
        (theirs["id"], "globex's"),
        (mine["id"], "acme's"),
        (None, "BGP session down"),
    ]
    assert api.ok("GET", "/v1/pops/ams", ams)["problems"] == admin_view["problems"]  # the PoP itself
    (tenant_view,) = [pop for pop in api.ok("GET", "/v1/pops", acme) if pop["name"] == "ams"]
    assert tenant_view["problems"] == []


def test_plain_lines_from_a_previous_release_pop_are_accepted_and_shown_to_the_admin_only(
    api: ControlApi,
) -> None:
    acme, mine, _globex, _theirs, ams = _two_tenants(api)
    line = f"load balancer {mine['id']}: listener acme-a-443 is not served: in use"
    _report(ams, api, [line])

    (admin_view,) = [pop for pop in api.ok("GET", "/v1/pops") if pop["name"] == "ams"]
    assert [(p["kind"], p["load_balancer"], p["message"]) for p in admin_view["problems"]] == [
        ("other", None, line)
    ]
    assert _status_problems(api, "acme", acme, "a") == []  # it names the id, but only as text


def test_a_problem_naming_a_listener_with_a_bad_address_is_refused_with_the_field_path(
    api: ControlApi,
) -> None:
    _acme, mine, _globex, _theirs, ams = _two_tenants(api)
    bad = {**_problem(mine, "x"), "listener": {"address": "not-an-ip", "port": 443}}
    answer = api.call(
        "PUT", "/v1/pops/ams/status", ams, json={"pop": "ams", "applied_version": 1, "problems": [bad]}
    )

    assert answer.status_code == 422
    assert "problems[0].listener.address" in answer.json()["detail"]


def test_the_cli_status_of_a_tenant_prints_its_own_problem_and_not_another_tenants(tmp_path: Path) -> None:
    with ControlProcess(tmp_path) as control:
        api = ControlApi(control.database)  # the same SQLite file: set up in-process, read over HTTP
        try:
            acme, mine, _globex, theirs, ams = _two_tenants(api)
            _report(ams, api, [_problem(theirs, "globex-only-detail"), _problem(mine, "acme-own-detail")])
        finally:
            api.close()
        env = {
            "ANYCASTLB_URL": control.url,
            "ANYCASTLB_TOKEN": acme,
            "ANYCASTLB_ADMIN_TOKEN": None,
            "COLUMNS": None,  # a pipe's 200 columns (see test_cli.run)
        }
        result = CliRunner().invoke(
            app, ["lb", "status", "a", "--tenant", "acme"], env=env, catch_exceptions=False
        )
        admin = CliRunner().invoke(
            app, ["pops", "list"], env={**env, "ANYCASTLB_TOKEN": ADMIN_TOKEN}, catch_exceptions=False
        )

    assert result.exit_code == 0, result.output
    assert "acme-own-detail" in result.output and "globex-only-detail" not in result.output
    assert admin.exit_code == 0, admin.output
    assert "globex-only-detail" in admin.output and "acme-own-detail" in admin.output
