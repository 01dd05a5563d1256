"""The rise/fall state machine of one backend: every rule of health checking lives in this file.

Theory of operation
-------------------
A backend is *up* or *down*. Probes (active checks) and failed client connects (passive checks,
reported by the data plane) are the evidence; the machine turns evidence into transitions and tells
its driver when to start the next probe. It does no I/O and reads no clock: the driver passes ``now``
and a seeded ``random.Random``, so every rule is tested at zero wall time.

Transitions:
- *up* → *down* after ``fall`` failed probes in a row, or ``passive_fall`` failed client connects
  since the last successful probe (``passive_fall = 0`` turns passive ejection off);
- *down* → *up* after ``rise`` successful probes in a row (a failed client connect while down
  resets the count: it is fresh evidence the node is still sick);
- before the first verdict the backend is *unproven* and in its ``initial`` state; the first
  probe decides on its own (HAProxy does the same), so a dead node at start is out after one probe
  and a node configured ``initial: down`` serves after one success.
A k8s probe also reports a weight (local endpoints); a change while up is a ``weight`` change.

Scheduling, and why a late answer starts the next probe:
- probes start every ``interval`` times a jitter in ``[0.9, 1.0)`` (never later than configured;
  backends checked from one process drift apart instead of firing together);
- after a failed probe while up, the next one starts at once (HAProxy's ``fastinter`` set to 0):
  a failure is either a blip, which the next probe clears, or the start of an outage, which the
  next probe confirms; waiting a whole interval only delays the ejection;
- a hung node (SIGSTOP, a stuck event loop) still completes TCP handshakes in the kernel, so only
  the timeout reveals it, and ``fall`` sequential timeouts cost ``fall * timeout`` on top of the wait
  for the first probe. So while up, a probe that has gone unanswered for ``late_after`` makes the
  next probe due right away, up to ``fall`` probes in flight. ``late_after`` follows the node's own
  answer time like TCP's retransmission timer: four times the smoothed latency of successful probes,
  at least 10 ms, at most half the timeout. A healthy node answers long before it, so it costs
  nothing; a hung one is ejected after about ``timeout + late_after`` (plus the wait for the first
  probe) instead of ``fall * timeout``. The probes are distinct connections and requests; a stall
  shorter than ``timeout`` fails none of them.
- while down, one probe at a time, every interval: recovery is not urgent, and ``rise`` sequential
  successes are what make it trustworthy.
"""

import math
import random
from dataclasses import dataclass
from typing import Literal

from anycastlb.health.result import ProbeResult

__all__ = ["BackendHealth", "Change", "CheckPolicy"]

LATE_FLOOR = 0.010
"""The earliest a probe counts as late (seconds): below it, scheduling noise looks like a hang."""
_JITTER_LOW = 0.9
_EWMA_GAIN = 0.125  # TCP's SRTT gain (RFC 6298)


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    """The timing and evidence rules of a check (the ``health:`` block, minus what a probe does)."""

    interval: float = 0.5
    timeout: float = 0.25
    rise: int = 2
    fall: int = 2
    passive_fall: int = 1
    initial_up: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= self.interval:
            raise ValueError(f"timeout {self.timeout} must be > 0 and <= interval {self.interval}")
        if self.rise < 1 or self.fall < 1 or self.passive_fall < 0:
            raise ValueError("rise and fall must be >= 1 and passive_fall >= 0")


@dataclass(frozen=True, slots=True)
class Change:
    """A verdict worth a log line: the backend went down or up, or its weight changed while up."""

    kind: Literal["down", "up", "weight"]
    reason: str
    weight: int


