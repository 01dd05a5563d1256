"""New-connection rate limits: sliding windows in per-worker rows of shared memory, on fake time."""

import os

import pytest

from anycastlb.dataplane.rate_limits import RateLimit, RateWindows, listener_rate_key

T0 = 1_000_000.0  # a monotonic clock reading, on a window boundary for every window used here
KEY = bytes(range(16))  # every table here shares it, so WEB is the same bucket in all
WEB = RateWindows(1, KEY).bucket(listener_rate_key("web"))


def admitted(windows: RateWindows, limit: RateLimit, now: float, attempts: int) -> int:
    """Try ``attempts`` connections at ``now``; returns how many were admitted (and recorded)."""
    count = 0
    for _ in range(attempts):
        if windows.admits(WEB, limit, now):
            windows.record(WEB, limit, now)
            count += 1
    return count


def test_a_burst_is_admitted_at_once_and_the_rest_refused() -> None:
    windows, limit = RateWindows(workers=1, key=KEY), RateLimit.of(rate=10, burst=20)
    assert limit is not None

    assert admitted(windows, limit, T0, attempts=50) == 20


def test_the_burst_defaults_to_one_seconds_worth() -> None:
    assert RateLimit.of(rate=250, burst=None) == RateLimit(burst=250, window=1.0)
    assert RateLimit.of(rate=0.1, burst=None) == RateLimit(burst=1, window=10.0)
    assert RateLimit.of(rate=None, burst=None) is None


def test_a_source_flooding_for_a_long_time_gets_the_rate_through_and_no_more() -> None:
    windows, limit = RateWindows(workers=1, key=KEY), RateLimit.of(rate=100, burst=100)
    assert limit is not None

    total = sum(admitted(windows, limit, T0 + step / 1000, attempts=5) for step in range(20_000))

    assert 100 * 20 <= total <= 100 * 20 + 100  # 20 s at 100/s, plus at most one burst


def test_tokens_come_back_as_the_window_slides() -> None:
    windows, limit = RateWindows(workers=1, key=KEY), RateLimit.of(rate=10, burst=10)  # window: 1 s
    assert limit is not None
    assert admitted(windows, limit, T0 + 0.9, attempts=10) == 10

    assert admitted(windows, limit, T0 + 1.0, attempts=10) == 0  # the previous window counts in full
    assert admitted(windows, limit, T0 + 1.5, attempts=10) == 5  # half of it has slid out
    assert admitted(windows, limit, T0 + 3.0, attempts=20) == 10  # all of it, after a quiet second


@pytest.mark.parametrize("burst", [1, 7, 100])
def test_no_interval_of_one_window_admits_more_than_twice_the_burst(burst: int) -> None:
    """The bound a token bucket has too: burst + rate * window = 2 * burst."""
    windows, limit = RateWindows(workers=1, key=KEY), RateLimit.of(rate=burst, burst=burst)
    assert limit is not None
    times = [
        T0 + step / 200 for step in range(2_000) for _ in range(admitted(windows, limit, T0 + step / 200, 3))
    ]

    worst = max(sum(1 for t in times if start <= t < start + limit.window) for start in times)

    assert worst <= 2 * burst


def test_workers_share_one_limit_through_their_own_rows() -> None:
    windows, limit = RateWindows(workers=3, key=KEY), RateLimit.of(rate=30, burst=30)
    assert limit is not None
    per_worker = []
    for worker in range(3):
        windows.bind_worker(worker)
        per_worker.append(admitted(windows, limit, T0 + 0.1 * worker, attempts=20))

    assert per_worker == [20, 10, 0]


def test_forked_workers_see_each_others_connections() -> None:
    windows, limit = RateWindows(workers=2, key=KEY), RateLimit.of(rate=50, burst=50)
    assert limit is not None
    pid = os.fork()
    if pid == 0:
        windows.bind_worker(1)
        os._exit(0 if admitted(windows, limit, T0, attempts=40) == 40 else 1)
    assert os.waitpid(pid, 0)[1] == 0
    windows.bind_worker(0)

    assert admitted(windows, limit, T0 + 0.5, attempts=40) == 10
    assert windows.estimate(WEB, limit.window, T0 + 0.5) == 50


def test_different_keys_do_not_share_a_window() -> None:
    windows, limit = RateWindows(workers=1, key=KEY), RateLimit.of(rate=5, burst=5)
    assert limit is not None
    other = windows.bucket(listener_rate_key("api"))
    assert other != WEB
    assert admitted(windows, limit, T0, attempts=5) == 5

    assert windows.admits(other, limit, T0)
