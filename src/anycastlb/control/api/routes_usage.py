"""``/v1/usage`` (admin: every tenant) and ``/v1/tenants/{tenant}/usage`` (the tenant's own):
traffic accounting per load balancer and VIP, summed over PoPs, in steps (docs/control-plane.md,
"Traffic accounting")."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from anycastlb.control.accounting import Window, WindowError, window
from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.errors import Invalid
from anycastlb.control.service.usage import query_usage
from anycastlb.control.usage_schemas import UsageOut
from anycastlb.model.duration import parse_duration

router = APIRouter(prefix="/v1", tags=["usage"])

_DEFAULT_SPAN = timedelta(days=1)

Since = Annotated[
    datetime | None,
    Query(description="Start (RFC 3339; rounded down to the minute). Default: a day before `until`"),
]
Until = Annotated[
    datetime | None, Query(description="End, exclusive (RFC 3339; rounded up to the minute). Default: now")
]
Step = Annotated[
    str, Query(max_length=32, description="Step of the points: a multiple of 1m, e.g. 5m, 1h (default)")
]
LoadBalancerName = Annotated[
    str | None, Query(max_length=63, description="Only this load balancer (by name)")
]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _window(since: datetime | None, until: datetime | None, step: str) -> Window:
    end = _aware(until) if until is not None else datetime.now(UTC)
    try:
        # a day before 0001-01-01 (or a zone offset across it) is out of datetime's range
        start = _aware(since) if since is not None else end - _DEFAULT_SPAN
        seconds = parse_duration(step)
        return window(start.astimezone(UTC), end.astimezone(UTC), seconds)
    except OverflowError:
        raise Invalid(
            f"query: the window from since={since} to until={until} is out of the range of dates "
            "(since defaults to a day before until): give dates between the years 1 and 9999"
        ) from None
    except (WindowError, ValueError) as error:
        raise Invalid(f"query: {error}") from None


@router.get("/usage")
def all_usage(
    caller: Caller,
    rt: Rt,
    since: Since = None,
    until: Until = None,
    step: Step = "1h",
    tenant: Annotated[
        str | None, Query(max_length=63, description="Only this tenant (a deleted one's too)")
    ] = None,
    load_balancer: LoadBalancerName = None,
) -> UsageOut:
    """Traffic of every tenant's load balancers, per VIP (admin)."""
    caller.require_admin()
    found = _window(since, until, step)
    return rt.read(lambda s: query_usage(s, found, tenant, load_balancer))


@router.get("/tenants/{tenant}/usage")
def tenant_usage(
    tenant: str,
    caller: Caller,
    rt: Rt,
    since: Since = None,
    until: Until = None,
    step: Step = "1h",
    load_balancer: LoadBalancerName = None,
) -> UsageOut:
    """Traffic of the tenant's load balancers, per VIP, including deleted ones."""
    caller.require_tenant_access(tenant)
    found = _window(since, until, step)
    return rt.read(lambda s: query_usage(s, found, tenant, load_balancer, own=True))
