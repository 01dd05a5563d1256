"""Traffic accounting through the API, on SQLite and PostgreSQL: a PoP's cumulative counters become
stored deltas (across failed reports, an edge restart and a counter reset), queryable per tenant,
load balancer and VIP, and counted in the control plane's metrics."""

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.control_plane import ADMIN_TOKEN, ControlApi, spec

pytestmark = pytest.mark.integration

_LAST_REPORT = "anycastlb_control_accounting_last_report_timestamp_seconds"


def _world(api: ControlApi) -> tuple[str, dict[str, Any], str, dict[str, Any], str]:
    api.pool("platform", "203.0.113.0/28")
    acme, globex = api.tenant("acme"), api.tenant("globex")
    fra = api.pop("fra")
    api.pop("ams")
    web = api.ok("POST", "/v1/tenants/acme/loadbalancers", acme, json=spec("web"))
    shop = api.ok("POST", "/v1/tenants/globex/loadbalancers", globex, json=spec("shop"))
    return acme, web, globex, shop, fra


def _entry(
    lb: dict[str, Any], listener: str, counts: tuple[int, int, int], port: int = 443
) -> dict[str, Any]:
    bytes_in, bytes_out, connections = counts
    return {
        "listener": listener,
        "load_balancer": lb["id"],
        "address": lb["addresses"][0],
        "port": port,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "connections": connections,
    }


_sequence = itertools.count(1)


def _report(
    api: ControlApi, token: str, epoch: str, *entries: dict[str, Any], sequence: int | None = None
) -> None:
    usage = {"epoch": epoch, "sequence": next(_sequence) if sequence is None else sequence}
    body = {"pop": "fra", "applied_version": 1, "usage": {**usage, "listeners": list(entries)}}
    api.ok("PUT", "/v1/pops/fra/status", token, json=body)


def _totals(
    api: ControlApi, path: str, token: str = ADMIN_TOKEN, **params: str
) -> dict[str, tuple[int, int, int]]:
    answer = api.ok("GET", path, token, params=params)
    return {
        f"{series['tenant']}/{series['load_balancer']}/{series['vip']}": (
            series["total"]["bytes_in"],
            series["total"]["bytes_out"],
            series["total"]["connections"],
        )
        for series in answer["series"]
    }


def test_cumulative_reports_are_stored_as_deltas_across_restarts_and_resets(api: ControlApi) -> None:
    acme, web, globex, shop, fra = _world(api)
    web_key, shop_key = f"acme/web/{web['addresses'][0]}", f"globex/shop/{shop['addresses'][0]}"
    _report(
        api,
        fra,
        "e1",
        _entry(web, "acme-web-443", (100, 1000, 1)),
        _entry(shop, "globex-shop-443", (5, 6, 1)),
    )
    _report(
        api,
        fra,
        "e1",
        _entry(web, "acme-web-443", (150, 1500, 2)),
        _entry(shop, "globex-shop-443", (5, 6, 1)),
    )
    # a report lost in between changes nothing: the next carries the totals
    _report(api, fra, "e1", _entry(web, "acme-web-443", (200, 2000, 3)))
    # the edge restarted: a new epoch counts from zero, even when its values are larger
    _report(api, fra, "e2", _entry(web, "acme-web-443", (300, 10, 1)))
    # the same epoch, a value went down: counters started again
    _report(api, fra, "e2", _entry(web, "acme-web-443", (7, 20, 2)))
    assert _totals(api, "/v1/usage") == {web_key: (507, 2030, 6), shop_key: (5, 6, 1)}
    assert _totals(api, "/v1/tenants/acme/usage", acme) == {web_key: (507, 2030, 6)}
    assert _totals(api, "/v1/tenants/globex/usage", globex) == {shop_key: (5, 6, 1)}
    assert _totals(api, "/v1/usage", tenant="globex") == {shop_key: (5, 6, 1)}
    assert _totals(api, "/v1/tenants/acme/usage", acme, load_balancer="nope") == {}
    # a tenant never sees another's usage: 404, as for every other object of another tenant
    assert api.call("GET", "/v1/tenants/globex/usage", acme).status_code == 404
    assert api.call("GET", "/v1/usage", acme).status_code == 403
    metrics = api.call("GET", "/metrics").text
    vip = web["addresses"][0]
    labels = f'load_balancer="web",tenant="acme",vip="{vip}"'
    assert f'anycastlb_control_usage_bytes_total{{direction="in",{labels}}} 507.0' in metrics
    assert (
        f'anycastlb_control_usage_connections_total{{load_balancer="web",tenant="acme",vip="{vip}"}} 6.0'
        in metrics
    )
    (fra_at,) = [line for line in metrics.splitlines() if line.startswith(_LAST_REPORT + '{pop="fra"}')]
    assert abs(float(fra_at.split()[-1]) - time.time()) < 60
    assert _LAST_REPORT + '{pop="ams"} 0.0' in metrics  # registered, never reported


