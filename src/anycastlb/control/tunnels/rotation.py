"""A node's tunnel key through a rotation: the rules of the state machine, all in this file.

Theory of operation
-------------------
A WireGuard interface has one private key, and a PoP tells its peers apart by public key and
routes to each by the addresses it owns (``allowed_ips``, unique per interface). So a node cannot
hold its old and its new key at once, and the PoPs cannot route one address to two keys. Make
before break therefore gives the new key a NEW address::

      steady(K, A) ──rotate──► rotating(K', A' ; previous K, A until T) ──T passed──► steady(K', A')
                                    │ rotate again before T
                                    └──► refused (RotationInProgressError): the previous key is still
                                         in use somewhere, dropping it would cut that node

While rotating:
- every PoP has both peers, (K, A) and (K', A');
- the node's config (a new version) carries K' and A'; its agent switches when it sees it;
- the controller lists BOTH addresses as the node's backends. Before the agent switched, A
  answers and A' does not; after, the reverse. A PoP's connect to the dead one fails and is
  retried on the next candidate, and health checks eject it: no new connection fails.
- What breaks: connections open through A when the node's agent switches keys (its packets
  under K' are not A's; WireGuard drops them). That is the price of one key per interface.

After ``T`` (the grace period, 15 minutes by default: enough for a Secret to reach every node)
the control plane drops (K, A): the PoPs lose that peer and the controller lists only A'. A node
whose agent has not switched by then is unreachable until it does.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["NodeKey", "NodeKeyState", "RotationInProgressError", "expire", "peers", "rotate"]


class RotationInProgressError(Exception):
    """A node is still in its grace period; the message says until when."""


@dataclass(frozen=True, slots=True)
class NodeKey:
    private: str = field(repr=False)  # only the node's own config carries it
    public: str
    address: str  # the tunnel address this key owns


@dataclass(frozen=True, slots=True)
class NodeKeyState:
    current: NodeKey
    previous: NodeKey | None = None  # only the public key and address matter; private is kept ""
    previous_until: datetime | None = None

    @property
    def rotating(self) -> bool:
        return self.previous is not None

    @property
    def backend_addresses(self) -> tuple[str, ...]:
        """What the controller lists as this node's backends: the current address first."""
        return (
            (self.current.address,)
            if self.previous is None
            else (
                self.current.address,
                self.previous.address,
            )
        )


def rotate(state: NodeKeyState, fresh: NodeKey, now: datetime, grace: timedelta) -> NodeKeyState:
    """Start a rotation to ``fresh`` (a new key with a new address); the old pair stays a peer of
    every PoP until ``now + grace``."""
    if state.previous is not None:
        until = state.previous_until.isoformat() if state.previous_until else "?"
        raise RotationInProgressError(f"the previous key is kept until {until}")
    if fresh.address == state.current.address or fresh.public == state.current.public:
        raise ValueError("a rotation needs a new key and a new address")
    old = NodeKey("", state.current.public, state.current.address)
    return NodeKeyState(current=fresh, previous=old, previous_until=now + grace)


def expire(state: NodeKeyState, now: datetime) -> NodeKeyState:
    """Drop the previous key once its grace period has passed (else unchanged)."""
    if state.previous is None or state.previous_until is None or now < state.previous_until:
        return state
    return NodeKeyState(current=state.current)


def peers(state: NodeKeyState) -> tuple[tuple[str, str], ...]:
    """(public key, address) of each peer a PoP needs for this node: the current, then the previous."""
    found = [(state.current.public, state.current.address)]
    if state.previous is not None:
        found.append((state.previous.public, state.previous.address))
    return tuple(found)
