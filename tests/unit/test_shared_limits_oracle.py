"""The compiled limit check answers exactly as its Python oracle and leaves the same words in memory;
its C entry point on a sockaddr (what the compiled loop calls) answers as its Python one on the text."""

import ipaddress
import mmap

from hypothesis import given, settings
from hypothesis import strategies as st

from anycastlb.dataplane import _shared_limits
from anycastlb.dataplane.admission import REFUSAL_REASONS, Admission, source_key
from anycastlb.dataplane.limits import BUCKETS, SharedCounters, listener_key
from anycastlb.dataplane.rate_limits import RATE_BUCKETS, RateLimit, RateWindows, listener_rate_key
from anycastlb.model.config import Listener
from tests.support import limits_oracle

WORKERS = 3
KEY = bytes(range(16))
agent_keys = st.binary(min_size=16, max_size=16)
keys = st.binary(max_size=24)
counter_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "bind", "reset"]), st.integers(0, WORKERS - 1), keys, st.integers(0, 5)
    ),
    max_size=60,
)
rate_ops = st.lists(
    st.tuples(
        st.integers(0, WORKERS - 1),
        st.integers(0, 40),  # a few buckets, so that records collide and windows roll over
        st.floats(0.01, 1000.0),
        st.integers(1, 50),
        st.floats(0.0, 2.0**33, allow_nan=False),
        st.booleans(),
    ),
    max_size=60,
)


def words(table: object) -> bytes:
    memory = table._memory  # type: ignore[attr-defined]  # both keep their block there
    assert isinstance(memory, mmap.mmap)
    return bytes(memory)


def test_both_tables_have_the_layout_the_docstrings_promise() -> None:
    assert len(words(SharedCounters(WORKERS, KEY))) == WORKERS * BUCKETS * 4
    assert len(words(RateWindows(WORKERS, KEY))) == WORKERS * RATE_BUCKETS * 4 * 4


@settings(max_examples=150, deadline=None)
@given(agent_keys, counter_ops)
def test_counters_answer_like_the_oracle_for_any_sequence_of_adds_binds_and_resets(
    agent_key: bytes, ops: list[tuple[str, int, bytes, int]]
) -> None:
    compiled = SharedCounters(WORKERS, agent_key)
    oracle = limits_oracle.SharedCounters(WORKERS, agent_key)
    held: dict[tuple[int, int], int] = {}  # what each worker holds per bucket: releases never go below 0
    worker = 0
    for op, which, key, delta in ops:
        bucket = compiled.bucket(key)
        assert bucket == oracle.bucket(key)
        if op == "bind":
            worker = which
            compiled.bind_worker(which)
            oracle.bind_worker(which)
        elif op == "reset":
            compiled.reset_worker(which)
            oracle.reset_worker(which)
            held = {place: count for place, count in held.items() if place[0] != which}
        else:
            change = -min(delta, held.get((worker, bucket), 0)) if delta % 2 else delta
            held[worker, bucket] = held.get((worker, bucket), 0) + change
            compiled.add(bucket, change)
            oracle.add(bucket, change)
        assert compiled.total(bucket) == oracle.total(bucket)
    assert words(compiled) == words(oracle)


@settings(max_examples=150, deadline=None)
@given(rate_ops)
def test_rate_windows_estimate_and_record_like_the_oracle_to_the_last_bit(
    ops: list[tuple[int, int, float, int, float, bool]],
) -> None:
    compiled, oracle = RateWindows(WORKERS, KEY), limits_oracle.RateWindows(WORKERS, KEY)
    for worker, bucket, rate, burst, now, record in ops:
        limit = RateLimit.of(rate, burst)
        assert limit is not None
        compiled.bind_worker(worker)
        oracle.bind_worker(worker)
        assert compiled.estimate(bucket, limit.window, now) == oracle.estimate(bucket, limit.window, now)
        assert compiled.admits(bucket, limit, now) == oracle.admits(bucket, limit, now)
        if record:
            compiled.record(bucket, limit, now)
            oracle.record(bucket, limit, now)
    assert words(compiled) == words(oracle)


def test_bucket_keys_hash_alike_in_both() -> None:
    key = b"\x03" + bytes(8) + b"\x04\x18\xc6\x33\x64\x00"  # a source rate key: listener id, /24
    assert RateWindows(1, KEY).bucket(key) == limits_oracle.RateWindows(1, KEY).bucket(key)
    assert listener_key("web") == limits_oracle.listener_key("web")
    assert listener_rate_key("web") == limits_oracle.listener_rate_key("web")
    assert REFUSAL_REASONS == limits_oracle.REFUSAL_REASONS


addresses = st.one_of(
    st.integers(0, 40).map(lambda n: f"198.51.{n % 3}.{n}"),
    st.integers(0, 40).map(lambda n: f"2001:db8:{n % 3}::{n:x}"),
    st.integers(0, 40).map(lambda n: f"::ffff:198.51.{n % 3}.{n}"),  # as an IPv6 socket reports IPv4
    st.just("fe80::1%eth0"),
)
settings_of_a_listener = st.fixed_dictionaries(
    {
        "max_connections": st.integers(1, 12),
        "max_connections_per_source": st.integers(1, 5),
        "source_prefix_v4": st.sampled_from([16, 24, 32]),
        "source_prefix_v6": st.sampled_from([48, 64, 128]),
        "new_connections_per_second": st.one_of(st.none(), st.floats(0.5, 50.0)),
        "new_connections_per_second_per_source": st.one_of(st.none(), st.floats(0.5, 50.0)),
    }
)