class BackendHealth:
    """Health of one probe target; see the module docstring for the rules."""

    def __init__(self, policy: CheckPolicy, weight: int, now: float, rng: random.Random) -> None:
        self.policy = policy
        self.up = policy.initial_up
        self.proven = False
        self.weight = weight
        self.reason = "not checked yet"
        self.failures = 0  # failed probes in a row (counted while up)
        self.successes = 0  # successful probes in a row (counted while down)
        self.passive_failures = 0  # failed client connects since the last successful probe
        self._rng = rng
        self._in_flight: dict[int, float] = {}  # probe token -> start time
        self._next_token = 0
        self._next_regular = now + policy.interval * rng.random()  # spread the first probes
        self._recheck_at = math.inf
        self._latency: float | None = None

    # ---- scheduling ------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def late_after(self) -> float:
        """How long an unanswered probe may take before the next one is started (while up)."""
        ceiling = self.policy.timeout / 2
        if self._latency is None:
            return ceiling
        return min(ceiling, max(LATE_FLOOR, 4 * self._latency))

    def next_probe_at(self) -> float:
        """When the driver should start the next probe (``inf``: wait for an answer first)."""
        if not self.up:
            return self._next_regular if not self._in_flight else math.inf
        if len(self._in_flight) >= self.policy.fall:
            return math.inf
        due = min(self._next_regular, self._recheck_at)
        if self._in_flight:
            due = min(due, max(self._in_flight.values()) + self.late_after())
        return due

    def probe_started(self, now: float) -> int:
        """Record a probe start; pass the returned token to :meth:`probe_finished`."""
        self._next_token += 1
        self._in_flight[self._next_token] = now
        self._next_regular = now + self.policy.interval * self._rng.uniform(_JITTER_LOW, 1.0)
        self._recheck_at = math.inf
        return self._next_token

    def probe_abandoned(self, token: int) -> None:
        """The probe of ``token`` raised instead of answering (a bug, not the node): it is no
        evidence either way, so the verdict stays and the next probe is scheduled as usual."""
        self._in_flight.pop(token, None)

    # ---- evidence --------------------------------------------------------------------------

    def probe_finished(self, token: int, result: ProbeResult, now: float) -> Change | None:
        """Apply a probe's verdict; returns the change it caused, if any."""
        if self._in_flight.pop(token, None) is None:
            return None  # a probe from before a reset: its answer is about a state that is gone
        self.reason = result.reason
        if result.ok:
            self._learn_latency(result.latency)
            self.passive_failures = 0
            return self._success(result)
        return self._failure(f"{result.reason}", now)

    def passive_failure(self, reason: str) -> Change | None:
        """A client connect to this backend failed in the data plane."""
        if self.policy.passive_fall == 0:
            return None
        self.passive_failures += 1
        self.successes = 0
        if self.up and self.passive_failures >= self.policy.passive_fall:
            count = self.policy.passive_fall
            return self._go_down(f"client connect {reason}" + (f" ({count} in a row)" if count > 1 else ""))
        return None

    def _success(self, result: ProbeResult) -> Change | None:
        weight_changed = result.weight is not None and result.weight != self.weight
        if result.weight is not None:
            self.weight = result.weight
        self.failures = 0
        if self.up:
            self.proven = True
            return Change("weight", result.reason, self.weight) if weight_changed else None
        self.successes += 1
        if self.successes >= self.policy.rise or not self.proven:
            rise = self.policy.rise
            why = result.reason if not self.proven or rise == 1 else f"{result.reason} ({rise} in a row)"
            self.proven = True
            self.up = True
            self.successes = 0
            return Change("up", why, self.weight)
        return None

    def _failure(self, reason: str, now: float) -> Change | None:
        self.successes = 0
        if not self.up:
            self.proven = True
            return None
        self.failures += 1
        if self.failures >= self.policy.fall or not self.proven:
            fall = self.policy.fall
            why = reason if not self.proven or fall == 1 else f"{reason} ({fall} in a row)"
            return self._go_down(why)
        self._recheck_at = now  # confirm or clear the failure right away
        return None

    def _go_down(self, reason: str) -> Change:
        self.up = False
        self.proven = True
        self.failures = 0
        self.successes = 0
        self.reason = reason
        self._recheck_at = math.inf
        # Probes still in flight were started before the ejection: whatever they answer says nothing
        # about recovery, so their tokens are dropped and their answers ignored.
        self._in_flight.clear()
        return Change("down", reason, self.weight)

    def _learn_latency(self, latency: float) -> None:
        if self._latency is None:
            self._latency = latency
        else:
            self._latency += _EWMA_GAIN * (latency - self._latency)
