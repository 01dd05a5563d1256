"""The compiled Maglev pick (``_maglev_c``) against its oracle, ``MaglevTable`` and ``client_key``.

Random tables (names, weights, sizes, including backends that own no slot), random keys, limits and
skip sets: the compiled candidates must be the Python candidates, element for element; the slot hash
must be Python's arbitrary-precision formula; the key from a sockaddr must be ``client_key`` of its text.
"""

from __future__ import annotations

import gc
import ipaddress
import random
import zlib
from array import array
from functools import cache
from itertools import chain, combinations
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from anycastlb.dataplane import _maglev_c, native
from anycastlb.dataplane._maglev_c import CompiledMaglev, client_key_of, mix_of, slot_of
from anycastlb.dataplane.maglev import MaglevBackend, MaglevTable, client_key

GOLDEN64 = 0x9E3779B97F4A7C15
SIZES = (1009, 5003, 10007, 65537)


@cache
def _table(backends: tuple[tuple[str, int], ...], size: int) -> MaglevTable:
    return MaglevTable([MaglevBackend(name, weight) for name, weight in backends], size)


def _same_table_as_uint32(table: MaglevTable) -> MaglevTable:
    """``table`` with its entries stored as typecode ``I`` (what a table of > 65535 backends uses)."""
    copy = MaglevTable.__new__(MaglevTable)
    copy.backends, copy.size = table.backends, table.size
    copy._name_order, copy._owner_set, copy._owners = table._name_order, table._owner_set, table._owners
    copy._entries = array("I", table._entries)
    return copy


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


