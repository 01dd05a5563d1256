"""What a failover looked like from the client and from the router, as pure data and arithmetic.

The client records every request (a new TCP connection each) with its start and end time and who
answered: the node names itself and the PoP the connection came through. The router records every
change of the VIP's next hop. Both use ``time.monotonic()``, which is the same clock in every
network namespace, so the two records and the fault's timestamp line up.
"""

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Attempt",
    "ClientWait",
    "Movement",
    "RouteChange",
    "measure_movement",
    "open_across",
    "parse_answer",
    "switched_to",
    "timed_out",
]


ClientWait = Literal["timeout", "retry"]
_SYN_RETRY = 0.5  # s: a request that took this long lost a packet (the kernel's first SYN retry is at 1 s)


@dataclass(frozen=True)
class Attempt:
    """One client request: ``pop`` and ``node`` are None when it failed (then ``error`` says how)."""

    started: float
    ended: float
    source: str
    node: str | None = None
    pop: str | None = None
    client_seen: str | None = None  # the client address the node saw (PROXY protocol)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.node is not None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> "Attempt":
        data = json.loads(line)
        return cls(**data)


@dataclass(frozen=True)
class RouteChange:
    """From ``at`` on, the router sent the VIP to ``pop`` (None: no route at all).

    The table is sampled, so the change happened somewhere in ``(since, at]``: ``since`` is the
    last sample that still showed the previous route (None for the first sample).
    """

    at: float
    pop: str | None
    since: float | None = None


def parse_answer(body: str) -> dict[str, str]:
    """``node=node2 client=10.10.0.7 via=10.30.0.11`` → its key/value pairs."""
    return dict(part.split("=", 1) for part in body.split() if "=" in part)


@dataclass(frozen=True)
class Movement:
    """How traffic moved after an event (a fault, or the recovery) at time ``since``."""

    attempts: int  # requests in flight or started in the window
    failed: tuple[Attempt, ...]
    answered_by: dict[str, int]  # PoP -> successful requests
    route_after: float | None  # seconds until the router pointed the VIP at an accepted PoP
    traffic_after: float | None  # seconds until requests went only to accepted PoPs (and stayed)
    # ... and until the first of those requests was answered: what the client lived through
    answered_after: float | None = None
    # Why answered_after may say more about the client than about the network (the client sends one
    # request at a time): "timeout", the request before it waited out the client's timeout (a silent
    # PoP drops packets and resets nothing); "retry", it was itself in flight when the route moved,
    # and its SYN reached the other PoP only when the kernel sent it again (1 s later). None: neither.
    client_wait: ClientWait | None = None

    @property
    def errors(self) -> dict[str, int]:
        return dict(Counter(attempt.error.split(":")[0] for attempt in self.failed))


def measure_movement(
    attempts: Sequence[Attempt],
    routes: Sequence[RouteChange],
    since: float,
    until: float,
    arrived: Callable[[str], bool],
    *,
    in_flight: bool = True,
) -> Movement:
    """Measure the move to PoPs for which ``arrived(pop)`` holds, in the window ``[since, until)``.

    A request counts if it started in the window or, with ``in_flight``, was in flight at ``since``:
    a request cut off by the fault is the fault's doing. For a window that follows another one (the
    return after the fault), pass ``in_flight=False`` so that no request is counted twice. Traffic
    has moved at the start of the first successful request after which every successful request in
    the window went to an accepted PoP.
    """
    window = [a for a in attempts if (a.ended if in_flight else a.started) >= since and a.started < until]
    succeeded = [a for a in window if a.ok and a.started >= since]
    traffic_at = None
    for attempt in reversed(succeeded):
        if attempt.pop is None or not arrived(attempt.pop):
            break
        traffic_at = attempt.started
    first = next((a for a in succeeded if a.started == traffic_at), None)
    before = (
        None
        if first is None
        else max((a for a in window if a.started < first.started), default=None, key=_start)
    )
    route_at = next(
        (change.at for change in routes if since <= change.at < until and change.pop and arrived(change.pop)),
        None,
    )
    return Movement(
        attempts=len(window),
        failed=tuple(a for a in window if not a.ok),
        answered_by=dict(Counter(a.pop or "?" for a in window if a.ok)),
        route_after=None if route_at is None else route_at - since,
        traffic_after=None if traffic_at is None else traffic_at - since,
        answered_after=None if first is None else first.ended - since,
        client_wait=_client_wait(first, before, route_at),
    )


def _client_wait(first: Attempt | None, before: Attempt | None, route_at: float | None) -> ClientWait | None:
    if first is None:
        return None
    if before is not None and timed_out(before):
        return "timeout"
    if route_at is not None and first.started < route_at and first.ended - first.started >= _SYN_RETRY:
        return "retry"
    return None


def _start(attempt: Attempt) -> float:
    return attempt.started


def timed_out(attempt: Attempt) -> bool:
    """The request gave up waiting (``socket.timeout``), rather than being refused or reset."""
    return attempt.error.startswith(("TimeoutError", "timeout"))


def switched_to(routes: Sequence[RouteChange], pop: str) -> RouteChange | None:
    """The change by which the router first pointed the VIP at ``pop``, or None if it never did."""
    return next((change for change in routes if change.pop == pop), None)


def open_across(attempts: Sequence[Attempt], change: RouteChange) -> list[Attempt]:
    """Requests whose connection may have been open when the route changed: started before the
    change was seen, ended after the last sample before it (the change lies in between).

    When the route moves, the client's next packets of such a connection reach the other PoP, which
    has no such connection and resets it. Plain anycast cannot save these (second-chance forwarding
    between PoPs could); every other request must succeed.
    """
    earliest = change.at if change.since is None else change.since
    return [attempt for attempt in attempts if attempt.started <= change.at and attempt.ended > earliest]
