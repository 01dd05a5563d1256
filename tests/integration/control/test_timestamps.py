"""Every datetime the API answers is aware UTC (``Z``), and a create answer and a later read of the
same object say exactly the same instant, on SQLite (which stores no zone) and on PostgreSQL."""

from datetime import UTC, datetime

import pytest

from tests.support.control_plane import ControlApi, spec

pytestmark = pytest.mark.integration


def _utc(text: str) -> datetime:
    assert text.endswith("Z"), f"{text!r} carries no UTC zone"
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() is not None and parsed.utcoffset() == datetime.now(UTC).utcoffset()
    return parsed


def test_created_at_of_every_object_reads_back_as_it_was_answered(api: ControlApi) -> None:
    pool = api.pool("platform", "203.0.113.0/29")
    tenant = api.ok("POST", "/v1/tenants", json={"name": "acme"})
    token = api.ok("POST", "/v1/tenants/acme/tokens", json={"description": "ci"})
    pop = api.ok("POST", "/v1/pops", json={"name": "fra"})
    address = api.ok("POST", "/v1/tenants/acme/ips/reserve", json={})
    lb = api.ok("POST", "/v1/tenants/acme/loadbalancers", json=spec("web"))

    (read_pool,) = api.ok("GET", "/v1/pools")
    (read_token,) = api.ok("GET", "/v1/tenants/acme/tokens")
    (read_address,) = [a for a in api.ok("GET", "/v1/ips") if a["address"] == address["address"]]
    pairs = {
        "pool": (pool["created_at"], read_pool["created_at"]),
        "tenant": (tenant["created_at"], api.ok("GET", "/v1/tenants/acme")["created_at"]),
        "token": (token["created_at"], read_token["created_at"]),
        "pop": (pop["created_at"], api.ok("GET", "/v1/pops/fra")["created_at"]),
        "address": (address["created_at"], read_address["created_at"]),
        "lb created": (lb["created_at"], api.ok("GET", "/v1/tenants/acme/loadbalancers/web")["created_at"]),
        "lb updated": (lb["updated_at"], api.ok("GET", "/v1/tenants/acme/loadbalancers/web")["updated_at"]),
    }

    differing = {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}
    assert differing == {}
    for created, _read in pairs.values():
        _utc(created)


def test_a_pops_last_report_time_is_utc_and_its_age_is_small(api: ControlApi) -> None:
    credential = api.pop("fra")
    api.ok("PUT", "/v1/pops/fra/status", credential, json={"pop": "fra", "applied_version": 0})

    read = api.ok("GET", "/v1/pops/fra")

    assert abs((datetime.now(UTC) - _utc(read["last_report_at"])).total_seconds()) < 30
    assert 0 <= read["report_age_seconds"] < 30
