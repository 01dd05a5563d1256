"""What the API promises around its routes: who may read the schema, how a 422 names a field, the
long-poll cap, and ETag / If-Match (docs/control-plane.md, "Errors" and "ETag and If-Match")."""

import pytest

from tests.support.control_plane import ADMIN_TOKEN, ControlApi, listener, spec

pytestmark = pytest.mark.integration

LB = "/v1/tenants/acme/loadbalancers"


def _tenant(api: ControlApi) -> str:
    api.pool("platform-v4", "203.0.113.0/29")
    api.pop("fra")
    return api.tenant("acme")


# ---- the schema ------------------------------------------------------------------------------


def test_the_schema_needs_a_valid_token_of_any_kind(api: ControlApi) -> None:
    acme = _tenant(api)
    fra = api.pop("par")
    assert api.call("GET", "/openapi.json", token=None).status_code == 401
    assert api.call("GET", "/openapi.json", token="alb_tenant_nobody_x").status_code  # noqa: S106 == 401
    for token in (ADMIN_TOKEN, acme, fra):
        schema = api.ok("GET", "/openapi.json", token)
        assert "/v1/tenants/{tenant}/loadbalancers/{name}" in schema["paths"]
        assert "/openapi.json" not in schema["paths"]


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_there_is_no_docs_page_that_loads_scripts_from_a_cdn(api: ControlApi, page: str) -> None:
    assert api.call("GET", page, token=None).status_code == 404
    assert api.call("GET", page).status_code == 404


# ---- 422: the field as the user wrote it -----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (spec(listeners=[listener(70000)]), "listeners[0].port", "less than or equal to 65535"),
        (spec(listeners=[{**listener(), "port": "x"}]), "listeners[0].port", "valid integer"),
        (
            spec(listeners=[listener(443), listener(80, backends=(("10.0.0.1", 0),))]),
            "listeners[1].backends[0].port",
            "greater than or equal to 1",
        ),
    ],
    ids=["port-too-high", "port-not-a-number", "backend-port-zero"],
)
def test_a_422_names_the_field_as_written_and_only_it(
    api: ControlApi, body: dict[str, object], field: str, message: str
) -> None:
    """No ``body.`` prefix, and no ``listeners: Tuple should have at least 1 item after validation``
    echoing the bad item (pydantic counts a tuple after dropping its failed items)."""
    acme = _tenant(api)
    answer = api.call("POST", LB, acme, json=body)
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert [(error["field"], error["part"]) for error in errors] == [(field, "body")]
    assert message in errors[0]["msg"]
    assert answer.json()["detail"].startswith(f"{field}: ")
    assert "body." not in answer.json()["detail"] and "Tuple" not in answer.json()["detail"]


def test_an_empty_listener_list_is_still_refused_for_its_length(api: ControlApi) -> None:
    acme = _tenant(api)
    answer = api.call("POST", LB, acme, json={"name": "web", "listeners": []})
    assert answer.status_code == 422
    assert [error["field"] for error in answer.json()["errors"]] == ["listeners"]


def test_query_and_header_errors_say_where_the_field_is(api: ControlApi) -> None:
    acme = _tenant(api)
    query = api.call("GET", "/v1/pops/fra/desired", params={"since": -1})
    assert query.status_code == 422
    assert query.json()["detail"].startswith("query parameter since: ")
    assert query.json()["errors"][0] | {"msg": ""} == {
        "field": "since",
        "part": "query",
        "loc": ["since"],
        "msg": "",
    }
    header = api.call("PUT", f"{LB}/web", acme, json=spec(), headers={"If-Match": "seven"})
    assert header.status_code == 422
    assert header.json()["detail"].startswith("header If-Match: ")


# ---- the long poll's timeout -----------------------------------------------------------------


