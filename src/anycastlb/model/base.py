"""Types every config model shares: frozen models, IP addresses, ports, names."""

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

from anycastlb.model.addresses import (
    Address,
    Network,
    address_text,
    check_address,
    parse_address,
    parse_bind_address,
    parse_network,
)
from anycastlb.model.duration import schema_defaults_with_units

__all__ = ["BindAddress", "Frozen", "IPAddress", "IPNetwork", "Port", "check_name", "parse_address"]

Port = Annotated[int, Field(ge=1, le=65535)]


def _parse_ip(value: object) -> Address:
    """Text through the one parser (``model/addresses.py``); objects are checked on its rules."""
    if isinstance(value, str):
        return parse_address(value)
    if isinstance(value, Address):
        return check_address(value)
    raise ValueError(f"expected an IPv4 or IPv6 address as a string, got {type(value).__name__}")


def _parse_bind(value: object) -> Address:
    if isinstance(value, str):
        return parse_bind_address(value)
    if isinstance(value, Address):
        return parse_bind_address(str(value))
    raise ValueError(f"expected an IPv4 or IPv6 address as a string, got {type(value).__name__}")


def _parse_net(value: object) -> Network:
    if isinstance(value, str):
        return parse_network(value)
    if isinstance(value, Network):
        return parse_network(str(value))
    raise ValueError(f"expected a network such as 203.0.113.0/24 as a string, got {type(value).__name__}")


def _network_text(network: Network) -> str:
    return str(network)


# A unicast address (VIP, backend, node, peer), in the canonical form of model/addresses.py.
IPAddress = Annotated[
    Address,
    PlainValidator(_parse_ip),
    PlainSerializer(address_text, return_type=str),  # stated: pydantic cannot read it through lru_cache
]
# An address to listen on: unicast, or the unspecified address (every address of the host).
BindAddress = Annotated[Address, PlainValidator(_parse_bind), PlainSerializer(address_text, return_type=str)]
IPNetwork = Annotated[Network, PlainValidator(_parse_net), PlainSerializer(_network_text, return_type=str)]
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=schema_defaults_with_units)


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-63 lowercase letters, digits or '-', starting and ending "
            "with a letter or digit (it is used in metric labels and logs)"
        )
    return value
