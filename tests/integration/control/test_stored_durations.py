"""Durations need a unit in what people send, and a spec stored by an earlier release, which wrote
them as bare seconds, still loads, serves and is shown with units (model/duration.py)."""

from typing import Any

import pytest
from sqlalchemy.orm import Session

from anycastlb.control.store.tables import LoadBalancer
from anycastlb.model.duration import parse_duration
from tests.support.control_plane import ControlApi, listener, spec

pytestmark = pytest.mark.integration

_DURATIONS = {
    "interval",
    "timeout",
    "connect_timeout",
    "idle_timeout",
    "first_data_timeout",
    "client_hello_wait",
}


def _as_an_earlier_release_stored_it(stored: Any) -> Any:
    """The spec JSON with every duration as float seconds, as ``model_dump(mode="json")`` wrote it."""
    if isinstance(stored, list):
        return [_as_an_earlier_release_stored_it(item) for item in stored]
    if not isinstance(stored, dict):
        return stored
    return {
        key: parse_duration(value) if key in _DURATIONS else _as_an_earlier_release_stored_it(value)
        for key, value in stored.items()
    }


def test_the_api_refuses_a_duration_without_a_unit_and_says_how_to_write_it(api: ControlApi) -> None:
    api.pool("platform", "203.0.113.0/29")
    token = api.tenant("acme")
    body = spec("web", listeners=[listener(health={"interval": 5})])
    refused = api.call("PUT", "/v1/tenants/acme/loadbalancers/web", token, json=body)
    assert refused.status_code == 422, refused.text
    assert "5 has no unit; write 5s for seconds or 5ms for milliseconds" in refused.text


def test_a_spec_stored_with_bare_seconds_still_serves_and_reads_back_with_units(api: ControlApi) -> None:
    api.pool("platform", "203.0.113.0/29")
    api.pop("fra")
    token = api.tenant("acme")
    body = spec("web", listeners=[listener(health={"interval": "1s", "timeout": "250ms"})])
    created = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", token, json=body)
    assert created["spec"]["listeners"][0]["health"]["interval"] == "1s"  # written with its unit
    with Session(api.store.engine) as session, session.begin():
        row = session.get(LoadBalancer, created["id"])
        assert row is not None
        row.spec = _as_an_earlier_release_stored_it(row.spec)

    shown = api.ok("GET", "/v1/tenants/acme/loadbalancers/web", token)["spec"]["listeners"][0]
    assert (shown["health"]["interval"], shown["health"]["timeout"], shown["connect_timeout"]) == (
        "1s",
        "250ms",
        "1s",
    )
    served = api.ok("GET", "/v1/pops/fra/desired")["load_balancers"][0]["listeners"][0]
    assert (served["health"]["interval"], served["idle_timeout"]) == ("1s", "300s")
    again = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", token, json=body)  # what `lb get` showed
    assert again["spec"]["listeners"][0]["health"] == shown["health"]
