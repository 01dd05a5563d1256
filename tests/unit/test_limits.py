"""Shared connection counters: each worker writes its own row, everyone reads the sum."""

import os

import pytest

from anycastlb.dataplane.admission import source_key
from anycastlb.dataplane.limits import BUCKETS, SharedCounters, listener_key

KEY = bytes(range(16))


def test_counts_from_several_workers_add_up_in_every_worker() -> None:
    counters = SharedCounters(workers=3, key=KEY)
    bucket = counters.bucket(source_key("198.51.100.7", 32, 128))
    pids = []
    for worker in range(3):
        pid = os.fork()
        if pid == 0:
            counters.bind_worker(worker)
            counters.add(bucket, worker + 1)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0

    assert counters.total(bucket) == 1 + 2 + 3


def test_a_dead_workers_row_is_reset_without_touching_the_others() -> None:
    counters = SharedCounters(workers=2, key=KEY)
    bucket = counters.bucket(listener_key("web"))
    counters.bind_worker(0)
    counters.add(bucket, 5)
    counters.bind_worker(1)
    counters.add(bucket, 7)

    counters.reset_worker(1)

    assert counters.total(bucket) == 5


def test_opening_a_connection_takes_a_slot_and_closing_it_gives_the_slot_back() -> None:
    counters = SharedCounters(workers=1, key=KEY)
    bucket = counters.bucket(source_key("2001:db8::1", 32, 128))
    other = counters.bucket(listener_key("web"))
    assert other != bucket
    counters.add(bucket, 1)
    counters.add(bucket, 1)
    assert (counters.total(bucket), counters.total(other)) == (2, 0)
    counters.add(bucket, -1)
    assert counters.total(bucket) == 1
    counters.add(bucket, -1)

    assert counters.total(bucket) == 0


def test_buckets_spread_addresses() -> None:
    counters = SharedCounters(workers=1, key=KEY)
    buckets = {counters.bucket(source_key(f"10.0.{i // 256}.{i % 256}", 32, 128)) for i in range(10_000)}

    assert all(0 <= bucket < BUCKETS for bucket in buckets)
    assert len(buckets) > 9_700  # ~2% of 10k keys share a bucket in 2^18 buckets


def test_tables_with_the_agents_key_agree_on_buckets_and_another_key_moves_them() -> None:
    keys = [listener_key("web"), *(source_key(f"198.51.100.{i}", 32, 128) for i in range(50))]
    one, same = SharedCounters(workers=1, key=KEY), SharedCounters(workers=2, key=KEY)
    other = SharedCounters(workers=1, key=bytes(16))

    assert [one.bucket(key) for key in keys] == [same.bucket(key) for key in keys]
    assert sum(one.bucket(key) == other.bucket(key) for key in keys) <= 1


def test_a_key_that_is_not_16_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SharedCounters(workers=1, key=bytes(8))


def test_a_worker_without_a_row_is_refused() -> None:
    counters = SharedCounters(workers=2, key=KEY)
    with pytest.raises(ValueError, match="no row"):
        counters.bind_worker(2)
    with pytest.raises(ValueError, match="no row"):
        counters.reset_worker(-1)
