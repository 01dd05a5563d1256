"""Cost per call of the Maglev pick: the compiled C functions vs ``MaglevTable.candidates`` (the oracle);
then the cost of building a table.

    python3 bench/maglev_cost.py [--calls 100000] [--rounds 5] [--backends 10] [--limit 3]

One table (M = 65537, ``--backends`` of weight 1) and 1000 random IPv4 clients; for each skip size
(0, 1, 3 and all but one backend down) times, in one process and interleaved round by round:

- ``python``: ``MaglevTable.candidates(key, limit, skip)`` on keys made in advance;
- ``python+key``: the same with ``client_key(host)`` first (what ``BackendSet.candidates`` does);
- ``wrapper``: ``CompiledMaglev.candidates`` called from Python (a Python call and the set turned
  into flags per call: what a Python caller would pay, not the loop);
- ``C``: the ``nogil`` ``candidates`` in a C loop on keys made in advance, through a function pointer
  as another compiled module calls it (``_maglev_c.time_pick``);
- ``C+key``: the same with ``client_key`` from the sockaddr first (what the compiled loop pays).

Prints the median and the spread of ``rounds`` rounds in ns per call. A micro benchmark: it says what
the pick costs, not what a connection costs (bench/dataplane.py does that).

The build (it was tests/unit/test_maglev.py's speed test): ``MaglevTable`` of ``--backends`` with
weights 1, 2, ... (a new one is built at every reload and health change that alters the set), at the
default size M = 65537 and, as the reference, at M = 1009 (the size the property tests use), then
``CompiledMaglev`` copying the default one for the C loop. Prints ms per build and ns per slot: the
build is O(M) for a given backend set, so ns per slot should be about the same at both sizes.
"""

import argparse
import random
import statistics
import time
from collections.abc import Callable

from anycastlb.dataplane._maglev_c import time_pick
from anycastlb.dataplane.maglev import DEFAULT_TABLE_SIZE, MaglevBackend, MaglevTable, client_key
from anycastlb.dataplane.native import CompiledMaglev

CLIENTS = 1000
REFERENCE_SIZE = 1009


def cases(
    table: MaglevTable, compiled: CompiledMaglev, hosts: list[str], limit: int, skip: frozenset[int]
) -> dict[str, Callable[[int], float]]:
    """Each case runs ``calls`` picks and returns ns per pick."""
    keys = [client_key(host) for host in hosts]

    def timed(body: Callable[[int], None]) -> Callable[[int], float]:
        def run(calls: int) -> float:
            started = time.perf_counter_ns()
            body(calls)
            return (time.perf_counter_ns() - started) / calls

        return run

    @timed
    def python(calls: int) -> None:
        candidates = table.candidates
        for index in range(calls):
            candidates(keys[index % CLIENTS], limit, skip)

    @timed
    def python_key(calls: int) -> None:
        candidates = table.candidates
        for index in range(calls):
            candidates(client_key(hosts[index % CLIENTS]), limit, skip)

    @timed
    def wrapper(calls: int) -> None:
        candidates = compiled.candidates
        for index in range(calls):
            candidates(keys[index % CLIENTS], limit, skip)

    def in_c(calls: int) -> float:
        return time_pick(compiled, hosts, limit, skip, max(1, calls // CLIENTS), False)

    def in_c_key(calls: int) -> float:
        return time_pick(compiled, hosts, limit, skip, max(1, calls // CLIENTS), True)

    return {"python": python, "python+key": python_key, "wrapper": wrapper, "C": in_c, "C+key": in_c_key}


def build_cost(n: int, rounds: int) -> None:
    """Milliseconds per table build at both sizes and per compiled copy, interleaved round by round."""
    backends = [MaglevBackend(f"10.0.{i // 250}.{i % 250 + 1}:30443", i + 1) for i in range(n)]
    table = MaglevTable(backends, DEFAULT_TABLE_SIZE)
    builds: dict[tuple[str, int | None], Callable[[], object]] = {  # (name, slots built)
        (f"M={REFERENCE_SIZE}", REFERENCE_SIZE): lambda: MaglevTable(backends, REFERENCE_SIZE),
        (f"M={DEFAULT_TABLE_SIZE}", DEFAULT_TABLE_SIZE): lambda: MaglevTable(backends, DEFAULT_TABLE_SIZE),
        ("compiled copy", None): lambda: CompiledMaglev(table),
    }
    results: dict[tuple[str, int | None], list[float]] = {}
    for _ in range(rounds):
        for case, build in builds.items():
            started = time.perf_counter()
            build()
            results.setdefault(case, []).append((time.perf_counter() - started) * 1e3)
    print(f"table build, ms, median of {rounds} rounds (min-max); N={n}, weights 1-{n}")
    row = []
    for (name, slots), samples in results.items():
        median = statistics.median(samples)
        per_slot = f", {median * 1e6 / slots:.0f} ns per slot" if slots else ""
        row.append(f"{name} {median:.2f} ({min(samples):.2f}-{max(samples):.2f}{per_slot})")
    print("  ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", type=int, default=10)
    parser.add_argument("--limit", type=int, default=3)
    options = parser.parse_args()
    n = options.backends
    table = MaglevTable([MaglevBackend(f"10.0.0.{11 + i}:30443") for i in range(n)], DEFAULT_TABLE_SIZE)
    compiled = CompiledMaglev(table)
    rnd = random.Random(7)
    hosts = [".".join(str(rnd.randrange(1, 255)) for _ in range(4)) for _ in range(CLIENTS)]
    sizes = sorted(size for size in {0, 1, 3, n - 1} if size < n)
    skips = {f"skip {size}": frozenset(rnd.sample(range(n), size)) for size in sizes}
    for skip in skips.values():  # the numbers below are of the same answers
        assert all(
            compiled.candidates(key, options.limit, skip) == table.candidates(key, options.limit, skip)
            for key in map(client_key, hosts)
        )
    suites = {name: cases(table, compiled, hosts, options.limit, skip) for name, skip in skips.items()}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(options.rounds):
        for name, suite in suites.items():
            for case, run in suite.items():
                results.setdefault((name, case), []).append(run(options.calls))
    print(
        f"ns per call, median of {options.rounds} rounds of {options.calls} (min-max); "
        f"N={n}, M={DEFAULT_TABLE_SIZE}, limit={options.limit}"
    )
    for name, suite in suites.items():
        row = [f"{name:7}"]
        for case in suite:
            samples = results[name, case]
            row.append(f"{case} {statistics.median(samples):5.0f} ({min(samples):.0f}-{max(samples):.0f})")
        python, c_only = (statistics.median(results[name, case]) for case in ("python", "C"))
        row.append(f"python/C {python / c_only:.0f}x")
        print("  ".join(row))
    build_cost(n, options.rounds)


if __name__ == "__main__":
    main()
