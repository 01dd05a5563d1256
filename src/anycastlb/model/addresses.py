"""Every IP address and network that enters anycastlb is read here, once, into one canonical form.

Why one parser: an address is an identity. The IPAM check, the UNIQUE column of the store, the edge's
listener table and Maglev all compare addresses, and each would see two spellings of one address as
two addresses. Python's ``ipaddress`` keeps an IPv6 scope id (``::1%1``, with any text after the
``%``, newlines included) as part of the address, so ``::1%1`` and ``::1`` compare unequal and print
differently: a second tenant once held "another" ``::1`` that way and took half of the first
tenant's connections. So every entry point (API bodies and paths, CLI, ``edge.yaml``, Kubernetes
annotations and node addresses, PoP reports, store reads) goes through these functions, and every
address that leaves them prints as ``str(address)`` (compressed, lowercase: RFC 5952).

The rules, and why:

- **Text is the address alone**: ASCII digits, hex letters, ``:`` and ``.`` (and one ``/`` before a
  decimal prefix length for a network). No scope id (``%...``): a scope names an interface of one
  host and means nothing to a VIP or a backend another machine connects to. No whitespace or
  control characters, not even around it: a caller that strips in one place and not in another
  makes two identities again.
- **An address is a unicast address of its family**: not unspecified (``0.0.0.0``, ``::``), not
  multicast, not the IPv4 broadcast ``255.255.255.255``. :func:`parse_bind_address` alone also
  accepts the unspecified address, for sockets a process listens on ("every address").
- **IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is refused** with a message to write ``a.b.c.d``: it is
  the same host as the IPv4 address, and accepting both would give one address two spellings (and
  two rows). IPv4-compatible ``::a.b.c.d`` is an ordinary IPv6 address (``::102:304``).
- Leading zeros in an IPv4 octet are refused (``ipaddress`` does: ``010.0.0.1`` is octal to some
  tools, decimal to others); IPv6 hextets may have them (``2001:db8::0001`` is ``2001:db8::1``).
- **A network is strict** (host bits zero), written ``ADDRESS/LENGTH``, not ``/0`` (that is "the
  whole Internet", never a pool or an allow-list), and contains no multicast, unspecified,
  broadcast or IPv4-mapped address.
- Which unicast ranges are usable stays the admin's choice of pools: documentation and
  benchmarking ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15, 2001:db8::/32)
  and loopback (the tests and the lab bind VIPs on 127.x) are valid here. What a *backend* may be is
  a further policy (``control/backend_policy.py``).

Parsing is cached (``lru_cache``): the same node addresses recur in every load balancer of a
cluster (1,000 backends per spec at 500 nodes x 2 ports), ``ip_address`` costs ~8 µs a call, and
address objects are immutable, so sharing them is safe.
"""

import ipaddress
from functools import lru_cache

