"""Bodies of the usage API (``GET /v1/usage``, ``GET /v1/tenants/{tenant}/usage``)."""

from datetime import datetime

from pydantic import Field

from anycastlb.model.base import Frozen

__all__ = ["UsageCounts", "UsageOut", "UsagePoint", "UsageSeries"]


class UsageCounts(Frozen):
    bytes_in: int = Field(description="Payload bytes clients sent to the VIP (PROXY headers excluded)")
    bytes_out: int = Field(description="Payload bytes the VIP sent back to clients")
    connections: int = Field(description="Client connections accepted")


class UsagePoint(UsageCounts):
    start: datetime = Field(description="The step's start; the step lasts `step_seconds`")


class UsageSeries(Frozen):
    tenant: str
    load_balancer: str = Field(description="Its name (a deleted one keeps its last name)")
    load_balancer_id: str
    vip: str
    total: UsageCounts = Field(description="The sum over the window, every PoP")
    points: tuple[UsagePoint, ...] = Field(description="Steps with traffic, oldest first; others are zero")


class UsageOut(Frozen):
    since: datetime = Field(description="`since` rounded down to the stored resolution (a minute)")
    until: datetime = Field(description="`until` rounded up to the stored resolution (exclusive)")
    step_seconds: int
    series: tuple[UsageSeries, ...]
