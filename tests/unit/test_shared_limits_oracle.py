"""The compiled limit check answers exactly as its Python oracle and leaves the same words in memory."""

import mmap

from hypothesis import given, settings
from hypothesis import strategies as st

from anycastlb.dataplane.admission import Admission, source_key
from anycastlb.dataplane.limits import BUCKETS, SharedCounters
from anycastlb.dataplane.rate_limits import RATE_BUCKETS, RateLimit, RateWindows
from anycastlb.model.config import Listener
from tests.support import limits_oracle

WORKERS = 3
keys = st.one_of(st.binary(max_size=24), st.text(max_size=24))
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
    assert len(words(SharedCounters(WORKERS))) == WORKERS * BUCKETS * 4
    assert len(words(RateWindows(WORKERS))) == WORKERS * RATE_BUCKETS * 4 * 4


@settings(max_examples=150, deadline=None)
@given(counter_ops)
def test_counters_answer_like_the_oracle_for_any_sequence_of_adds_binds_and_resets(
    ops: list[tuple[str, int, bytes | str, int]],
) -> None:
    compiled, oracle = SharedCounters(WORKERS), limits_oracle.SharedCounters(WORKERS)
    held: dict[tuple[int, int], int] = {}  # what each worker holds per bucket: releases never go below 0
    worker = 0
    for op, which, key, delta in ops:
        bucket = SharedCounters.bucket(key)
        assert bucket == limits_oracle.SharedCounters.bucket(key)
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
    compiled, oracle = RateWindows(WORKERS), limits_oracle.RateWindows(WORKERS)
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
    key = (b"source-rate\0web", b"24/\xc6\x33\x64\x00")
    assert RateWindows.bucket(key) == limits_oracle.RateWindows.bucket(key)


addresses = st.one_of(
    st.integers(0, 40).map(lambda n: f"198.51.{n % 3}.{n}"),
    st.integers(0, 40).map(lambda n: f"2001:db8:{n % 3}::{n:x}"),
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
    settings_of_a_listener,
    st.lists(st.tuples(addresses, st.floats(0.0, 5.0), st.booleans()), max_size=60),
)
def test_the_compiled_admission_decides_like_the_oracle_for_any_arrivals_and_closes(
    listener_settings: dict[str, object], arrivals: list[tuple[str, float, bool]]
) -> None:
    config = Listener.model_validate(
        {"name": "web", "address": "203.0.113.10", "port": 443, **listener_settings}
    )
    compiled = Admission(config, SharedCounters(1), RateWindows(1))
    oracle = limits_oracle.Admission(config, limits_oracle.SharedCounters(1), limits_oracle.RateWindows(1))
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
