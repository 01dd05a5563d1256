"""The messages between the health process and the data-plane workers.

Two directions:
- :class:`HealthView` (health process → workers, through the :mod:`health_board`): for every listener,
  whether it can serve, which backends are down, and weights learned from the nodes. Workers treat a
  backend missing from the view as up with its configured weight, so a worker is never stuck on a
  view older than its config.
- :class:`PassiveReport` (worker → health process, one datagram each): a client connect to a backend
  failed. ``reports_through`` in the view says up to which time the health process had read these
  reports when it wrote the view, so a worker knows when its own local ejection is covered.
"""

import json
from dataclasses import dataclass, field

__all__ = ["HealthView", "ListenerHealth", "PassiveReport"]

_SEPARATOR = b"\x00"


@dataclass(frozen=True, slots=True)
class ListenerHealth:
    """One listener: the backends that are down, and weights learned from the nodes (k8s checks).

    A down backend keeps its weight, and with it its slots in the Maglev table: the data plane skips
    it instead of rebuilding, so its clients come back to it when it recovers.
    """

    serving: bool
    down: frozenset[str] = frozenset()
    weights: dict[str, int] = field(default_factory=dict)
    # Why each backend that changed since the check started last went down or up ("down: connect
    # refused (2 in a row)"); the workers ignore it, the PoP's status report carries it.
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HealthView:
    """Everything the workers need to know about health, at one instant."""

    published_at: float
    reports_through: float
    listeners: dict[str, ListenerHealth]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "published_at": self.published_at,
                "reports_through": self.reports_through,
                "listeners": {
                    name: {
                        "serving": health.serving,
                        "down": sorted(health.down),
                        "weights": health.weights,
                        **({"reasons": health.reasons} if health.reasons else {}),
                    }
                    for name, health in self.listeners.items()
                },
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, payload: bytes) -> "HealthView":
        raw = json.loads(payload)
        return cls(
            published_at=float(raw["published_at"]),
            reports_through=float(raw["reports_through"]),
            listeners={
                name: ListenerHealth(
                    serving=bool(item["serving"]),
                    down=frozenset(item["down"]),
                    weights=dict(item["weights"]),
                    reasons=dict(item.get("reasons", {})),
                )
                for name, item in raw["listeners"].items()
            },
        )


@dataclass(frozen=True, slots=True)
class PassiveReport:
    """A failed client connect: which listener, which backend, why (``refused``, ``timeout``...)."""

    listener: str
    backend: str
    reason: str

    def encode(self) -> bytes:
        return _SEPARATOR.join(part.encode() for part in (self.listener, self.backend, self.reason))

    @classmethod
    def decode(cls, datagram: bytes) -> "PassiveReport":
        parts = datagram.split(_SEPARATOR)
        if len(parts) != 3:
            raise ValueError(f"passive report needs 3 fields, got {len(parts)}: {datagram[:80]!r}")
        listener, backend, reason = (part.decode() for part in parts)
        return cls(listener, backend, reason)
