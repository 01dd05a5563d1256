"""What to do to turn the running tunnel interfaces into the desired ones (pure).

Declare, don't command: the caller hands the whole desired set and the plan says which interfaces
to create, which to change and how, and which to remove. A change keeps the interface (so its
established sessions and its wireguard-go process survive) and touches only what differs:

- keys, listen port or peers → ``wg syncconf`` (peers that did not change keep their sessions);
- addresses → ``ip addr`` add/del of exactly the ones that differ;
- MTU → ``ip link set mtu``.
"""

from dataclasses import dataclass

from anycastlb.model.tunnel import TunnelInterface

__all__ = ["InterfaceChange", "TunnelPlan", "TunnelPlanError", "plan_tunnels"]


class TunnelPlanError(ValueError):
    """The desired interfaces contradict each other (two with one name)."""


@dataclass(frozen=True)
class InterfaceChange:
    interface: TunnelInterface  # the desired state of a running interface
    wireguard: bool  # keys, listen port or peers differ: sync the WireGuard config
    add_addresses: tuple[str, ...]
    remove_addresses: tuple[str, ...]
    mtu: bool


@dataclass(frozen=True)
class TunnelPlan:
    create: tuple[TunnelInterface, ...] = ()
    change: tuple[InterfaceChange, ...] = ()
    remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create or self.change or self.remove)


def _wireguard_part(interface: TunnelInterface) -> tuple[object, ...]:
    return (interface.private_key, interface.listen_port, interface.peers)


def _change(running: TunnelInterface, wanted: TunnelInterface) -> InterfaceChange | None:
    have = [str(address) for address in running.addresses]
    want = [str(address) for address in wanted.addresses]
    change = InterfaceChange(
        interface=wanted,
        wireguard=_wireguard_part(running) != _wireguard_part(wanted),
        add_addresses=tuple(address for address in want if address not in have),
        remove_addresses=tuple(address for address in have if address not in want),
        mtu=running.mtu != wanted.mtu,
    )
    if not (change.wireguard or change.add_addresses or change.remove_addresses or change.mtu):
        return None
    return change


def plan_tunnels(running: dict[str, TunnelInterface], desired: tuple[TunnelInterface, ...]) -> TunnelPlan:
    """The steps from ``running`` (by name) to ``desired``; an empty plan when they are equal."""
    wanted: dict[str, TunnelInterface] = {}
    for interface in desired:
        if interface.name in wanted:
            raise TunnelPlanError(
                f"two tunnel interfaces are named {interface.name!r}: give each cluster its own name"
            )
        wanted[interface.name] = interface
    create = tuple(interface for name, interface in wanted.items() if name not in running)
    change = tuple(
        found
        for name, interface in wanted.items()
        if name in running and (found := _change(running[name], interface)) is not None
    )
    remove = tuple(sorted(name for name in running if name not in wanted))
    return TunnelPlan(create, change, remove)