@settings(max_examples=100, deadline=None)
@given(
    agent_keys,
    settings_of_a_listener,
    st.lists(st.tuples(addresses, st.floats(0.0, 5.0), st.booleans()), max_size=60),
)
def test_the_compiled_admission_decides_like_the_oracle_for_any_arrivals_and_closes(
    agent_key: bytes, listener_settings: dict[str, object], arrivals: list[tuple[str, float, bool]]
) -> None:
    config = Listener.model_validate(
        {"name": "web", "address": "203.0.113.10", "port": 443, **listener_settings}
    )
    compiled = Admission(config, SharedCounters(1, agent_key), RateWindows(1, agent_key))
    oracle = limits_oracle.Admission(
        config, limits_oracle.SharedCounters(1, agent_key), limits_oracle.RateWindows(1, agent_key)
    )
    now, held = 1000.0, []
    for address, pause, close_one in arrivals:
        now += pause
        assert source_key(
            address, config.source_prefix_v4, config.source_prefix_v6
        ) == limits_oracle.source_key(address, config.source_prefix_v4, config.source_prefix_v6)
        decision = compiled.admit(address, now)
        assert decision == oracle.admit(address, now)
        if not decision[0]:
            held.append(decision[1])
        if close_one and held:
            bucket = held.pop(0)
            compiled.release(bucket)
            oracle.release(bucket)
    assert words(compiled.counters) == words(oracle.counters)
    assert words(compiled.rates) == words(oracle.rates)


def peer(draw_address: tuple[int, int, int]) -> str:
    """An address text as ``socket.accept`` reports it: IPv4, IPv6, IPv4-mapped IPv6, or scoped."""
    kind, value, scope = draw_address
    if kind == 0:
        return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if kind == 1:
        return str(ipaddress.IPv6Address(value))
    if kind == 2:
        return f"::ffff:{ipaddress.IPv4Address(value & 0xFFFFFFFF)}"
    return f"fe80::{value & 0xFFFF:x}%{scope}"


# Few distinct addresses (they must collide on prefixes and limits), drawn over whole address ranges.
random_peers = st.tuples(
    st.integers(0, 3),
    st.sampled_from([0, 1, 2**24 + 5, 0xC6336407, 0xC6336480, 2**128 - 1, 0x20010DB8 << 96]),
    st.sampled_from(["1", "eth0", "7"]),
) | st.tuples(st.integers(0, 3), st.integers(0, 2**128 - 1), st.sampled_from(["1", "eth0"]))
limits_of_a_listener = st.fixed_dictionaries(
    {
        "max_connections": st.integers(1, 12),
        "max_connections_per_source": st.integers(1, 5),
        "source_prefix_v4": st.integers(1, 32),
        "source_prefix_v6": st.integers(1, 128),
        "new_connections_per_second": st.one_of(st.none(), st.floats(0.5, 50.0)),
        "new_connections_burst": st.one_of(st.none(), st.integers(1, 10)),
        "new_connections_per_second_per_source": st.one_of(st.none(), st.floats(0.5, 50.0)),
        "new_connections_burst_per_source": st.one_of(st.none(), st.integers(1, 5)),
    }
).filter(
    lambda limits: (
        (limits["new_connections_burst"] is None or limits["new_connections_per_second"] is not None)
        and (
            limits["new_connections_burst_per_source"] is None
            or limits["new_connections_per_second_per_source"] is not None
        )
    )
)


@settings(max_examples=150, deadline=None)
@given(
    agent_keys,
    limits_of_a_listener,
    st.lists(st.tuples(random_peers, st.integers(0, 65535), st.floats(0.0, 3.0), st.booleans()), max_size=60),
    st.floats(0.0, 2.0**32),
)
def test_the_c_entry_point_on_a_sockaddr_decides_like_admit_on_the_text(
    agent_key: bytes,
    limits: dict[str, object],
    arrivals: list[tuple[tuple[int, int, int], int, float, bool]],
    start: float,
) -> None:
    config = Listener.model_validate({"name": "web", "address": "203.0.113.10", "port": 443, **limits})
    on_text = Admission(config, SharedCounters(2, agent_key), RateWindows(2, agent_key))
    on_sockaddr = Admission(config, SharedCounters(2, agent_key), RateWindows(2, agent_key))
    now, held = start, []
    for drawn, port, pause, close_one in arrivals:
        now += pause
        address = peer(drawn)
        reason, bucket = on_text.admit(address, now)
        code, c_bucket = _shared_limits._admit_peer(on_sockaddr, address, port, now)
        assert (REFUSAL_REASONS[code], c_bucket) == (reason, bucket), address
        if not reason:
            held.append(bucket)
        if close_one and held:
            released = held.pop(0)
            on_text.release(released)
            on_sockaddr.release(released)
    assert words(on_text.counters) == words(on_sockaddr.counters)
    assert words(on_text.rates) == words(on_sockaddr.rates)
