"""The status page's usage page, pure: the window a ``?window=`` picks, who sees which usage,
the totals per tenant, and the units people read."""

from datetime import UTC, datetime, timedelta

import pytest

from anycastlb.control.principal import Principal
from anycastlb.control.status_page.usage_view import (
    DEFAULT_SPAN,
    human_bytes,
    span_of,
    usage_view,
    usage_window,
)
from anycastlb.control.usage_schemas import UsageCounts, UsageOut, UsageSeries

NOW = datetime(2026, 12, 3, 12, 0, 30, tzinfo=UTC)
ADMIN, ACME, GLOBEX = Principal("admin", "admin"), Principal("tenant", "acme"), Principal("tenant", "globex")
POP = Principal("pop", "fra")


def series(tenant: str, name: str, vip: str, counts: tuple[int, int, int]) -> UsageSeries:
    bytes_in, bytes_out, connections = counts
    total = UsageCounts(bytes_in=bytes_in, bytes_out=bytes_out, connections=connections)
    return UsageSeries(
        tenant=tenant, load_balancer=name, load_balancer_id=f"id-{name}", vip=vip, total=total, points=()
    )


USAGE = UsageOut(
    since=NOW - timedelta(days=1),
    until=NOW,
    step_seconds=86400,
    series=(
        series("globex", "shop", "203.0.113.20", (5, 6, 1)),
        series("acme", "web", "203.0.113.11", (1536, 3 * 1024**3, 1234)),
        series("acme", "old", "203.0.113.10", (100, 200, 2)),  # deleted since
        series("acme", "web", "2001:db8::1", (10, 20, 3)),
    ),
)
LIVE = {"id-web", "id-shop"}


@pytest.mark.parametrize(
    ("value", "span"),
    [("1h", "1h"), ("24h", "24h"), ("30d", "30d"), (None, DEFAULT_SPAN), ("", "24h"), ("<x>", "24h")],
)
def test_the_window_is_one_the_page_offers_and_anything_else_is_the_default(
    value: str | None, span: str
) -> None:
    assert span_of(value) == span


def test_a_window_ends_now_rounded_up_to_the_minute_and_is_as_long_as_asked() -> None:
    hour, month = usage_window("1h", NOW), usage_window("30d", NOW)
    assert (hour.since, hour.until) == (
        datetime(2026, 12, 3, 11, 0, tzinfo=UTC),
        NOW.replace(minute=1, second=0),
    )
    assert month.until - month.since == timedelta(days=30, minutes=1)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (3 * 1024**3, "3.0 GiB"),
        (2**60, "1024.0 PiB"),
    ],
)
def test_bytes_are_written_in_binary_units(count: int, text: str) -> None:
    assert human_bytes(count) == text


def test_the_admin_sees_every_tenants_usage_with_exact_numbers_and_a_total_per_tenant() -> None:
    view = usage_view(ADMIN, USAGE, LIVE, "24h")

    assert [(row.tenant, row.load_balancer, row.vip, row.deleted) for row in view.rows] == [
        ("acme", "old", "203.0.113.10", True),
        ("acme", "web", "2001:db8::1", False),
        ("acme", "web", "203.0.113.11", False),
        ("globex", "shop", "203.0.113.20", False),
    ]
    web = view.rows[2].total
    assert (web.bytes_in, web.bytes_out, web.connections) == (1536, 3 * 1024**3, 1234)
    assert (web.bytes_in_text, web.bytes_out_text, web.connections_text) == ("1.5 KiB", "3.0 GiB", "1,234")
    assert [
        (item.tenant, item.load_balancers, item.total.bytes_in, item.total.connections)
        for item in view.tenants
    ] == [
        ("acme", 2, 1536 + 100 + 10, 1234 + 2 + 3),
        ("globex", 1, 5, 1),
    ]
    assert (view.span, view.spans, view.since, view.until) == ("24h", ("1h", "24h", "30d"), USAGE.since, NOW)


def test_a_tenant_sees_only_its_own_usage_deleted_load_balancers_included_and_no_tenant_totals() -> None:
    view = usage_view(ACME, USAGE, LIVE, "1h")

    assert [(row.load_balancer, row.deleted) for row in view.rows] == [
        ("old", True),
        ("web", False),
        ("web", False),
    ]
    assert view.tenants == ()
    assert "globex" not in repr(view) and "shop" not in repr(view)
    assert [row.load_balancer for row in usage_view(GLOBEX, USAGE, LIVE, "1h").rows] == ["shop"]


def test_a_pop_credential_sees_no_usage() -> None:
    view = usage_view(POP, USAGE, LIVE, "24h")
    assert (view.rows, view.tenants) == ((), ())