__all__ = [
    "Address",
    "AddressError",
    "Network",
    "address_text",
    "check_address",
    "parse_address",
    "parse_bind_address",
    "parse_network",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_ADDRESS_CHARS = frozenset("0123456789abcdefABCDEF:.")
_MAX_ADDRESS_TEXT = 45  # the longest IPv6 text: 6 hextets of 4 digits and an embedded IPv4 address
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_MULTICAST_V4 = ipaddress.IPv4Network("224.0.0.0/4")
_MULTICAST_V6 = ipaddress.IPv6Network("ff00::/8")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_EXAMPLE = "write e.g. 203.0.113.10 or 2001:db8::10"
_NETWORK_EXAMPLE = "write e.g. 203.0.113.0/24 or 2001:db8:100::/48"


class AddressError(ValueError):
    """An address or network text that anycastlb refuses; the message says what to write instead."""


def _check_text(text: object, what: str, extra: str = "") -> str:
    if not isinstance(text, str):
        raise AddressError(f"expected {what} as a string, got {type(text).__name__}")
    if not text:
        raise AddressError(f"{what} is empty; {_EXAMPLE}")
    if "%" in text:
        raise AddressError(
            f"{text!r} carries an IPv6 scope id ('%...'); scope ids name an interface of one host and "
            f"are not accepted: write the address without it (e.g. {text.split('%', 1)[0]!r})"
        )
    for char in text:
        if char.isspace() or not char.isprintable() or not char.isascii():
            raise AddressError(
                f"{text!r} is not {what}: it contains {char!r} (whitespace, a control character or a "
                "non-ASCII character); write only the address, without spaces or other text"
            )
    if not frozenset(text) <= _ADDRESS_CHARS | frozenset(extra):
        raise AddressError(f"{text!r} is not {what} ({_EXAMPLE if not extra else _NETWORK_EXAMPLE})")
    return text


def _unicast_problem(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            bare = ipaddress.IPv6Address(int(address))
            return f"carries an IPv6 scope id (%{address.scope_id!r}); write {bare}"
        mapped = address.ipv4_mapped
        if mapped is not None:
            return (
                f"is an IPv4-mapped IPv6 address; write the IPv4 address {mapped} instead "
                "(one address has one spelling)"
            )
    if address.is_unspecified:
        return 'is the unspecified address ("any"), not the address of a host'
    if address.is_multicast:
        return "is a multicast address; only unicast addresses can be VIPs, backends or nodes"
    if address == _BROADCAST:
        return "is the IPv4 broadcast address, not the address of a host"
    return None


def _parse(text: str, what: str) -> Address:
    _check_text(text, what)
    if len(text) > _MAX_ADDRESS_TEXT:
        raise AddressError(f"{text[:60]!r}... is too long to be {what}; {_EXAMPLE}")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise AddressError(f"{text!r} is not an IPv4 or IPv6 address ({_EXAMPLE})") from None


def _unicast(address: Address, shown: str) -> Address:
    problem = _unicast_problem(address)
    if problem is not None:
        raise AddressError(f"{shown} {problem}")
    return address


@lru_cache(maxsize=65536)
def parse_address(text: str) -> Address:
    """A unicast address (a VIP, a backend, a node, a peer) in its one canonical object."""
    return _unicast(_parse(text, "an IP address"), repr(text))


@lru_cache(maxsize=1024)
def parse_bind_address(text: str) -> Address:
    """An address to listen on: a unicast address, or the unspecified one (every address)."""
    address = _parse(text, "an IP address")
    return address if address.is_unspecified else _unicast(address, repr(text))


@lru_cache(maxsize=65536)
def check_address(address: Address) -> Address:
    """An address object built elsewhere (a model copied with objects, ``ipaddress`` arithmetic):
    refused on the same rules as text. Cached: the objects hash with their scope id."""
    return _unicast(address, str(address))


@lru_cache(maxsize=65536)
def address_text(address: Address) -> str:
    """The canonical text (``str``), cached: ``str(IPv4Address)`` takes ~2 µs, and a load balancer at
    500 nodes dumps 1,000 of them for each comparison and answer."""
    return str(address)


def _network_problem(network: Network) -> str | None:
    if network.prefixlen == 0:
        return "is /0, every address of the family; name the prefix you hold"
    if isinstance(network, ipaddress.IPv4Network):
        refused: tuple[tuple[bool, str], ...] = (
            (network.overlaps(_MULTICAST_V4), f"overlaps the multicast range {_MULTICAST_V4}"),
            (network.network_address.is_unspecified, "contains the unspecified address 0.0.0.0"),
            (network.broadcast_address == _BROADCAST, "contains the IPv4 broadcast address 255.255.255.255"),
        )
    else:
        refused = (
            (network.overlaps(_MULTICAST_V6), f"overlaps the multicast range {_MULTICAST_V6}"),
            (network.overlaps(_MAPPED), f"overlaps the IPv4-mapped range {_MAPPED}; write the IPv4 prefix"),
            (network.network_address.is_unspecified, "contains the unspecified address ::"),
        )
    return next((problem for hit, problem in refused if hit), None)


@lru_cache(maxsize=4096)
def parse_network(text: str) -> Network:
    """A prefix (a pool, an allow-list, a platform network) as ``ADDRESS/LENGTH``, host bits zero."""
    _check_text(text, "a network", extra="/")
    address_part, slash, length = text.partition("/")
    if not slash or not length.isdigit() or (length != "0" and length.startswith("0")) or len(length) > 3:
        raise AddressError(f"{text!r} is not ADDRESS/LENGTH with a decimal prefix length; {_NETWORK_EXAMPLE}")
    address = _parse(address_part, "a network address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise AddressError(
            f"{text!r} is an IPv4-mapped IPv6 prefix; write the IPv4 prefix instead (one address has one "
            "spelling)"
        )
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        raise AddressError(
            f"{text!r} is not a CIDR prefix with its host bits zero ({error}); {_NETWORK_EXAMPLE}"
        ) from None
    problem = _network_problem(network)
    if problem is not None:
        raise AddressError(f"network {text!r} {problem}")
    return network
