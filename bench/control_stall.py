"""Control-plane stall benchmark: does one tenant's largest load balancer slow another's writes?

Per store and round, a fresh control plane (bench/harness/control_stores.py) with default limits:
tenant B creates ``--creates`` one-backend load balancers one at a time, once alone and once while
tenant A updates a load balancer at the spec limits back to back (default 1 listener x 5,000
backends = the default 5,000 backends per listener and per load balancer). Figures: B's
create latency p50/p99/max in both modes; the difference is what A costs B (target: < 100 ms).
Modes alternate within a round and stores flip order every round; the summary quotes medians over
rounds. The machine is small and shared: client threads, the control plane and PostgreSQL share
its cores, as they would on a small control-plane host.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import PostgresServer

from bench.harness.control_stall import StallRun, measure_stall, stall_line
from bench.harness.control_stores import STORES, Outcome, control_plane, store_versions
from bench.harness.failover_report import cpu_pressure
from bench.harness.processes import make_temp_dir, start_bench


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over both stores (default 3)")
    parser.add_argument("--creates", type=int, default=200, help="B's creates per mode (default 200)")
    parser.add_argument("--listeners", type=int, default=1, help="A's listeners (default 1)")
    parser.add_argument("--backends", type=int, default=5000, help="A's backends per listener (default 5000)")
    parser.add_argument("--stores", default=",".join(STORES), help="default sqlite,postgresql")
    settings = parser.parse_args(argv)
    settings.stores = tuple(name for name in settings.stores.split(",") if name)
    if set(settings.stores) - set(STORES) or settings.rounds < 1 or settings.creates < 1:
        parser.error(f"--stores from {','.join(STORES)}; --rounds and --creates at least 1")
    return settings


def run_store(
    settings: argparse.Namespace, store: str, index: int, workdir: Path, pg: PostgresServer | None
) -> list[StallRun]:
    outcome, runs = Outcome(), []
    with control_plane(store, workdir / f"{store}-r{index + 1}", pg, outcome) as control:
        modes = (False, True) if index % 2 == 0 else (True, False)
        for with_big in modes:
            run = measure_stall(
                control,
                f"{index}{int(with_big)}",
                creates=settings.creates,
                with_big=with_big,
                listeners=settings.listeners,
                per_listener=settings.backends,
            )
            print(stall_line(run), flush=True)
            runs.append(run)
    if outcome.errors or outcome.exit_code is not None:
        print(f"  {store}: exceptions {dict(outcome.errors)} exit {outcome.exit_code} log {outcome.kept_log}")
    return runs


def summary(runs: list[StallRun], stores: tuple[str, ...]) -> str:
    lines = [
        "| store | B's creates | p50 ms | p99 ms | max ms | A's PUT median ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for store in stores:
        for with_big in (False, True):
            chosen = [run for run in runs if run.store == store and run.with_big == with_big]
            p50 = statistics.median(run.quantile(0.5) for run in chosen)
            p99 = statistics.median(run.quantile(0.99) for run in chosen)
            top = statistics.median(max(run.latencies_ms) for run in chosen)
            big = statistics.median(statistics.median(run.big_ms) for run in chosen) if with_big else None
            lines.append(
                f"| {store} | {'with A' if with_big else 'alone'} | {p50:.1f} | {p99:.1f} | {top:.1f} | "
                f"{'' if big is None else f'{big:.0f}'} | {sum(run.errors for run in chosen)} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    command = start_bench("bench/control_stall.py", argv)
    print(f"command: {command}")
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} CPUs, load {load:.2f}, CPU pressure {cpu_pressure()}; {store_versions()}"
    )
    workdir = make_temp_dir(Path(tempfile.gettempdir()))
    pg = PostgresServer().start() if "postgresql" in settings.stores else None
    runs: list[StallRun] = []
    try:
        for index in range(settings.rounds):
            order = settings.stores if index % 2 == 0 else tuple(reversed(settings.stores))
            print(f"round {index + 1}/{settings.rounds}", flush=True)
            for store in order:
                runs += run_store(settings, store, index, workdir, pg)
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ncommand: {command}\n\n{summary(runs, settings.stores)}")
    return 1 if any(run.errors for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