def test_every_replica_exports_the_last_report_time_from_the_store(
    api: ControlApi, database_url: str
) -> None:
    _, web, _, _, fra = _world(api)
    _report(api, fra, "e1", _entry(web, "acme-web-443", (1, 1, 1)))
    other = ControlApi(database_url)  # a second replica on the same store: it stored nothing itself
    try:
        metrics = other.call("GET", "/metrics").text
    finally:
        other.close()
    assert _LAST_REPORT + '{pop="fra"} 0.0' not in metrics
    assert _LAST_REPORT + '{pop="fra"}' in metrics


def test_usage_outlives_the_load_balancer(api: ControlApi) -> None:
    acme, web, _, _, fra = _world(api)
    _report(api, fra, "e1", _entry(web, "acme-web-443", (10, 20, 1)))
    api.ok("DELETE", "/v1/tenants/acme/loadbalancers/web", acme)
    # the edge still counted its last bytes (a connection draining) and reports them after
    _report(api, fra, "e1", _entry(web, "acme-web-443", (15, 30, 1)))
    assert _totals(api, "/v1/tenants/acme/usage", acme) == {f"acme/web/{web['addresses'][0]}": (15, 30, 1)}


def test_steps_split_the_window_and_listeners_of_one_vip_add_up(api: ControlApi) -> None:
    acme, web, _, _, fra = _world(api)
    _report(
        api, fra, "e1", _entry(web, "acme-web-443", (10, 1, 1)), _entry(web, "acme-web-80", (5, 1, 1), 80)
    )
    now = datetime.now(UTC)
    since = (now - timedelta(hours=1)).isoformat()
    answer = api.ok("GET", "/v1/tenants/acme/usage", acme, params={"since": since, "step": "5m"})
    assert answer["step_seconds"] == 300
    (series,) = answer["series"]
    assert series["total"] == {"bytes_in": 15, "bytes_out": 2, "connections": 2}
    assert sum(point["bytes_in"] for point in series["points"]) == 15
    assert len(series["points"]) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"step": "90s"}, "multiple of 60s"),
        ({"step": "1"}, "no unit"),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "must be after since"),
        ({"since": "2020-01-01T00:00:00Z", "step": "1m"}, "at most 10000"),
        (
            {"until": "0001-01-01T00:00:00Z"},
            "out of the range of dates",
        ),  # a day before it (found by the fuzz)
    ],
)
def test_windows_that_cannot_be_answered_are_a_422_that_says_why(
    api: ControlApi, params: dict[str, str], message: str
) -> None:
    answer = api.call("GET", "/v1/usage", params=params)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]


def test_a_report_delivered_after_a_newer_one_is_ignored(api: ControlApi) -> None:
    # The edge gave up on report 10 (a timeout), sent 11 to another replica, which stored it first;
    # then 10 is committed. Its lower values are older, not a reset: counting them would count twice.
    acme, web, _, _, fra = _world(api)
    _report(api, fra, "e1", _entry(web, "acme-web-443", (100, 100, 1)), sequence=11)
    _report(api, fra, "e1", _entry(web, "acme-web-443", (60, 60, 1)), sequence=10)
    _report(api, fra, "e1", _entry(web, "acme-web-443", (100, 100, 1)), sequence=11)  # sent again
    assert _totals(api, "/v1/tenants/acme/usage", acme) == {f"acme/web/{web['addresses'][0]}": (100, 100, 1)}
    # a lower sequence in a new epoch is no older: the edge restarted (its clock did not go back)
    _report(api, fra, "e2", _entry(web, "acme-web-443", (5, 5, 1)), sequence=3)
    assert _totals(api, "/v1/tenants/acme/usage", acme) == {f"acme/web/{web['addresses'][0]}": (105, 105, 2)}


def test_reports_racing_on_two_replicas_count_every_byte_once(api: ControlApi, database_url: str) -> None:
    # Two replicas storing reports of one PoP at once must not both count the same growth from the
    # same cursor. Serialized twice over: the status write locks the PoP's row first, and the usage
    # is stored under its usage_epochs row lock (either alone passes this test).
    acme, web, _, _, fra = _world(api)
    other = ControlApi(database_url)
    sequences = itertools.count(1)
    lock = threading.Lock()

    def send(replica: ControlApi) -> None:
        for _ in range(15):
            with lock:  # the edge's order: a later sequence carries larger totals
                sequence = next(sequences)
            entry = _entry(web, "acme-web-443", (1000 * sequence, 10 * sequence, sequence))
            _report(replica, fra, "e1", entry, sequence=sequence)

    try:
        threads = [threading.Thread(target=send, args=(replica,)) for replica in (api, other) * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last = next(sequences) - 1
        _report(
            api, fra, "e1", _entry(web, "acme-web-443", (1000 * last, 10 * last, last)), sequence=last + 1
        )
    finally:
        other.close()
    expected = (1000 * last, 10 * last, last)
    assert _totals(api, "/v1/tenants/acme/usage", acme) == {f"acme/web/{web['addresses'][0]}": expected}
