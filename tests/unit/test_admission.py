"""The decision at accept: per-source limits before per-listener ones, sources as prefixes."""

import pytest

from anycastlb.dataplane.admission import Admission, source_key
from anycastlb.dataplane.limits import SharedCounters
from anycastlb.dataplane.rate_limits import RateWindows
from anycastlb.model.config import Listener

T0 = 1_000_000.0
KEY = bytes(range(16))


def web(**settings: object) -> Listener:
    return Listener.model_validate({"name": "web", "address": "203.0.113.10", "port": 443, **settings})


def admission(**settings: object) -> Admission:
    return Admission(web(**settings), SharedCounters(workers=1, key=KEY), RateWindows(workers=1, key=KEY))


@pytest.mark.parametrize(
    ("first", "second", "prefix_v4", "prefix_v6", "same"),
    [
        ("198.51.100.7", "198.51.100.7", 32, 128, True),
        ("198.51.100.7", "198.51.100.8", 32, 128, False),
        ("198.51.100.7", "198.51.100.200", 24, 128, True),
        ("198.51.100.7", "198.51.101.7", 24, 128, False),
        ("198.51.100.7", "198.51.101.7", 16, 128, True),
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 32, 64, True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", 32, 64, False),
        ("2001:db8:1:2::1", "2001:db8:1:2::2", 32, 128, False),
        ("fe80::1%eth0", "fe80::1", 32, 64, True),
        ("10.0.0.0", "::a00:0", 8, 8, False),  # families never share a source
        # an IPv4-mapped peer is an IPv6 source, as the socket reports it: never its IPv4 address
        ("198.51.100.7", "::ffff:198.51.100.7", 32, 128, False),
        ("::ffff:198.51.100.7", "::ffff:198.51.100.8", 24, 120, True),
        ("::ffff:198.51.100.7", "::ffff:198.51.100.8", 24, 128, False),
    ],
)
def test_sources_are_aggregated_by_prefix(
    first: str, second: str, prefix_v4: int, prefix_v6: int, same: bool
) -> None:
    assert (source_key(first, prefix_v4, prefix_v6) == source_key(second, prefix_v4, prefix_v6)) is same


def test_a_prefix_key_never_equals_the_whole_address_key() -> None:
    assert source_key("10.0.0.0", 24, 128) != source_key("10.0.0.0", 32, 128)


@pytest.mark.parametrize(
    ("address", "prefix_v4", "prefix_v6", "packed"),
    [
        ("198.51.100.7", 32, 128, "04 20 c6 33 64 07"),
        ("198.51.100.7", 20, 128, "04 14 c6 33 60 00"),
        ("2001:db8:1:2::1", 32, 64, "06 40 20 01 0d b8 00 01 00 02 00 00 00 00 00 00 00 00"),
        ("::ffff:198.51.100.7", 32, 128, "06 80 00 00 00 00 00 00 00 00 00 00 ff ff c6 33 64 07"),
        ("fe80::1%eth0", 32, 128, "06 80 fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 01"),
    ],
)
def test_a_source_key_is_family_prefix_length_and_masked_address(
    address: str, prefix_v4: int, prefix_v6: int, packed: str
) -> None:
    assert source_key(address, prefix_v4, prefix_v6) == bytes.fromhex(packed)


@pytest.mark.parametrize("address", ["", "198.51.100", "2001:db8::g", "example.org", "198.51.100.7\0"])
def test_what_is_not_an_address_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="is not an IPv"):
        admission().admit(address, T0)


def test_a_source_over_its_rate_is_refused_while_another_source_is_admitted() -> None:
    limits = admission(new_connections_per_second_per_source=3)
    outcomes = [limits.admit("198.51.100.7", T0)[0] for _ in range(5)]

    assert outcomes == ["", "", "", "source_rate", "source_rate"]
    assert limits.admit("198.51.100.8", T0)[0] == ""


def test_with_a_slash_24_neighbours_share_the_rate() -> None:
    limits = admission(new_connections_per_second_per_source=2, source_prefix_v4=24)
    assert limits.admit("198.51.100.7", T0)[0] == ""
    assert limits.admit("198.51.100.8", T0)[0] == ""

    assert limits.admit("198.51.100.9", T0)[0] == "source_rate"
    assert limits.admit("198.51.101.9", T0)[0] == ""


def test_with_a_slash_24_neighbours_share_the_open_connection_limit() -> None:
    limits = admission(max_connections_per_source=1, source_prefix_v4=24)
    assert limits.admit("198.51.100.7", T0)[0] == ""

    assert limits.admit("198.51.100.8", T0)[0] == "source_limit"


def test_refused_attempts_of_one_source_do_not_use_up_the_listeners_rate() -> None:
    limits = admission(new_connections_per_second=10, new_connections_per_second_per_source=2)
    flood = [limits.admit("198.51.100.66", T0)[0] for _ in range(1000)]

    others = [limits.admit(f"192.0.2.{host}", T0)[0] for host in range(1, 12)]

    assert flood.count("") == 2
    assert others == [""] * 8 + ["listener_rate"] * 3


def test_a_closed_connection_gives_its_slots_back() -> None:
    limits = admission(max_connections=1)
    reason, source_bucket = limits.admit("198.51.100.7", T0)
    assert reason == ""
    assert limits.admit("198.51.100.8", T0)[0] == "listener_limit"

    limits.release(source_bucket)

    assert limits.admit("198.51.100.8", T0)[0] == ""


def test_a_renamed_listener_gives_slots_back_where_they_were_taken() -> None:
    limits = admission(max_connections=1)
    _, source_bucket = limits.admit("198.51.100.7", T0)
    renamed = limits.updated(web(name="web2", max_connections=1))

    renamed.release(source_bucket)

    assert limits.admit("198.51.100.8", T0)[0] == ""


def test_only_the_agents_key_moves_buckets_and_the_decisions_stay_the_same() -> None:
    listener = web(max_connections_per_source=2)
    other_key = bytes(range(16, 32))
    here = Admission(listener, SharedCounters(workers=1, key=KEY), RateWindows(workers=1, key=KEY))
    there = Admission(listener, SharedCounters(workers=1, key=other_key), RateWindows(1, other_key))

    decided = [
        (here.admit(f"198.51.100.{i % 3}", T0), there.admit(f"198.51.100.{i % 3}", T0)) for i in range(9)
    ]

    assert [a[0] for a, _ in decided] == [b[0] for _, b in decided] == [""] * 6 + ["source_limit"] * 3
    assert here.listener_bucket != there.listener_bucket  # 1 chance in 2^18 to be equal
