"""Maglev hashing: balance, minimal disruption, cross-process determinism, retry candidates, validation."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import random
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anycastlb
from anycastlb.dataplane.maglev import (
    DEFAULT_TABLE_SIZE,
    MaglevBackend,
    MaglevTable,
    client_key,
)

SMALL_PRIME = 1009  # enough for up to 10 backends; keeps property tests fast
SRC = Path(anycastlb.__file__).resolve().parents[1]


def _names(n: int) -> list[str]:
    return [f"10.0.0.{11 + i}:30443" for i in range(n)]


@cache
def _table(
    weights: tuple[int, ...], names: tuple[str, ...] | None = None, size: int = DEFAULT_TABLE_SIZE
) -> MaglevTable:
    """A table over ``names`` (default ``_names``) with ``weights``; cached, as tables are immutable."""
    names = names or tuple(_names(len(weights)))
    return MaglevTable([MaglevBackend(n, w) for n, w in zip(names, weights, strict=True)], size)


def _slot_names(table: MaglevTable) -> list[str]:
    return [table.backends[i].name for i in table.entries]


def _digest(table: MaglevTable) -> str:
    return hashlib.sha256("\n".join(_slot_names(table)).encode()).hexdigest()


def _random_keys(count: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.randbytes(4) for _ in range(count)]


def _moved_fraction(old: MaglevTable, new: MaglevTable, removed: str | None = None) -> float:
    """Fraction of slots whose backend name changed, among slots not owned by ``removed``."""
    pairs = [(a, b) for a, b in zip(_slot_names(old), _slot_names(new), strict=True) if a != removed]
    return sum(a != b for a, b in pairs) / len(pairs)


WEIGHT_SETS = [(1,) * n for n in range(1, 11)] + [(1, 2, 3, 4), tuple(range(1, 11)), (5, 1), (3, 3, 1, 10, 2)]


@pytest.mark.parametrize("weights", WEIGHT_SETS, ids=str)
def test_each_backend_owns_a_share_of_entries_within_one_percent_of_its_weight(
    weights: tuple[int, ...],
) -> None:
    table = _table(weights)
    counts = Counter(table.entries)
    for i, weight in enumerate(weights):
        ideal = weight / sum(weights)
        assert abs(counts[i] / table.size - ideal) / ideal < 0.01


def test_only_the_ratios_of_weights_matter() -> None:
    assert _digest(_table((2, 4, 6))) == _digest(_table((1, 2, 3)))


@pytest.mark.parametrize("weights", [(1, 1, 1), (1, 2, 3, 4), (1, 1, 1, 1, 1)], ids=str)
def test_random_client_keys_spread_over_backends_within_two_percent_of_their_weights(
    weights: tuple[int, ...],
) -> None:
    table = _table(weights)
    keys = _random_keys(200_000)
    counts = Counter(table.lookup(k) for k in keys)
    for i, weight in enumerate(weights):
        ideal = weight / sum(weights)
        assert abs(counts[i] / len(keys) - ideal) / ideal < 0.02


SEQUENTIAL_CLIENTS = {
    "ipv4 /16": [str(a) for a in ipaddress.ip_network("10.1.0.0/16")],
    "ipv6 /112": [str(a) for a in ipaddress.ip_network("2001:db8::/112")],
    "ipv6 one per /48": [f"2001:db8:{i:x}::1" for i in range(65536)],
}


@pytest.mark.parametrize("addresses", SEQUENTIAL_CLIENTS.values(), ids=SEQUENTIAL_CLIENTS.keys())
def test_sequential_client_addresses_spread_as_evenly_as_random_ones(addresses: list[str]) -> None:
    table = _table((1, 1, 1, 1))
    keys = [client_key(a) for a in addresses]
    counts = Counter(table.lookup(k) for k in keys)
    for i in range(4):
        assert abs(counts[i] / len(keys) - 0.25) / 0.25 < 0.04
    slots = len({table._slot(k) for k in keys})
    assert slots > 0.95 * (1 - 1 / math.e) * len(keys)  # random keys fill ~63 % of as many slots


@pytest.mark.parametrize("n", range(3, 11))
def test_removing_one_backend_moves_almost_only_the_keys_that_were_on_it(n: int) -> None:
    names = tuple(_names(n))
    removed = names[n // 2]
    kept = tuple(name for name in names if name != removed)
    moved = _moved_fraction(_table((1,) * n, names), _table((1,) * (n - 1), kept), removed)
    assert moved < 0.01  # measured <= 0.3 %; the paper calls this near-minimal


@pytest.mark.parametrize("removed_index", [0, 4], ids=["lightest", "heaviest"])
def test_removing_a_weighted_backend_moves_almost_only_its_keys(removed_index: int) -> None:
    names, weights = tuple(_names(5)), (1, 2, 3, 4, 5)
    keep = [i for i in range(5) if i != removed_index]
    new = _table(tuple(weights[i] for i in keep), tuple(names[i] for i in keep))
    assert _moved_fraction(_table(weights, names), new, names[removed_index]) < 0.01


@pytest.mark.parametrize("n", [3, 5, 10])
def test_adding_a_backend_moves_about_one_key_in_n_plus_one(n: int) -> None:
    names = tuple(_names(n))
    grown = (*names, "10.0.9.9:30443")
    moved = _moved_fraction(_table((1,) * n, names), _table((1,) * (n + 1), grown))
    ideal = 1 / (n + 1)  # what the new backend must take; nothing else should move
    assert 0.99 * ideal < moved < 1.1 * ideal


def test_raising_one_weight_moves_close_to_the_minimum_number_of_keys() -> None:
    old, new = _table((1, 2, 3)), _table((2, 2, 3))
    minimum = 2 / 7 - 1 / 6  # backend 0's share grows from 1/6 to 2/7
    assert minimum <= _moved_fraction(old, new) < 1.1 * minimum


_CHILD = """
import hashlib
from anycastlb.dataplane.maglev import MaglevBackend, MaglevTable, client_key
t = MaglevTable([MaglevBackend(f"10.0.0.{11 + i}:30443", 1 + i % 3) for i in range(7)])
names = "\\n".join(t.backends[i].name for i in t.entries)
keys = [client_key(a) for a in ("192.0.2.1", "2001:db8::7", "::ffff:198.51.100.9")]
print(hashlib.sha256(names.encode()).hexdigest(), *[t.candidates(k, 3) for k in keys])
"""


def test_tables_are_identical_across_processes_with_different_hash_seeds() -> None:
    outputs = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(SRC)}
        run = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1


PINNED_DIGEST = "b850830c0b55f55b6c96016b18a77300c8c916889bacc44be751c8a183eaaf11"
PINNED_NAME = "10.0.0.13:30443"


def test_the_table_for_a_known_backend_set_is_pinned_so_mixed_versions_agree() -> None:
    # If this changes, PoPs running different versions would send a client to different nodes:
    # change the algorithm only on purpose, and then update this digest.
    table = _table((1, 2, 3), ("10.0.0.11:30443", "10.0.0.12:30443", "10.0.0.13:30443"))
    assert _digest(table) == PINNED_DIGEST
    assert table.backends[table.lookup(client_key("192.0.2.1"))].name == PINNED_NAME


def test_the_order_of_backends_does_not_change_which_name_a_key_maps_to() -> None:
    names = tuple(_names(8))
    shuffled = tuple(random.Random(3).sample(names, len(names)))
    assert _slot_names(_table((1,) * 8, names)) == _slot_names(_table((1,) * 8, shuffled))


@settings(max_examples=50, deadline=None)
@given(weighted=st.permutations(list(zip(_names(6), [1, 2, 3, 1, 5, 2], strict=True))))
def test_any_order_of_weighted_backends_gives_the_same_names_per_slot(
    weighted: list[tuple[str, int]],
) -> None:
    reference = MaglevTable([MaglevBackend(n, w) for n, w in sorted(weighted)], SMALL_PRIME)
    table = MaglevTable([MaglevBackend(n, w) for n, w in weighted], SMALL_PRIME)
    assert _slot_names(table) == _slot_names(reference)


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.integers(1, 5), min_size=1, max_size=10),
    key=st.binary(min_size=4, max_size=16),
    limit=st.integers(0, 12),
)
def test_candidates_are_distinct_start_with_lookup_and_number_min_of_limit_and_backends(
    weights: list[int], key: bytes, limit: int
) -> None:
    table = _table(tuple(weights), size=SMALL_PRIME)
    found = table.candidates(key, limit)
    assert len(found) == len(set(found)) == min(limit, len(weights))
    assert found == table.candidates(key, limit)
    if limit:
        assert found[0] == table.lookup(key)
        assert table.candidates(key, limit - 1) == found[: limit - 1]  # a longer list only appends


def test_candidates_are_the_same_in_a_freshly_built_table() -> None:
    fresh = MaglevTable([MaglevBackend(n) for n in _names(5)])
    for key in _random_keys(1000):
        assert fresh.candidates(key, 3) == _table((1,) * 5).candidates(key, 3)


@pytest.mark.parametrize(("n", "limit", "bound"), [(5, 2, 0.78), (10, 2, 0.85), (5, 3, 0.68), (10, 3, 0.75)])
def test_candidates_after_removing_a_backend_are_mostly_the_old_ones_without_it(
    n: int, limit: int, bound: float
) -> None:
    names = tuple(_names(n))
    removed = names[1]
    old = _table((1,) * n, names)
    new = _table((1,) * (n - 1), tuple(name for name in names if name != removed))
    same = total = 0
    for key in _random_keys(20_000):
        before = [old.backends[i].name for i in old.candidates(key, limit + 1)]
        if before[0] == removed:
            continue  # these keys must move; their retry order is a fresh draw
        after = [new.backends[i].name for i in new.candidates(key, limit)]
        total += 1
        same += after == [name for name in before if name != removed][:limit]
    # Measured: 0.83 (n=5) to 0.89 (n=10) for limit 2, 0.72 to 0.80 for limit 3. The table walk trades
    # this for O(limit) cost per connection (see MaglevTable.candidates).
    assert same / total > bound


def test_keys_of_a_failed_backend_fail_over_evenly_to_the_others() -> None:
    table = _table((1,) * 5)
    second = Counter(c[1] for c in (table.candidates(k, 2) for k in _random_keys(100_000)) if c[0] == 2)
    assert set(second) == {0, 1, 3, 4}
    for count in second.values():
        assert abs(count / second.total() - 0.25) / 0.25 < 0.1


def test_a_backend_too_light_to_own_a_slot_is_still_a_last_candidate() -> None:
    table = MaglevTable([MaglevBackend("light", 1), MaglevBackend("heavy", 1_000_000)], 211)
    assert set(table.entries) == {1}
    assert table.candidates(b"\x01\x02\x03\x04", 5) == [1, 0]


def test_an_empty_table_has_no_candidates_and_lookup_says_so() -> None:
    table = MaglevTable([])
    assert table.is_empty
    assert len(table.entries) == 0
    assert table.candidates(b"\x01\x02\x03\x04", 3) == []
    with pytest.raises(LookupError, match="no backends"):
        table.lookup(b"\x01\x02\x03\x04")
    assert not _table((1,)).is_empty


def test_a_negative_candidate_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="limit must be >= 0"):
        _table((1, 1)).candidates(b"\x00", -1)


# Squares of primes (9, 49, 169, 65537²) are the boundary of a trial division up to the square root.
@pytest.mark.parametrize("size", [0, 1, 4, 9, 49, 169, 100, 65536, 1001, 65537**2])
def test_a_table_size_that_is_not_prime_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match=f"size {size} is not prime"):
        MaglevTable([], size)


@given(st.integers(2, 400), st.integers(2, 400))
def test_a_product_of_two_factors_is_never_a_table_size(first: int, second: int) -> None:
    with pytest.raises(ValueError, match="is not prime"):
        MaglevTable([], first * second)


@pytest.mark.parametrize("size", [2, 3, 5, 7, 11, 13, 1009, DEFAULT_TABLE_SIZE])
def test_a_prime_table_size_is_accepted(size: int) -> None:
    assert MaglevTable([], size).size == size


def test_a_table_smaller_than_100_slots_per_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="too small for 11 backends: use a prime >= 1100"):
        MaglevTable([MaglevBackend(n) for n in _names(11)], SMALL_PRIME)


@pytest.mark.parametrize("weight", [0, -1])
def test_a_weight_below_one_is_rejected(weight: int) -> None:
    with pytest.raises(ValueError, match=f"weight {weight}; weights must be >= 1"):
        MaglevBackend("10.0.0.11:30443", weight)


def test_an_empty_backend_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="name must not be empty"):
        MaglevBackend("")


def test_duplicate_backend_names_are_rejected_and_named() -> None:
    backends = [MaglevBackend("a:1"), MaglevBackend("b:1"), MaglevBackend("a:1", 2)]
    with pytest.raises(ValueError, match="unique; duplicated: a:1"):
        MaglevTable(backends)


@given(address=st.ip_addresses(v=4))
def test_an_ipv4_mapped_ipv6_client_has_the_same_key_as_the_plain_ipv4_one(
    address: ipaddress.IPv4Address,
) -> None:
    assert client_key(f"::ffff:{address}") == client_key(str(address)) == address.packed


@given(address=st.ip_addresses(v=6))
def test_an_ipv6_client_key_is_its_packed_address_unless_ipv4_mapped(address: ipaddress.IPv6Address) -> None:
    expected = address.ipv4_mapped.packed if address.ipv4_mapped else address.packed
    assert client_key(str(address)) == client_key(address.exploded) == expected


def test_a_zone_suffix_does_not_change_the_client_key() -> None:
    assert client_key("fe80::1%eth0") == client_key("fe80::1")


@pytest.mark.parametrize("address", ["", "example.com", "10.0.0.1:443", "300.1.1.1", "::g"])
def test_a_client_address_that_is_not_an_ip_is_rejected(address: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        client_key(address)


# ---- health overlay: skipping unhealthy backends without a rebuild ---------------------------------


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 8),
    skipped=st.sets(st.integers(0, 7), max_size=7),
    limit=st.integers(1, 8),
    key=st.binary(min_size=4, max_size=16),
)
def test_skipping_backends_gives_the_unskipped_candidates_in_walk_order(
    n: int, skipped: set[int], limit: int, key: bytes
) -> None:
    skip = frozenset(i for i in skipped if i < n)
    if len(skip) == n:
        skip = frozenset(list(skip)[1:])
    table = _table((1,) * n, size=SMALL_PRIME)
    full = table.candidates(key, n)
    assert table.candidates(key, limit, skip) == [i for i in full if i not in skip][:limit]


def test_skipping_a_backend_moves_only_its_own_clients() -> None:
    table = _table((1,) * 5)
    keys = _random_keys(50_000)
    moved = [k for k in keys if table.candidates(k, 1, frozenset({2}))[0] != table.lookup(k)]
    assert all(table.lookup(k) == 2 for k in moved)
    assert len(moved) == sum(table.lookup(k) == 2 for k in keys)
    spread = Counter(table.candidates(k, 1, frozenset({2}))[0] for k in moved)
    assert set(spread) == {0, 1, 3, 4}
    assert all(abs(count / len(moved) - 0.25) < 0.03 for count in spread.values())


def test_skipping_every_owner_leaves_only_backends_without_slots() -> None:
    table = MaglevTable([MaglevBackend("light", 1), MaglevBackend("heavy", 1_000_000)], 211)
    assert table.candidates(b"\x01\x02\x03\x04", 5, frozenset({1})) == [0]
    assert table.candidates(b"\x01\x02\x03\x04", 5, frozenset({0, 1})) == []
