"""WireGuard tunnels between PoPs and the nodes of a cluster: the contract every tier shares.

Why tunnels: a node behind NAT or on a private network has no nodePort a PoP can reach, and a
nodePort reached over the Internet carries client bytes in the clear. So each node dials out to
every PoP over WireGuard (UDP; no inbound port on the cluster side) and the PoPs reach the node at
its tunnel address. The PROXY header still names the real client: the tunnel only carries the
PoP's own connection to the node.

Who holds what:
- The control plane creates and rotates every key, allocates the tunnel addresses (one network per
  cluster) and hands each PoP a :class:`TunnelInterface` per cluster it serves, with only that
  cluster's node peers, in its desired state.
- Each node runs the cluster side from a :class:`NodeTunnelConfig` (the controller puts it in a
  Secret that the node agent mounts): one interface whose peers are the PoPs, each with the
  endpoint to dial and a keepalive so the NAT keeps the mapping open.
- The controller uses a node's tunnel address as its backend address.

Private keys are plain strings on the wire (the PoP and the node need them) but never appear in a
``repr``, a log line, the audit log or the status page.
"""

import base64
import binascii
import ipaddress
from typing import Annotated

from pydantic import Field, PlainSerializer, PlainValidator, field_validator, model_validator

from anycastlb.model.base import Frozen, IPNetwork, Port, check_name

__all__ = [
    "InterfaceAddress",
    "NodeTunnelConfig",
    "TunnelInterface",
    "TunnelPeer",
    "check_interface_name",
    "check_wireguard_key",
]

WIREGUARD_PORT = 51820


def check_wireguard_key(value: str) -> str:
    """A Curve25519 key as ``wg`` prints it: 44 characters of base64 for 32 bytes."""
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raw = b""
    if len(value) != 44 or len(raw) != 32:
        raise ValueError("a WireGuard key is 44 characters of base64 (32 bytes), as `wg genkey` prints")
    return value


def check_interface_name(value: str) -> str:
    """Linux limits interface names to 15 bytes (IFNAMSIZ - 1)."""
    check_name(value, "tunnel interface name")
    if len(value) > 15:
        raise ValueError(f"tunnel interface name {value!r} is longer than 15 characters (the kernel's limit)")
    return value


WireGuardKey = Annotated[str, Field(min_length=44, max_length=44)]

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _parse_interface(value: object) -> Interface:
    if isinstance(value, Interface):
        return value
    if not isinstance(value, str):
        found = type(value).__name__
        raise ValueError(f"expected an address with its prefix such as 100.96.0.1/24, got {found}")
    try:
        parsed = ipaddress.ip_interface(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an address with its prefix such as 100.96.0.1/24") from None
    if parsed.network.prefixlen == parsed.max_prefixlen or parsed.ip == parsed.network.network_address:
        raise ValueError(f"{value!r}: give this side's address inside its network, such as 100.96.0.1/24")
    return parsed


# This side's tunnel address with the prefix of the cluster's tunnel network: 100.96.0.1/24.
InterfaceAddress = Annotated[
    Interface, PlainValidator(_parse_interface), PlainSerializer(str, return_type=str)
]


class TunnelPeer(Frozen):
    """The other end of a tunnel: a node (on a PoP's interface) or a PoP (on a node's interface)."""

    name: str  # the node's or the PoP's name: labels metrics and logs, never the key
    public_key: WireGuardKey
    allowed_ips: tuple[IPNetwork, ...]  # the peer's tunnel address(es), /32 or /128
    # host:port to dial. Nodes set it for each PoP; a PoP leaves it unset and learns the node's
    # (NATed) endpoint from the node's first handshake.
    endpoint: str | None = None
    persistent_keepalive: Annotated[int, Field(ge=0, le=3600)] = 0  # seconds; nodes behind NAT: 25

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        return check_wireguard_key(value)

    @field_validator("allowed_ips")
    @classmethod
    def _hosts(cls, value: tuple[IPNetwork, ...]) -> tuple[IPNetwork, ...]:
        if not value:
            raise ValueError("allowed_ips must name the peer's tunnel address")
        for network in value:
            if network.prefixlen != network.max_prefixlen:
                raise ValueError(f"allowed_ips {network}: a peer owns single addresses (/32 or /128)")
        return value


class TunnelInterface(Frozen):
    """One WireGuard interface: a PoP has one per cluster it serves, a node one for all PoPs."""

    name: str  # the Linux interface, at most 15 characters
    private_key: WireGuardKey = Field(repr=False)
    addresses: tuple[InterfaceAddress, ...]  # this side's tunnel address(es): 100.96.0.1/24
    listen_port: Port | None = None  # a PoP's UDP port the nodes dial; None on nodes (any port)
    mtu: Annotated[int, Field(ge=1280, le=9000)] = 1420
    peers: tuple[TunnelPeer, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_interface_name(value)

    @field_validator("private_key")
    @classmethod
    def _key(cls, value: str) -> str:
        return check_wireguard_key(value)

    @model_validator(mode="after")
    def _distinct_peers(self) -> "TunnelInterface":
        keys: set[str] = set()
        owned: set[str] = set()
        for peer in self.peers:
            if peer.public_key in keys:
                raise ValueError(f"peer {peer.name!r}: its public key is used by another peer")
            keys.add(peer.public_key)
            for network in peer.allowed_ips:
                if str(network) in owned:
                    raise ValueError(f"peer {peer.name!r}: {network} is claimed by another peer")
                owned.add(str(network))
        return self


class NodeTunnelConfig(Frozen):
    """What a node's agent brings up: the cluster side of every PoP's tunnel for this node."""

    cluster: str
    node: str
    version: int  # grows with every change (a rotation, a PoP added); the agent applies the newest
    interface: TunnelInterface

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str) -> str:
        return check_name(value, "cluster")
