"""Kubernetes controller benchmark: a full resync of 5,000 Services x 500 Nodes, and Service create →
status.loadBalancer.ingress latency through the real controller process.

1. **Resync, pure** (``bench/harness/controller_resync.py``), in this process, ``--rounds`` times over
   the same synthetic cluster (``controller_cluster.py``: 70% Cluster / 30% Local Services, an
   EndpointSlice each, a few annotations): listed JSON → lightkube models → views, the indexes, every
   Service reconciled with fresh indexes and again with kept ones, the status check, and a Node
   joining. Target: a full resync ≤ 2 s.
2. **Requests** (``controller_puts.py``), against a real ``anycastlb control`` on SQLite holding
   those load balancers: the one request a periodic resync makes (``GET …/loadbalancer-versions``),
   and every Service's spec PUT from 4 workers as a controller does after it starts or becomes
   leader (``ControlClient.ensure``); ``--put-passes`` passes.
3. **Create → status** (``controller_latency.py``): the Kubernetes API stand-in, the control plane and
   the ``anycastlb controller`` process; ``--creates`` Services created one at a time and in bursts of
   ``--burst``, with 3 Nodes and with 500. Target: p99 ≤ 1 s. Node counts alternate within a round
   and the order flips every round (so do the two ways of creating).

The tables quote medians over rounds. The machine is small and shared: in phase 3 the stand-in, the
controller, the control plane and the waiter share its cores, and the figures include that.

This file is the command line; the parts are ``bench/harness/controller_*.py``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # ``anycastlb``, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for ``bench.harness``

from bench.harness.controller_cluster import make_cluster
from bench.harness.controller_latency import MODES, LatencyRun, measure_latency, world
from bench.harness.controller_puts import PutPass, digest_seconds, put_bench, put_pass, versions_calls
from bench.harness.controller_report import (
    LATENCY_TARGET_MS,
    RESYNC_TARGET_S,
    latency_line,
    latency_table,
    put_line,
    put_table,
    resync_line,
    resync_table,
    totals_table,
)
from bench.harness.controller_resync import ResyncRound, Views, desired_specs, measure_resync, to_views
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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    add = parser.add_argument
    add("--rounds", type=int, default=5, help="resync rounds (default 5)")
    add("--services", type=int, default=5000, help="Services in the resync (default 5000)")
    add("--nodes", type=int, default=500, help="Nodes in the resync (default 500)")
    add("--put-passes", type=int, default=1, help="passes of unchanged PUTs, 0: none (default 1)")
    add("--put-services", type=int, default=None, help="Services PUT per pass (default: --services)")
    add("--put-concurrency", type=int, default=4, help="PUT workers, as the controller's (default 4)")
    add("--api-creates", type=int, default=20, help="load balancers created through the API (default 20)")
    add("--late-creates", type=int, default=3, help="creates timed with all held (default 3)")
    add("--latency-rounds", type=int, default=2, help="rounds of create → status (default 2)")
    add("--latency-nodes", type=_numbers, default=(3, 500), help="Node counts (default 3,500)")
    add("--creates", type=int, default=100, help="Services created per way and world (default 100)")
    add("--burst", type=int, default=10, help="Services per burst (default 10)")
    add(
        "--quick",
        action="store_true",
        help="smoke test: 1 round of everything, 1,000 Services, fewer creates",
    )
    settings = parser.parse_args(argv)
    if settings.quick:
        settings.rounds, settings.services, settings.latency_rounds = 1, 1000, 1
        settings.put_services, settings.api_creates, settings.late_creates = 200, 5, 1
        settings.creates = 20
    if settings.put_services is None:
        settings.put_services = settings.services
    settings.put_services = min(settings.put_services, settings.services)
    if min(settings.rounds, settings.services, settings.nodes, settings.creates, settings.burst) < 1:
        parser.error("--rounds, --services, --nodes, --creates and --burst must be at least 1")
    if settings.api_creates > settings.put_services:
        parser.error("--api-creates must not exceed the Services PUT")
    return settings


def run_puts(
    settings: argparse.Namespace, views: Views, workdir: Path
) -> tuple[str, list[PutPass], tuple[list[float], float]]:
    specs = desired_specs(views)
    gc.freeze()  # the runtime freezes what its first pass built (Controller._first_pass_done)
    chosen, late = specs[: settings.put_services], specs[settings.services :]
    passes: list[PutPass] = []
    with put_bench(workdir / "puts", chosen, late, settings.api_creates) as bench:
        print(
            f"  control plane holds {len(chosen)} load balancers ({settings.api_creates} created through the"
            f" API, p50 {sorted(bench.create_ms)[len(bench.create_ms) // 2]:.0f} ms; the rest written in"
            f" {bench.seed_seconds:.1f}s)",
            flush=True,
        )
        bench.versions_ms = versions_calls(bench)
        bench.digest_s = digest_seconds(chosen)
        print(
            f"  GET loadbalancer-versions of {len(chosen)}: "
            + ", ".join(f"{value:,.0f} ms" for value in bench.versions_ms)
            + f"; digests of every spec {bench.digest_s:.2f}s",
            flush=True,
        )
        for _ in range(settings.put_passes):
            passes.append(put_pass(bench, settings.put_concurrency))
            print(put_line(passes[-1]), flush=True)
    print(
        f"  API creates with all held: {', '.join(f'{v:,.0f} ms' for v in bench.late_create_ms)}", flush=True
    )
    if bench.kept_log is not None:
        print(f"  the control plane's log is kept in {bench.kept_log}; exception lines in it:")
        for line, count in bench.server_errors.most_common(5):
            print(f"    {count} x {line}")
    gc.unfreeze()
    return put_table(bench, passes, settings.put_concurrency), passes, (bench.versions_ms, bench.digest_s)


def run_latency(settings: argparse.Namespace, workdir: Path) -> list[LatencyRun]:
    runs: list[LatencyRun] = []
    for index in range(settings.latency_rounds):
        flip = index % 2 == 1
        for nodes in reversed(settings.latency_nodes) if flip else settings.latency_nodes:
            print(f"latency round {index + 1}/{settings.latency_rounds}, {nodes} nodes", flush=True)
            with world(workdir / f"latency-r{index + 1}-{nodes}", nodes, seed=index) as found:
                for mode in reversed(MODES) if flip else MODES:
                    runs.append(measure_latency(found, mode, settings.creates, settings.burst, index))
                    print(latency_line(runs[-1]), flush=True)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    command = start_bench("bench/controller.py", argv)
    print(f"command: {command}")
    print(
        f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, CPU pressure {cpu_pressure()};"
        f" Python {sys.version.split()[0]}, lightkube {version('lightkube')}, pydantic {version('pydantic')},"
        f" SQLite {sqlite3.sqlite_version}",
        flush=True,
    )
    started = time.monotonic()
    workdir = make_temp_dir(Path(tempfile.gettempdir()))
    late = settings.late_creates if settings.put_passes else 0
    cluster = make_cluster(settings.services + late, settings.nodes)
    rounds: list[ResyncRound] = []
    passes: list[PutPass] = []
    held: tuple[list[float], float] = ([], 0.0)
    puts = ""
    runs: list[LatencyRun] = []
    try:
        for index in range(settings.rounds):
            rounds.append(measure_resync(cluster, settings.services, index))
            print(resync_line(rounds[-1]), flush=True)
        if settings.put_passes:
            print("PUTs of unchanged specs", flush=True)
            puts, passes, held = run_puts(settings, to_views(cluster, settings.services + late), workdir)
        del cluster
        gc.collect()
        runs = run_latency(settings, workdir)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ncommand: {command}\n")
    print(f"Resync of {settings.services:,} Services x {settings.nodes} Nodes, {len(rounds)} rounds:\n")
    print(resync_table(rounds, settings.services) + "\n")
    print(totals_table(rounds, passes, held, settings.services) + "\n")
    if puts:
        print(puts + "\n")
    if runs:
        print(f"Create → status.loadBalancer.ingress ({settings.creates} Services per row and round):\n")
        print(latency_table(runs) + "\n")
    print(f"targets: full resync ≤ {RESYNC_TARGET_S:.0f} s, create → status p99 ≤ {LATENCY_TARGET_MS:.0f} ms")
    problems = [p for r in rounds for p in r.problems]
    problems += [
        f"PUT pass: {sum(p.errors.values())} errors, {p.changed} changed"
        for p in passes
        if p.errors or p.changed
    ]
    problems += [f"{r.nodes} nodes {r.mode}: {e}" for r in runs for e in r.errors]
    print(f"\nrun took {time.monotonic() - started:.0f}s; CPU pressure after: {cpu_pressure()}")
    if problems:
        print("FAIL: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
