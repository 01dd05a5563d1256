"""The status page's usage page, built from what the usage service answered (pure: no I/O).

The query itself is the usage API's (``service/usage.py``: the admin's asks for every tenant, a
tenant's for its own, deleted load balancers included); this module picks the window from the
page's ``?window=`` value, keeps only the series the viewer may see (again: a tenant's query never
loads another's rows, this filter is the second fence) and writes the numbers for people.

Visibility, as on the API: the admin sees every tenant's usage and a total per tenant; a tenant
sees its own load balancers' usage, deleted ones too, and no per-tenant totals; a PoP nothing.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from anycastlb.control.accounting import Window, window
from anycastlb.control.principal import Principal
from anycastlb.control.usage_schemas import UsageCounts, UsageOut, UsageSeries
from anycastlb.model.base import Frozen

__all__ = [
    "DEFAULT_SPAN",
    "SPANS",
    "TenantUsage",
    "UsageRow",
    "UsageTotal",
    "UsageView",
    "human_bytes",
    "span_of",
    "usage_view",
    "usage_window",
]

# The windows the page offers: its length, and the query's step (only the totals are shown).
SPANS: dict[str, tuple[timedelta, int]] = {
    "1h": (timedelta(hours=1), 3600),
    "24h": (timedelta(days=1), 86400),
    "30d": (timedelta(days=30), 30 * 86400),
}
DEFAULT_SPAN = "24h"
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def span_of(value: str | None) -> str:
    """The page's window: one of :data:`SPANS`; anything else (absent, hostile) the default."""
    return value if value in SPANS else DEFAULT_SPAN


def usage_window(span: str, now: datetime) -> Window:
    """The last ``span`` until ``now`` (``span`` from :func:`span_of`)."""
    length, step = SPANS[span]
    return window(now - length, now, step)


def human_bytes(count: int) -> str:
    """``1536`` → ``1.5 KiB``; bytes below a KiB exactly (the JSON carries every count exactly)."""
    value, unit = float(count), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{count} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


class UsageTotal(Frozen):
    """Counts over the window, exact, and as the page writes them."""

    bytes_in: int
    bytes_out: int
    connections: int
    bytes_in_text: str
    bytes_out_text: str
    connections_text: str


def _total(counts: UsageCounts) -> UsageTotal:
    return UsageTotal(
        bytes_in=counts.bytes_in,
        bytes_out=counts.bytes_out,
        connections=counts.connections,
        bytes_in_text=human_bytes(counts.bytes_in),
        bytes_out_text=human_bytes(counts.bytes_out),
        connections_text=f"{counts.connections:,}",
    )


class UsageRow(Frozen):
    tenant: str
    load_balancer: str
    vip: str
    deleted: bool  # no longer a load balancer of the store: its usage stays billed
    total: UsageTotal


class TenantUsage(Frozen):
    tenant: str
    load_balancers: int
    total: UsageTotal


class UsageView(Frozen):
    span: str
    spans: tuple[str, ...]
    since: datetime
    until: datetime
    rows: tuple[UsageRow, ...]
    tenants: tuple[TenantUsage, ...]  # the admin's only


def _visible(viewer: Principal, series: Iterable[UsageSeries]) -> list[UsageSeries]:
    if viewer.kind == "admin":
        return list(series)
    if viewer.kind == "tenant":
        return [item for item in series if item.tenant == viewer.name]
    return []


def _tenant_totals(series: list[UsageSeries]) -> tuple[TenantUsage, ...]:
    totals: dict[str, tuple[UsageCounts, set[str]]] = {}
    for item in series:
        counts, lbs = totals.get(item.tenant, (UsageCounts(bytes_in=0, bytes_out=0, connections=0), set()))
        counts = UsageCounts(
            bytes_in=counts.bytes_in + item.total.bytes_in,
            bytes_out=counts.bytes_out + item.total.bytes_out,
            connections=counts.connections + item.total.connections,
        )
        totals[item.tenant] = (counts, lbs | {item.load_balancer_id})
    return tuple(
        TenantUsage(tenant=tenant, load_balancers=len(lbs), total=_total(counts))
        for tenant, (counts, lbs) in sorted(totals.items())
    )


def usage_view(viewer: Principal, usage: UsageOut, live_ids: Iterable[str], span: str) -> UsageView:
    """The page for ``viewer``: one row per load balancer and VIP (by tenant, name, VIP) with its
    totals over the window; ``live_ids``: the load balancers that still exist."""
    live = set(live_ids)
    series = _visible(viewer, usage.series)
    rows = tuple(
        UsageRow(
            tenant=item.tenant,
            load_balancer=item.load_balancer,
            vip=item.vip,
            deleted=item.load_balancer_id not in live,
            total=_total(item.total),
        )
        for item in sorted(series, key=lambda item: (item.tenant, item.load_balancer, item.vip))
    )
    return UsageView(
        span=span,
        spans=tuple(SPANS),
        since=usage.since,
        until=usage.until,
        rows=rows,
        tenants=_tenant_totals(series) if viewer.kind == "admin" else (),
    )
