"""Shared connection counters: each worker writes its own row, everyone reads the sum."""

import os

from anycastlb.dataplane.limits import BUCKETS, SharedCounters


def test_counts_from_several_workers_add_up_in_every_worker() -> None:
    counters = SharedCounters(workers=3)
    bucket = SharedCounters.bucket(b"198.51.100.7")
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
    counters = SharedCounters(workers=2)
    bucket = SharedCounters.bucket(b"listener\0web")
    counters.bind_worker(0)
    counters.add(bucket, 5)
    counters.bind_worker(1)
    counters.add(bucket, 7)

    counters.reset_worker(1)

    assert counters.total(bucket) == 5


def test_closing_a_connection_gives_its_slot_back() -> None:
    counters = SharedCounters(workers=1)
    bucket = SharedCounters.bucket(b"2001:db8::1")
    counters.add(bucket, 1)
    counters.add(bucket, -1)

    assert counters.total(bucket) == 0


def test_buckets_spread_addresses() -> None:
    buckets = {SharedCounters.bucket(f"10.0.{i // 256}.{i % 256}".encode()) for i in range(10_000)}

    assert all(0 <= bucket < BUCKETS for bucket in buckets)
    assert len(buckets) > 9_700  # ~2% of 10k keys share a bucket in 2^18 buckets
