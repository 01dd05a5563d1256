"""Traffic accounting as a PoP reports it: cumulative counters per listener, under a counter epoch.

The edge counts per listener from its start (an *epoch*: one supervisor's life, named by a random
id drawn at start). Every report carries the cumulative values of that epoch, never an increment,
so a report that fails loses nothing: the next one carries the same totals and more. The control
plane keeps the last values it stored per (PoP, listener) and stores the difference; a new epoch,
or a value that went down, means the counters started again from zero (control/accounting.py).

What is counted (docs/control-plane.md, "Traffic accounting"): ``bytes_in`` is the payload a client
sent to the edge, ``bytes_out`` the payload the edge sent back to the client; the PROXY header the
edge writes to a backend is not counted, nor are health checks. ``connections`` counts client
connections accepted by the listener (refused ones are not).
"""

from typing import Annotated

from pydantic import Field

from anycastlb.model.base import Frozen, IPAddress

__all__ = ["ListenerUsage", "UsageReport"]

Count = Annotated[int, Field(ge=0, le=2**63 - 1)]


class ListenerUsage(Frozen):
    """One edge listener's counters since the epoch began, and whose traffic they are."""

    listener: str = Field(min_length=1, max_length=63, description="The edge's listener name")
    load_balancer: str = Field(min_length=1, max_length=36, description="The load balancer's id")
    address: IPAddress = Field(description="The VIP")
    port: int = Field(ge=1, le=65535)
    bytes_in: Count = Field(description="Payload bytes clients sent (PROXY header excluded)")
    bytes_out: Count = Field(description="Payload bytes sent back to clients")
    connections: Count = Field(description="Client connections accepted")


class UsageReport(Frozen):
    """Cumulative counters of every listener the edge counted in this epoch."""

    epoch: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="Names the counters' start"
    )
    sequence: int = Field(
        ge=0,
        le=2**63 - 1,
        description="Grows with every report of the epoch: a report older than one already stored "
        "(delivered late, e.g. a timed-out request a replica committed after the next) is ignored",
    )
    listeners: tuple[ListenerUsage, ...] = ()
