"""Cost per call of the limit check at accept: compiled (production) vs its Python oracle.

    python3 bench/limits_cost.py [--calls 200000] [--rounds 5] [--workers 2]

Times, in one process and interleaved round by round, ``Admission.admit`` + ``release`` with every
limit on (open connections and new connections per second, per source and per listener), then each
table operation alone. Prints the median and the spread of ``rounds`` rounds in ns per call. A micro
benchmark: it says what the tables cost, not what a connection costs (bench/dataplane.py does that).
"""

import argparse
import statistics
import time
from collections.abc import Callable

from tests.support import limits_oracle

from anycastlb.dataplane import limits, rate_limits
from anycastlb.dataplane.admission import Admission
from anycastlb.model.config import Listener

IMPLEMENTATIONS = {
    "compiled": (Admission, limits.SharedCounters, rate_limits.RateWindows),
    "python": (limits_oracle.Admission, limits_oracle.SharedCounters, limits_oracle.RateWindows),
}


def cases(
    admission_type: type, counters_type: type, windows_type: type, workers: int
) -> dict[str, Callable[[int], None]]:
    listener = Listener.model_validate(
        {
            "name": "web",
            "address": "127.0.0.1",
            "port": 443,
            "backends": [{"address": "192.0.2.1", "port": 30443}],
            "max_connections_per_source": 10**9,
            "new_connections_per_second": 1e12,
            "new_connections_per_second_per_source": 1e12,
        }
    )
    counters, windows = counters_type(workers), windows_type(workers)
    admission = admission_type(listener, counters, windows)
    limit = rate_limits.RateLimit.of(1e6, 10**9)
    assert limit is not None
    sources = [f"198.51.100.{i}" for i in range(200)]
    bucket = counters.bucket(b"a bucket the admissions do not use")

    def admit(calls: int) -> None:
        for index in range(calls):
            reason, source_bucket = admission.admit(sources[index % 200], 1000.0 + index * 1e-6)
            assert not reason, reason
            admission.release(source_bucket)

    def total(calls: int) -> None:
        for _ in range(calls):
            counters.total(bucket)

    def add(calls: int) -> None:
        for index in range(calls):
            counters.add(bucket, 1 - 2 * (index & 1))  # +1, -1, ...: never below zero

    def estimate(calls: int) -> None:
        for index in range(calls):
            windows.estimate(bucket & 0xFFFF, limit.window, 1000.0 + index * 1e-6)

    def record(calls: int) -> None:
        for index in range(calls):
            windows.record(bucket & 0xFFFF, limit, 1000.0 + index * 1e-6)

    return {"admit+release": admit, "total": total, "add": add, "estimate": estimate, "record": record}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    suites = {name: cases(*types, options.workers) for name, types in IMPLEMENTATIONS.items()}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(options.rounds):
        for name, suite in suites.items():
            for case, run in suite.items():
                started = time.perf_counter()
                run(options.calls)
                elapsed = time.perf_counter() - started
                results.setdefault((case, name), []).append(elapsed / options.calls * 1e9)
    print(
        f"ns per call, median of {options.rounds} rounds of {options.calls} (min-max), {options.workers} rows"
    )
    for case in suites["compiled"]:
        row = [f"{case:14}"]
        for name in IMPLEMENTATIONS:
            samples = results[case, name]
            row.append(f"{name} {statistics.median(samples):6.0f} ({min(samples):.0f}-{max(samples):.0f})")
        python, compiled = (statistics.median(results[case, n]) for n in ("python", "compiled"))
        row.append(f"python/compiled {python / compiled:.1f}x")
        print("  ".join(row))


if __name__ == "__main__":
    main()
