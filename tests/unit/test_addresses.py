"""The one address parser (model/addresses.py): random spellings give a clear error or one canonical
form, and two spellings of one address always give the same object and text."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anycastlb.model.addresses import AddressError, parse_address, parse_network
from anycastlb.model.config import ConfigError, parse_config

Outcome = ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network


def outcome(parse: object, text: str) -> Outcome | AddressError:
    """The parsed value, or the refusal (the only exception a parser may raise)."""
    try:
        return parse(text)  # type: ignore[operator, no-any-return]
    except AddressError as error:
        return error


v4 = st.ip_addresses(v=4)
v6 = st.ip_addresses(v=6)


@st.composite
def v6_spellings(draw: st.DrawFn) -> tuple[ipaddress.IPv6Address, str]:
    """An IPv6 address written in one of its many ways: exploded or compressed (``::`` at any run of
    zeros), leading zeros kept or dropped per hextet, upper or lower case per hextet."""
    address = ipaddress.IPv6Address(int(draw(v6)))
    hextets = address.exploded.split(":")
    written = []
    for hextet in hextets:
        text = hextet if draw(st.booleans()) else (hextet.lstrip("0") or "0")
        written.append(text.upper() if draw(st.booleans()) else text)
    zero_runs = [i for i, h in enumerate(hextets) if int(h, 16) == 0]
    compress: bool = draw(st.booleans())
    if zero_runs and compress:
        start: int = draw(st.sampled_from(zero_runs))
        end = start
        while end + 1 < 8 and int(hextets[end + 1], 16) == 0:
            longer: bool = draw(st.booleans())
            if not longer:
                break
            end += 1
        head, tail = ":".join(written[:start]), ":".join(written[end + 1 :])
        return address, f"{head}::{tail}"
    return address, ":".join(written)


@given(v6_spellings())
def test_every_spelling_of_an_ipv6_address_gives_one_canonical_object_and_text(
    case: tuple[ipaddress.IPv6Address, str],
) -> None:
    address, text = case
    parsed = outcome(parse_address, text)
    if isinstance(parsed, AddressError):  # a clear refusal: a class of address, never a spelling
        assert any(word in str(parsed) for word in ("unspecified", "multicast", "IPv4-mapped")), parsed
        assert address.is_unspecified or address.is_multicast or address.ipv4_mapped is not None
        return
    assert parsed == address
    assert str(parsed) == str(address) == str(parse_address(str(address)))
    assert parse_address(str(parsed)) == parsed  # the canonical text round-trips


_NOISE = st.sampled_from(["%1", "%eth0", "%eth0\n", "%", " ", "\t", "\n", "\r\n", "\x00", "\u00a0", "\u200b"])


@given(st.one_of(v4, v6), _NOISE, st.sampled_from(["before", "after", "inside"]))
def test_scope_ids_whitespace_and_control_characters_are_refused_wherever_they_are(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, noise: str, where: str
) -> None:
    text = str(address)
    middle = len(text) // 2
    spelled = {"before": noise + text, "after": text + noise, "inside": text[:middle] + noise + text[middle:]}
    with pytest.raises(AddressError) as error:
        parse_address(spelled[where])
    assert any(
        word in str(error.value) for word in ("scope id", "whitespace", "not an IPv4 or IPv6 address")
    ), error.value


@given(v4)
def test_an_ipv4_mapped_spelling_is_refused_with_the_ipv4_spelling_to_use(
    address: ipaddress.IPv4Address,
) -> None:
    for text in (f"::ffff:{address}", f"::FFFF:{address}", str(ipaddress.IPv6Address(f"::ffff:{address}"))):
        with pytest.raises(AddressError, match=f"write the IPv4 address {address} instead"):
            parse_address(text)


@given(v4)
def test_leading_zeros_in_ipv4_are_refused_never_read_as_another_address(
    address: ipaddress.IPv4Address,
) -> None:
    octets = str(address).split(".")
    padded = ".".join(["0" + octets[0], *octets[1:]])
    with pytest.raises(AddressError, match="not an IPv4 or IPv6 address"):
        parse_address(padded)


@given(st.text(max_size=50))
def test_any_text_is_refused_clearly_or_parsed_to_its_canonical_form(text: str) -> None:
    parsed = outcome(parse_address, text)
    if isinstance(parsed, AddressError):
        assert str(parsed)
        return
    assert isinstance(parsed, ipaddress.IPv4Address | ipaddress.IPv6Address)
    assert parse_address(str(parsed)) == parsed
    assert not parsed.is_unspecified and not parsed.is_multicast


@pytest.mark.parametrize(
    "text",
    [
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "198.18.0.1",
        "198.19.255.254",
        "2001:db8::1",
        "127.0.0.1",
        "::1",
    ],
)
def test_documentation_benchmarking_and_loopback_addresses_stay_valid(text: str) -> None:
    assert str(parse_address(text)) == text


@given(st.one_of(v4, v6), st.integers(min_value=1, max_value=128))
def test_networks_are_canonical_and_never_everything(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, length: int
) -> None:
    length = min(length, address.max_prefixlen)
    network = ipaddress.ip_network(f"{address}/{length}", strict=False)
    parsed = outcome(parse_network, f"{network.network_address.exploded.upper()}/{length}")
    if isinstance(parsed, AddressError):
        assert any(w in str(parsed) for w in ("multicast", "unspecified", "broadcast", "IPv4-mapped")), parsed
        return
    assert parsed == network
    assert str(parsed) == str(network)


@pytest.mark.parametrize("text", ["0.0.0.0/0", "::/0", "2001:db8:7::%1/64", "224.0.0.0/4", "ff00::/8"])
def test_everything_multicast_and_scoped_networks_are_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_network(text)


@pytest.mark.parametrize(
    ("address", "words"),
    [("::1%1", "scope id"), (" 10.0.0.1", "whitespace"), ("::ffff:10.0.0.1", "write the IPv4 address")],
)
def test_the_edge_config_refuses_the_same_spellings(address: str, words: str) -> None:
    raw = {
        "pop": "fra",
        "listeners": [
            {
                "name": "web",
                "address": "127.0.0.1",
                "port": 80,
                "backends": [{"address": address, "port": 80}],
            }
        ],
    }
    with pytest.raises(ConfigError, match=words):
        parse_config(raw)


def test_a_listener_and_the_metrics_endpoint_may_bind_every_address() -> None:
    config = parse_config(
        {
            "pop": "fra",
            "metrics": {"address": "::", "port": 9100},
            "listeners": [{"name": "web", "address": "0.0.0.0", "port": 80}],
        }
    )
    assert str(config.listeners[0].address) == "0.0.0.0"
    assert config.metrics is not None and str(config.metrics.address) == "::"
