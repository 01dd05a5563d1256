"""What a PoP announces: every rule of the announce decision lives in this file (pure, no I/O).

A VIP is announced iff the PoP is not draining and at least one listener on that VIP is serving
(has a healthy backend); otherwise it is withdrawn. Withdrawals are never delayed: a PoP must stop
attracting traffic it cannot serve at once. Re-announcements of a *flapping* VIP are: each
withdrawal within ``flap_window`` counts, and from the second one on the VIP waits
``hold_down * 2**(withdrawals - 2)`` (capped at ``max_hold_down``) after its last withdrawal before it
comes back. A VIP withdrawn once (a drained node set, a restart) returns at once; one that flaps
costs the network route churn, so it is kept down a little longer each time.
"""

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["AnnouncePolicy", "Announcement", "Attributes", "FlapDamper", "Prefix"]

Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Attributes:
    """Path attributes of an announcement (per PoP, optionally overridden per VIP)."""

    next_hop: str  # "self" or an address of the VIP's family
    med: int | None = None
    communities: tuple[str, ...] = ()
    as_path_prepend: int = 0


@dataclass(frozen=True, slots=True)
class Announcement:
    """One route the speaker should have announced."""

    prefix: Prefix
    attributes: Attributes


@dataclass(slots=True)
class _History:
    withdrawals: list[float] = field(default_factory=list)


class FlapDamper:
    """Remembers withdrawals per prefix and says how long a re-announcement must wait."""

    def __init__(
        self, hold_down: float = 1.0, max_hold_down: float = 60.0, flap_window: float = 60.0
    ) -> None:
        if hold_down < 0 or max_hold_down < hold_down or flap_window <= 0:
            raise ValueError("need 0 <= hold_down <= max_hold_down and flap_window > 0")
        self.hold_down = hold_down
        self.max_hold_down = max_hold_down
        self.flap_window = flap_window
        self._history: dict[Prefix, _History] = {}

    def withdrawn(self, prefix: Prefix, now: float) -> None:
        history = self._history.setdefault(prefix, _History())
        history.withdrawals = [t for t in history.withdrawals if now - t < self.flap_window] + [now]

    def ready_at(self, prefix: Prefix, now: float) -> float:
        """The earliest time ``prefix`` may be announced again (``<= now``: at once)."""
        history = self._history.get(prefix)
        if history is None:
            return now
        recent = [t for t in history.withdrawals if now - t < self.flap_window]
        history.withdrawals = recent
        if len(recent) < 2:
            return now
        wait: float = min(self.max_hold_down, self.hold_down * 2.0 ** (len(recent) - 2))
        return recent[-1] + wait


class AnnouncePolicy:
    """Turns (serving per VIP, draining) into the set of announcements, with flap dampening.

    ``decide`` is called on every change and on a timer; it returns the announcements to hold now
    and the time it wants to be asked again (a held-down VIP becoming eligible), or ``None``.
    """

    def __init__(self, damper: FlapDamper) -> None:
        self.damper = damper
        self._announced: set[Prefix] = set()
        self.held_down: dict[Prefix, float] = {}  # serving VIPs kept out by dampening, and until when

    def decide(
        self,
        serving: Mapping[Prefix, bool],
        attributes: Mapping[Prefix, Attributes],
        draining: bool,
        now: float,
    ) -> tuple[frozenset[Announcement], float | None]:
        wanted: set[Announcement] = set()
        wake: float | None = None
        self.held_down = {}
        for prefix, up in serving.items():
            if draining or not up:
                if prefix in self._announced:
                    self.damper.withdrawn(prefix, now)
                    self._announced.discard(prefix)
                continue
            if prefix not in self._announced:
                ready = self.damper.ready_at(prefix, now)
                if ready > now:
                    wake = ready if wake is None else min(wake, ready)
                    self.held_down[prefix] = ready
                    continue
                self._announced.add(prefix)
            wanted.add(Announcement(prefix, attributes[prefix]))
        for gone in self._announced - serving.keys():  # a VIP removed from the config
            self._announced.discard(gone)
        return frozenset(wanted), wake