@st.composite
def tables(draw: st.DrawFn) -> MaglevTable:
    size = draw(st.sampled_from(SIZES))
    n = draw(st.integers(1, min(50, size // 100)))
    backend_names = draw(st.lists(names, min_size=n, max_size=n, unique=True))
    if draw(st.booleans()):
        weights = draw(st.lists(st.integers(1, 10), min_size=n, max_size=n))
    else:  # a few heavy backends beside light ones: the light ones get no slot at all
        weights = draw(st.lists(st.sampled_from([1, 2, 10, 10**6, 10**7]), min_size=n, max_size=n))
    return _table(tuple(zip(backend_names, weights, strict=True)), size)


def queries(n: int) -> st.SearchStrategy[list[tuple[bytes, int, set[int]]]]:
    keys = st.binary(min_size=4, max_size=4) | st.binary(min_size=16, max_size=16)
    skips = st.sets(st.integers(0, n - 1)) | st.just(set(range(n))) | st.sets(st.integers(-2, n + 2))
    return st.lists(st.tuples(keys, st.integers(0, n + 2), skips), min_size=1, max_size=30)


@settings(max_examples=120, deadline=None)
@given(table=tables(), data=st.data())
def test_compiled_candidates_are_the_python_candidates(table: MaglevTable, data: st.DataObject) -> None:
    compiled = CompiledMaglev(table)
    assert (compiled.size, compiled.count) == (table.size, len(table.backends))
    assert compiled.owners == table._owners
    event(f"size {table.size}")
    event("some backends own no slot" if compiled.owners < compiled.count else "every backend owns a slot")
    for key, limit, skip in data.draw(queries(len(table.backends))):
        expected = table.candidates(key, limit, skip)
        assert compiled.candidates(key, limit, skip) == expected, (key, limit, skip)
        assert compiled.candidates(key, limit, frozenset(skip)) == expected


@settings(max_examples=30, deadline=None)
@given(table=tables(), data=st.data())
def test_a_table_stored_as_uint32_gives_the_same_candidates(table: MaglevTable, data: st.DataObject) -> None:
    wide = _same_table_as_uint32(table)
    compiled = CompiledMaglev(wide)
    for key, limit, skip in data.draw(queries(len(table.backends))):
        assert compiled.candidates(key, limit, skip) == table.candidates(key, limit, skip)


def test_backends_owning_no_slot_come_last_in_name_order_for_every_skip_set_and_limit() -> None:
    table = _table((("d", 10**6), ("c", 1), ("b", 10**6), ("a", 1), ("e", 2)), 1009)
    compiled = CompiledMaglev(table)
    assert compiled.owners == 2 < compiled.count  # the strategy's "heavy" case, pinned
    n = compiled.count
    skips = chain.from_iterable(combinations(range(n), size) for size in range(n + 1))
    keys = [random.Random(3).randbytes(4) for _ in range(50)]
    for skip in map(set, skips):
        for limit in range(n + 3):
            for key in keys:
                assert compiled.candidates(key, limit, skip) == table.candidates(key, limit, skip)


def test_thousands_of_backends_use_a_heap_bitmap_and_agree() -> None:
    """More than 4096 backends: the walk's bitmap no longer fits on the stack (``calloc``)."""
    n, size = 5000, 50021
    rnd = random.Random(11)
    table = MaglevTable.__new__(MaglevTable)  # random entries: building 5000 x 500009 would take minutes
    table.backends = tuple(MaglevBackend(f"node-{rnd.random():.12f}") for _ in range(n))
    table.size = size
    table._entries = array("H", (rnd.randrange(n - 7) for _ in range(size)))  # the last 7 own none
    table._owner_set = frozenset(table._entries)
    table._owners = len(table._owner_set)
    table._name_order = sorted(range(n), key=lambda i: table.backends[i].name)
    compiled = CompiledMaglev(table)
    assert compiled.owners == table._owners < n
    everyone_but_three = set(range(n)) - {5, n - 8, n - 1}
    for key in (rnd.randbytes(4) for _ in range(20)):
        for limit, skip in [(3, set()), (300, set(range(0, n, 2))), (n + 2, everyone_but_three), (2, set())]:
            assert compiled.candidates(key, limit, skip) == table.candidates(key, limit, skip)


def test_an_empty_table_gives_no_candidates() -> None:
    table = MaglevTable([])
    compiled = CompiledMaglev(table)
    assert (compiled.count, compiled.owners) == (0, 0)
    assert compiled.candidates(b"\x01\x02\x03\x04", 3) == table.candidates(b"\x01\x02\x03\x04", 3) == []


def test_a_negative_limit_is_refused_as_in_python() -> None:
    table = _table((("a", 1), ("b", 1)), 1009)
    with pytest.raises(ValueError, match="limit must be >= 0"):
        table.candidates(b"abcd", -1)
    with pytest.raises(ValueError, match="limit must be >= 0"):
        CompiledMaglev(table).candidates(b"abcd", -1)


def test_the_view_holds_the_table_buffer_and_outlives_the_table() -> None:
    table = _same_table_as_uint32(_table((("a", 1), ("b", 2), ("c", 3)), 1009))
    compiled = CompiledMaglev(table)
    keys = [random.Random(5).randbytes(16) for _ in range(100)]
    expected = [table.candidates(key, 3) for key in keys]
    with pytest.raises(BufferError):  # zero-copy: the array is exported to the view, so it cannot move
        table._entries.append(0)
    del table
    gc.collect()
    assert [compiled.candidates(key, 3) for key in keys] == expected


def test_a_table_naming_a_backend_it_does_not_have_is_refused_and_the_old_view_kept() -> None:
    table = _table((("a", 1), ("b", 1)), 1009)
    compiled = CompiledMaglev(table)
    broken = _same_table_as_uint32(table)
    broken._entries[500] = 2  # only 0 and 1 exist: the walk would read past the flags
    with pytest.raises(ValueError, match="slot 500 names backend 2 of 2"):
        compiled.__init__(broken)  # type: ignore[misc]
    assert compiled.candidates(b"abcd", 2) == table.candidates(b"abcd", 2)


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=40), size=st.sampled_from((*SIZES, 2, 3, 4_294_967_291)))
def test_the_slot_hash_is_the_python_formula(key: bytes, size: int) -> None:
    assert slot_of(key, size) == (zlib.crc32(key) * GOLDEN64 >> 32) % size
    if size in SIZES:
        assert slot_of(key, size) == _table((("a", 1),), size)._slot(key)


def test_the_slot_hash_on_many_random_keys() -> None:
    rnd = random.Random(1)
    for _ in range(100_000):
        key = rnd.randbytes(rnd.choice((4, 16)))
        size = rnd.choice(SIZES)
        assert slot_of(key, size) == (zlib.crc32(key) * GOLDEN64 >> 32) % size


@given(crc=st.integers(0, 2**32 - 1) | st.sampled_from((0, 1, 2**31, 2**32 - 1)))
def test_the_96_bit_product_is_exact(crc: int) -> None:
    assert mix_of(crc) == crc * GOLDEN64 >> 32


@given(address=st.ip_addresses(v=4), port=st.integers(0, 65535))
def test_client_key_from_an_ipv4_sockaddr(address: ipaddress.IPv4Address, port: int) -> None:
    assert client_key_of(str(address), port) == client_key(str(address)) == address.packed


@given(address=st.ip_addresses(v=6), port=st.integers(0, 65535))
def test_client_key_from_an_ipv6_sockaddr(address: ipaddress.IPv6Address, port: int) -> None:
    assert client_key_of(str(address), port) == client_key(str(address))


@given(address=st.ip_addresses(v=4), port=st.integers(0, 65535))
def test_client_key_from_a_v4_mapped_sockaddr_is_ipv4(address: ipaddress.IPv4Address, port: int) -> None:
    mapped = f"::ffff:{address}"
    assert client_key_of(mapped, port) == client_key(mapped) == address.packed


@pytest.mark.parametrize(
    "host", ["::ffff:0.0.0.0", "::1", "::", "::fffe:1.2.3.4", "0:0:0:0:1:ffff:102:304", "fe80::1%eth0"]
)
def test_client_key_at_the_edges_of_the_mapped_prefix(host: str) -> None:
    assert client_key_of(host, 443) == client_key(host)


@pytest.mark.parametrize("host", ["", "1.2.3", "example.com", "1.2.3.4\x00", "::g", "1.2.3.4:80"])
def test_a_host_that_is_not_an_address_is_refused_as_in_python(host: str) -> None:
    with pytest.raises(ValueError):  # the messages differ, the exception type does not
        client_key(host)
    with pytest.raises(ValueError):
        client_key_of(host, 443)


def test_the_compiled_module_is_fresh_and_exported_by_native() -> None:
    native.check_fresh(_maglev_c, Path(native.__file__).with_name("_maglev_c.pyx"))
    assert native.CompiledMaglev is CompiledMaglev
