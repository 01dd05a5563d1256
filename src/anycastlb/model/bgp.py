"""The ``bgp:`` block of ``edge.yaml``: who the PoP peers with and how it announces its VIPs.

VIPs are not listed here: every listener bound to a specific address is a VIP, announced as a host
route (/32 or /128). ``vips`` only overrides path attributes for some of them.
"""

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from anycastlb.model.addresses import AddressError, parse_network
from anycastlb.model.base import Frozen, IPAddress
from anycastlb.model.duration import Duration

__all__ = ["BgpConfig", "BgpPeer", "VipAttributes"]

ASN = Annotated[int, Field(ge=1, le=4_294_967_295)]
_COMMUNITY = re.compile(r"^(\d{1,5}):(\d{1,5})$")


def _check_communities(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        match = _COMMUNITY.match(value)
        if not match or int(match.group(1)) > 65535 or int(match.group(2)) > 65535:
            raise ValueError(f"community {value!r} must be ASN:VALUE with both parts 0-65535, e.g. 65001:100")
    return values


class BgpPeer(Frozen):
    """An upstream router this PoP has an eBGP session with."""

    address: IPAddress
    remote_as: ASN
    local_address: IPAddress | None = None  # default: the kernel picks the source address
    hold_time: Duration = 3.0  # 0 (no keepalives) or 3 s to 65535 s; the router may ask for less
    bfd: bool = False  # answer BFD from this peer (a BIRD sidecar), so a silent PoP death is seen fast

    @model_validator(mode="after")
    def _consistent(self) -> "BgpPeer":
        if self.hold_time != 0 and not 3 <= self.hold_time <= 65535:
            raise ValueError(f"hold_time {self.hold_time}s must be 0 or 3s-65535s (RFC 4271 section 4.2)")
        if self.local_address is not None and self.local_address.version != self.address.version:
            raise ValueError(
                f"local_address {self.local_address} and address {self.address} are of different "
                "IP families; a session runs over one family"
            )
        return self


class VipAttributes(Frozen):
    """Path attributes for one VIP, overriding the PoP-wide ones."""

    prefix: str
    med: Annotated[int, Field(ge=0, le=4_294_967_295)] | None = None
    communities: tuple[str, ...] | None = None
    as_path_prepend: Annotated[int, Field(ge=0, le=10)] | None = None

    @field_validator("prefix")
    @classmethod
    def _host_prefix(cls, value: str) -> str:
        try:
            network = parse_network(value)
        except AddressError as error:
            raise ValueError(
                f"{error} (a VIP prefix is written e.g. 203.0.113.10/32 or 2001:db8::10/128)"
            ) from None
        if network.prefixlen != network.max_prefixlen:
            raise ValueError(f"{value} is not a host prefix: a VIP is announced as /32 (IPv4) or /128 (IPv6)")
        return str(network)

    @field_validator("communities")
    @classmethod
    def _communities(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_communities(value)


class BgpConfig(Frozen):
    """How this PoP announces its VIPs."""

    speaker: Literal["exabgp"] = "exabgp"
    local_as: ASN
    router_id: IPAddress  # a 32-bit identifier written as an IPv4 address (checked below)
    peers: tuple[BgpPeer, ...]
    next_hop: IPAddress | Literal["self"] = "self"  # for IPv4 VIPs
    next_hop_v6: IPAddress | Literal["self"] = "self"  # for IPv6 VIPs
    med: Annotated[int, Field(ge=0, le=4_294_967_295)] | None = None
    communities: tuple[str, ...] = ()
    as_path_prepend: Annotated[int, Field(ge=0, le=10)] = 0
    vips: tuple[VipAttributes, ...] = ()
    bfd_interval: Duration = 0.1  # BFD transmit/receive interval for peers with bfd: true
    bfd_multiplier: Annotated[int, Field(ge=1, le=255)] = 3  # intervals without a packet = down
    withdraw_delay: Duration = 2.0  # drain: time between withdrawing and closing the listeners
    hold_down: Duration = 1.0  # flap dampening: first hold-down before re-announcing a flapping VIP
    max_hold_down: Duration = 60.0

    @field_validator("communities")
    @classmethod
    def _communities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_communities(value)

    @field_validator("peers")
    @classmethod
    def _some_peer(cls, value: tuple[BgpPeer, ...]) -> tuple[BgpPeer, ...]:
        if not value:
            raise ValueError("list at least one router to peer with (address, remote_as)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "BgpConfig":
        if self.router_id.version != 4:
            raise ValueError(f"router_id {self.router_id} must be written as an IPv4 address (RFC 6286)")
        if self.next_hop != "self" and self.next_hop.version != 4:
            raise ValueError(
                f"next_hop {self.next_hop} must be an IPv4 address (next_hop_v6 is for IPv6 VIPs)"
            )
        if self.next_hop_v6 != "self" and self.next_hop_v6.version != 6:
            raise ValueError(f"next_hop_v6 {self.next_hop_v6} must be an IPv6 address")
        if self.bfd_interval < 0.01:
            raise ValueError("bfd_interval must be at least 10ms")
        if self.hold_down > self.max_hold_down:
            raise ValueError(
                f"hold_down ({self.hold_down}s) must be <= max_hold_down ({self.max_hold_down}s)"
            )
        seen: set[str] = set()
        for vip in self.vips:
            if vip.prefix in seen:
                raise ValueError(f"vips lists {vip.prefix} twice")
            seen.add(vip.prefix)
        return self
