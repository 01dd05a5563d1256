"""Tokens expire when issued with a lifetime, rotate with a grace period in which both secrets
work, and tell their holder why they stopped working (each test on SQLite and PostgreSQL)."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.control_plane import ControlApi

pytestmark = pytest.mark.integration


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _refused_within(api: ControlApi, token: str, path: str, seconds: float) -> tuple[str, float]:
    """Poll until ``token`` gets 401 (deadline, not a sleep); (the detail, seconds it took)."""
    started = time.monotonic()
    while True:
        answer = api.call("GET", path, token)
        if answer.status_code == 401:
            return str(answer.json()["detail"]), time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < seconds, f"{path} still answered 200 after {seconds} s"
        time.sleep(0.05)


def test_a_token_issued_with_a_lifetime_works_until_then_and_then_says_it_expired(api: ControlApi) -> None:
    api.ok("POST", "/v1/tenants", json={"name": "acme"})
    created = api.ok("POST", "/v1/tenants/acme/tokens", json={"ttl_seconds": 1})
    expires_at = _when(created["expires_at"])
    assert timedelta(0) < expires_at - _when(created["created_at"]) <= timedelta(seconds=1)
    assert api.ok("GET", "/v1/whoami", created["secret"]) == {"kind": "tenant", "name": "acme"}

    detail, _took = _refused_within(api, created["secret"], "/v1/whoami", seconds=5)

    assert datetime.now(UTC) >= expires_at
    assert f"token {created['token_id']} expired at" in detail
    assert "anycastlb tenants token create acme" in detail
    (listed,) = api.ok("GET", "/v1/tenants/acme/tokens")
    assert listed["expires_at"] == created["expires_at"]


def test_a_token_issued_without_a_lifetime_never_expires(api: ControlApi) -> None:
    token = api.tenant("acme")
    (listed,) = api.ok("GET", "/v1/tenants/acme/tokens")
    assert listed["expires_at"] is None
    assert api.call("GET", "/v1/whoami", token).status_code == 200


def test_rotation_gives_a_new_secret_and_the_old_one_works_for_the_grace_period(api: ControlApi) -> None:
    api.ok("POST", "/v1/tenants", json={"name": "acme"})
    old = api.ok("POST", "/v1/tenants/acme/tokens", json={"description": "controller"})

    new = api.ok("POST", f"/v1/tenants/acme/tokens/{old['token_id']}/rotate", old["secret"], json={})

    assert new["secret"] != old["secret"] and new["description"] == "controller"
    for secret in (old["secret"], new["secret"]):
        assert api.ok("GET", "/v1/whoami", secret) == {"kind": "tenant", "name": "acme"}
    listed = {token["token_id"]: token for token in api.ok("GET", "/v1/tenants/acme/tokens")}
    grace_end = _when(listed[old["token_id"]]["expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=59) < grace_end <= timedelta(hours=1)  # the default grace: an hour
    assert listed[new["token_id"]]["expires_at"] is None  # the old one never expired: nor does this


def test_rotation_without_grace_stops_the_old_secret_at_once_and_keeps_the_lifetime(api: ControlApi) -> None:
    api.ok("POST", "/v1/tenants", json={"name": "acme"})
    old = api.ok("POST", "/v1/tenants/acme/tokens", json={"ttl_seconds": 86400})

    new = api.ok("POST", f"/v1/tenants/acme/tokens/{old['token_id']}/rotate", json={"grace_seconds": 0})

    refused = api.call("GET", "/v1/whoami", old["secret"])
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    assert api.call("GET", "/v1/whoami", new["secret"]).status_code == 200
    lifetime = _when(new["expires_at"]) - _when(new["created_at"])
    assert lifetime == timedelta(days=1)


def test_a_pop_credential_rotates_and_the_pop_keeps_reading_its_state_through_the_grace(
    api: ControlApi,
) -> None:
    old = api.pop("fra")

    new = api.ok("POST", "/v1/pops/fra/credentials/rotate", json={"grace_seconds": 600})

    assert new["secret"].startswith("alb_pop_")
    for secret in (old, new["secret"]):
        assert api.call("GET", "/v1/pops/fra/desired", secret).status_code == 200
    credentials = api.ok("GET", "/v1/pops/fra/credentials")
    assert [c["expires_at"] is None for c in credentials] == [False, True]
    api.ok("POST", "/v1/pops/fra/credentials/rotate", json={"grace_seconds": 0})
    refused = api.call("GET", "/v1/pops/fra/desired", old)
    assert refused.status_code == 401
    assert "anycastlb pops rotate-credential fra" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/tenants/acme/tokens", {"ttl_seconds": 0}),
        ("/v1/tenants/acme/tokens", {"ttl_seconds": -5}),
        ("/v1/pops/fra/credentials/rotate", {"grace_seconds": -1}),
        ("/v1/pops/fra/credentials/rotate", {"grace_seconds": 10**9}),
    ],
)
def test_lifetimes_and_grace_periods_out_of_range_are_refused_naming_the_field(
    api: ControlApi, path: str, body: dict[str, int]
) -> None:
    api.ok("POST", "/v1/tenants", json={"name": "acme"})
    api.pop("fra")
    answer = api.call("POST", path, json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(f"{next(iter(body))}: ")
