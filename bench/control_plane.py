"""Control-plane benchmark: allocations/s and create → applied latency, on SQLite and PostgreSQL.

Per store and round, a fresh database (a SQLite file; a new database on a private PostgreSQL
server, ``fsync=off``) and a fresh ``anycastlb control`` child process with one /16 platform pool:

1. **Allocations**: for each concurrency C, a new tenant; ``--creates`` N load balancer creates (one
   listener, one dynamic IPv4 each) from C client threads, then the N deletes. Figures:
   creates/s and deletes/s (successes ÷ wall time), create latency p50/p99, p50 over the first
   and the last 10% of the creates (the tenant then holds ~0 or ~N load balancers), the control
   plane's CPU time per create, errors by status. Checks: no address in two answers, the tenant's
   IP list equals the answered addresses, and is empty after the deletes; a failure prints FAIL
   and the bench exits 1.
2. **Create → applied**: P PoPs are registered and P asyncio watchers long-poll their desired
   state (``watch=1&since=``); ``--watch-creates`` load balancers are created one at a time,
   ``--pause`` apart. Per (create, PoP): create sent → the PoP's first state containing it.
   Target: p99 <= 500 ms at 50 PoPs.
3. The control plane's VmRSS and VmHWM after both, and the exceptions in its log (the log is kept
   in /tmp if there are any). At the start and after every phase the bench checks that the port's
   listening socket is this control plane's: other tests on the machine start control planes on
   free ports with the same test admin token, and a port taken first would answer in its place.

Stores alternate within a round and the order flips every round (S P, P S, ...); the tables quote
medians over rounds. The machine is small and shared: clients, watchers, the control plane and
PostgreSQL all share its cores, so the figures compare the stores under the same contention.

This file is the command line; the parts are ``bench/harness/control_*.py``: ``stores`` (the
process and fixtures), ``allocations``, ``watch``, ``report``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # ``anycastlb``, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for ``bench.harness``

from tests.support.postgres import PostgresServer

from bench.harness.control_allocations import measure_allocations
from bench.harness.control_report import StoreRun, allocation_line, summary, targets, watch_line
from bench.harness.control_stores import STORES, Outcome, control_plane, store_versions
from bench.harness.control_watch import measure_watch
from bench.harness.failover_report import cpu_pressure
from bench.harness.processes import make_temp_dir, start_bench


def _numbers(text: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers")
    return numbers


def _stores(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names or set(names) - set(STORES):
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {','.join(STORES)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over both stores (default 3)")
    parser.add_argument("--creates", type=int, default=200, help="creates per concurrency (default 200)")
    parser.add_argument(
        "--concurrency", type=_numbers, default=(1, 4, 16), help="client counts (default 1,4,16)"
    )
    parser.add_argument("--pops", type=_numbers, default=(50,), help="watching PoPs (default 50)")
    parser.add_argument(
        "--watch-creates", type=int, default=30, help="creates timed to the PoPs (default 30)"
    )
    parser.add_argument("--pause", type=float, default=0.2, help="s between those creates (default 0.2)")
    parser.add_argument("--stores", type=_stores, default=STORES, help="default sqlite,postgresql")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1 round, 60 creates at 1,4, 10 watched"
    )
    settings = parser.parse_args(argv)
    if settings.quick:
        settings.rounds, settings.creates, settings.concurrency = 1, 60, (1, 4)
        settings.watch_creates = 10
    if settings.rounds < 1 or settings.creates < 1 or settings.watch_creates < 1:
        parser.error("--rounds, --creates and --watch-creates must be at least 1")
    return settings


def run_store(
    settings: argparse.Namespace, store: str, index: int, workdir: Path, pg: PostgresServer | None
) -> StoreRun:
    """One store, one round: a fresh database and control plane through every phase."""
    run, outcome = StoreRun(store, index, [], [], 0, 0), Outcome()
    try:
        with control_plane(store, workdir / f"{store}-r{index + 1}", pg, outcome) as control:
            for concurrency in settings.concurrency:
                run.allocations.append(measure_allocations(control, settings.creates, concurrency))
                print(allocation_line(run, run.allocations[-1]), flush=True)
                control.check_listening(timeout=0)  # still ours and alive: else stop here, loudly
                if run.allocations[-1].problems:
                    print(f"FAIL ({store}): " + "; ".join(run.allocations[-1].problems), file=sys.stderr)
            for pops in settings.pops:
                run.watches.append(measure_watch(control, pops, settings.watch_creates, settings.pause))
                print(watch_line(run, run.watches[-1]), flush=True)
                control.check_listening(timeout=0)
            run.rss_kib, run.peak_kib = control.memory_kib()
    finally:
        run.server_errors = outcome.errors
        if outcome.exit_code is not None:
            print(f"  {store}: the control plane EXITED with code {outcome.exit_code}", file=sys.stderr)
        if outcome.kept_log is not None:
            total = sum(outcome.errors.values())
            print(f"  {store}: {total} exception lines in the control plane's log ({outcome.kept_log}):")
            for line, count in outcome.errors.most_common(3):
                print(f"    {count} x {line}")
    return run


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    command = start_bench("bench/control_plane.py", argv)
    print(f"command: {command}")
    print(
        f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, CPU pressure {cpu_pressure()};"
        f" {store_versions()}; Python {sys.version.split()[0]}",
        flush=True,
    )
    started = time.monotonic()
    workdir = make_temp_dir(Path(tempfile.gettempdir()))
    pg = PostgresServer().start() if "postgresql" in settings.stores else None
    runs: list[StoreRun] = []
    try:
        for index in range(settings.rounds):
            order = settings.stores if index % 2 == 0 else tuple(reversed(settings.stores))
            print(f"round {index + 1}/{settings.rounds}", flush=True)
            runs += [run_store(settings, store, index, workdir, pg) for store in order]
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ncommand: {command}\n\n{summary(runs, settings.stores)}\n")
    print("\n".join(targets(runs, settings.stores)))
    failed = [run for run in runs if any(alloc.problems for alloc in run.allocations)]
    print(f"\nrun took {time.monotonic() - started:.0f}s; CPU pressure after: {cpu_pressure()}")
    if failed:
        print(f"FAIL: address checks failed in {len(failed)} run(s), see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