def test_a_watch_timeout_above_the_maximum_is_capped_and_the_answer_says_so(api: ControlApi) -> None:
    _tenant(api)
    current = api.ok("GET", "/v1/pops/fra/desired")["version"]
    behind = api.call("GET", "/v1/pops/fra/desired", params={"watch": 1, "since": current - 1, "timeout": 61})
    assert behind.status_code == 200
    assert behind.headers["Anycastlb-Watch-Timeout"] == "60"
    assert behind.json()["version"] == current
    short = api.call("GET", "/v1/pops/fra/desired", params={"watch": 1, "since": current, "timeout": 0.2})
    assert short.headers["Anycastlb-Watch-Timeout"] == "0.2"
    assert api.call("GET", "/v1/pops/fra/desired", params={"timeout": 3600}).status_code == 200


def test_the_schema_documents_the_cap_and_no_upper_bound(api: ControlApi) -> None:
    operation = api.app.openapi()["paths"]["/v1/pops/{pop}/desired"]["get"]
    (timeout,) = [parameter for parameter in operation["parameters"] if parameter["name"] == "timeout"]
    assert "maximum" not in timeout["schema"]
    assert "capped at 60" in timeout["description"]
    assert "Anycastlb-Watch-Timeout" in operation["responses"]["200"]["headers"]


# ---- ETag and If-Match -----------------------------------------------------------------------


def test_every_answer_about_one_load_balancer_carries_its_version_as_an_etag(api: ControlApi) -> None:
    acme = _tenant(api)
    created = api.call("POST", LB, acme, json=spec())
    version = created.json()["version"]
    assert created.headers["ETag"] == f'"{version}"'
    assert api.call("GET", f"{LB}/web", acme).headers["ETag"] == f'"{version}"'
    assert api.call("PUT", f"{LB}/web", acme, json=spec()).headers["ETag"] == f'"{version}"'


@pytest.mark.parametrize(
    ("if_match", "applies"),
    [
        ('"{v}"', True),
        ("{v}", True),  # the bare number of before ETags
        ('"{old}", "{v}"', True),
        ("*", True),
        ('"{old}"', False),
        ('W/"{v}"', False),  # RFC 9110: If-Match compares strongly
    ],
)
def test_if_match_takes_the_etag_as_sent_and_anything_stale_gets_412(
    api: ControlApi, if_match: str, applies: bool
) -> None:
    acme = _tenant(api)
    version = api.call("POST", LB, acme, json=spec()).json()["version"]
    changed = spec(listeners=[listener(8443)])
    header = if_match.format(v=version, old=version - 1)

    answer = api.call("PUT", f"{LB}/web", acme, json=changed, headers={"If-Match": header})

    if applies:
        assert answer.status_code == 200, answer.text
        assert answer.headers["ETag"] == f'"{answer.json()["version"]}"'
        assert answer.json()["version"] > version
    else:
        assert answer.status_code == 412
        assert f'ETag "{version}"' in answer.json()["detail"]
        assert api.ok("GET", f"{LB}/web", acme)["version"] == version


def test_a_weak_tag_is_told_why_it_never_matches(api: ControlApi) -> None:
    acme = _tenant(api)
    version = api.call("POST", LB, acme, json=spec()).json()["version"]
    answer = api.call("PUT", f"{LB}/web", acme, json=spec(), headers={"If-Match": f'W/"{version}"'})
    assert answer.status_code == 412
    assert f'send If-Match: "{version}"' in answer.json()["detail"]


def test_if_match_never_creates_a_load_balancer(api: ControlApi) -> None:
    acme = _tenant(api)
    for header in ('"1"', "*"):
        answer = api.call("PUT", f"{LB}/web", acme, json=spec(), headers={"If-Match": header})
        assert answer.status_code == 412
        assert "does not exist" in answer.json()["detail"]
    assert api.call("GET", f"{LB}/web", acme).status_code == 404


def test_the_412_is_declared_with_the_error_body(api: ControlApi) -> None:
    operation = api.app.openapi()["paths"]["/v1/tenants/{tenant}/loadbalancers/{name}"]["put"]
    declared = operation["responses"]["412"]
    assert declared["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "If-Match" in declared["description"]
    (header,) = [parameter for parameter in operation["parameters"] if parameter["name"] == "if-match"]
    assert '"7"' in header["description"]
