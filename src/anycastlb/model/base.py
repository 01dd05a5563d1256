"""Types every config model shares: frozen models, IP addresses, ports, names."""

import ipaddress
import re
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

__all__ = ["Frozen", "IPAddress", "Port", "check_name", "parse_address"]

Port = Annotated[int, Field(ge=1, le=65535)]


@lru_cache(maxsize=65536)
def parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Cached: the same few hundred node addresses recur in every load balancer of a cluster
    (1,000 backends per spec at 500 nodes x 2 ports), and ``ip_address`` costs ~8 µs a call.
    The address objects are immutable, so sharing them is safe."""
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IPv4 or IPv6 address (write e.g. 203.0.113.10 or 2001:db8::10)"
        ) from None


def _parse_ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 or IPv6 address as a string, got {type(value).__name__}")
    return parse_address(value)


# The text of an address, cached for the same reason as the parsing: str(IPv4Address) takes
# ~2 µs, and a load balancer at 500 nodes dumps 1,000 of them for each comparison and answer.
@lru_cache(maxsize=65536)
def _address_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return str(address)


IPAddress = Annotated[
    ipaddress.IPv4Address | ipaddress.IPv6Address,
    PlainValidator(_parse_ip),
    PlainSerializer(_address_text, return_type=str),  # stated: pydantic cannot read it through lru_cache
]
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-63 lowercase letters, digits or '-', starting and ending "
            "with a letter or digit (it is used in metric labels and logs)"
        )
    return value
