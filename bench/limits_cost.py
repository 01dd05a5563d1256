"""Cost per call of the limit check at accept: the C entry point, its Python wrapper, the Python oracle.

    PYTHONPATH=src:. python3 bench/limits_cost.py [--calls 200000] [--rounds 5] [--workers 2] [--clock cpu]

Times, in one process and interleaved round by round, admit + release with every limit on (open
connections and new connections per second, per source and per listener) over 200 IPv4 sources:

- ``admit_peer`` + ``release_peer`` called from C on prepared sockaddrs, without the GIL (what the
  compiled loop of issue 12 calls after accept4): the ``C path`` line;
- ``Admission.admit(text)`` + ``release`` from Python (today's worker): the ``compiled`` column,
  which adds the Python calls and parsing the text;
- the oracle (tests/support/limits_oracle.py, with its plain-Python SipHash): the ``python`` column;

then each table operation alone. Prints the median and the spread of ``rounds`` rounds in ns per
call; the oracle's admit+release runs ``calls / 100`` times (its SipHash is plain Python: ~30 us).
``--clock wall`` (the default) times with ``perf_counter``; ``--clock cpu`` with the thread's CPU time,
which a shared machine's other load does not inflate. A micro benchmark: it says what the limit
check costs, not what a connection costs (bench/dataplane.py does that).
"""

import argparse
import statistics
import time
from collections.abc import Callable

from tests.support import limits_oracle

from anycastlb.dataplane import _shared_limits, limits, rate_limits
from anycastlb.dataplane.admission import Admission
from anycastlb.model.config import Listener

KEY = bytes(range(16))
FEWER_CALLS = {("admit+release", "python"): 100}  # divisor of --calls
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
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
    counters, windows = counters_type(workers, KEY), windows_type(workers, KEY)
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

    def c_path(calls: int) -> None:
        peers = [(source, 40000 + index) for index, source in enumerate(sources)]
        assert _shared_limits._admit_release_loop(admission, peers, calls, 1000.0, 1e-6) == 0

    suite: dict[str, Callable[[int], None]] = {
        "admit+release": admit,
        "total": total,
        "add": add,
        "estimate": estimate,
        "record": record,
    }
    if admission_type is Admission:
        suite["C path"] = c_path
    return suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    options = parser.parse_args()
    clock = CLOCKS[options.clock]
    suites = {name: cases(*types, options.workers) for name, types in IMPLEMENTATIONS.items()}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(options.rounds):
        for name, suite in suites.items():
            for case, run in suite.items():
                calls = max(1, options.calls // FEWER_CALLS.get((case, name), 1))
                started = clock()
                run(calls)
                elapsed = clock() - started
                results.setdefault((case, name), []).append(elapsed / calls * 1e9)
    print(
        f"ns per call ({options.clock} clock), median of {options.rounds} rounds of {options.calls}"
        f" (min-max), {options.workers} rows"
    )
    c_path = results.pop(("C path", "compiled"))
    print(
        f"{'admit+release':14}  C path (admit_peer + release_peer, no GIL) "
        f"{statistics.median(c_path):6.0f} ({min(c_path):.0f}-{max(c_path):.0f})"
    )
    for case in suites["python"]:
        row = [f"{case:14}"]
        for name in IMPLEMENTATIONS:
            samples = results[case, name]
            row.append(f"{name} {statistics.median(samples):6.0f} ({min(samples):.0f}-{max(samples):.0f})")
        python, compiled = (statistics.median(results[case, n]) for n in ("python", "compiled"))
        row.append(f"python/compiled {python / compiled:.1f}x")
        print("  ".join(row))


if __name__ == "__main__":
    main()
