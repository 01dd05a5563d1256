"""The controller benchmark's tables: the resync steps, the resync totals against the 2 s target, the
PUT passes, and create → status latencies against the 1 s target. Values are medians over rounds
(of a per-round percentile too, nearest rank); ``min-max`` shows the spread between rounds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

from bench.harness.control_report import percentile
from bench.harness.controller_latency import LatencyRun
from bench.harness.controller_puts import PutBench, PutPass
from bench.harness.controller_resync import STEPS, ResyncRound
from bench.harness.report import markdown_table

__all__ = [
    "LATENCY_TARGET_MS",
    "RESYNC_TARGET_S",
    "latency_line",
    "latency_table",
    "put_line",
    "put_table",
    "resync_line",
    "resync_table",
    "totals_table",
]

RESYNC_TARGET_S = 2.0
LATENCY_TARGET_MS = 1000.0


def _median(values: Sequence[float]) -> float:
    found = [value for value in values if not math.isnan(value)]
    return statistics.median(found) if found else math.nan


def _spread(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    if not values:
        return "-"
    return f"{min(values) * scale:,.{digits}f}-{max(values) * scale:,.{digits}f}"


def _pct(result: PutPass | LatencyRun, pct: float) -> float:
    return percentile(result.latencies_ms, pct)


def resync_line(result: ResyncRound) -> str:
    steps = result.steps
    parts = [f"{name} {steps[name].wall_s:.2f}s" for name in STEPS if name in steps]
    verdict = "; PROBLEMS: " + "; ".join(result.problems) if result.problems else ""
    return f"  resync round {result.round + 1}: " + ", ".join(parts) + verdict


def resync_table(rounds: list[ResyncRound], services: int) -> str:
    rows = []
    for name in STEPS:
        walls = [r.steps[name].wall_s for r in rounds if name in r.steps]
        gcs = [r.steps[name].gc_s for r in rounds if name in r.steps]
        longest = [r.steps[name].gc_longest_s for r in rounds if name in r.steps]
        cpus = [r.steps[name].cpu_s for r in rounds if name in r.steps]
        wall = _median(walls)
        per = (
            ""
            if not name.startswith(("reconcile", "node", "status", "parse Serv", "views Serv"))
            else (f"{1e6 * wall / services:,.0f}")
        )
        rows.append(
            [
                name,
                f"{wall:,.3f}",
                _spread(walls, digits=3),
                f"{_median(cpus):,.3f}",
                f"{_median(gcs):,.3f}",
                f"{max(longest, default=math.nan):,.3f}",
                per,
            ]
        )
    rss = {
        name: _median([r.steps[name].rss_mib for r in rounds if name in r.steps])
        for name in ("indexes", "reconcile first", "node change: previous=", "node change: rebuild")
    }
    table = markdown_table(
        [
            "step",
            "wall (s)",
            "min-max (s)",
            "CPU (s)",
            "of which GC (s)",
            "longest GC run (s)",
            "per Service (µs)",
        ],
        rows,
    )
    memory = ", ".join(f"{name} {value:,.0f} MiB" for name, value in rss.items())
    return f"{table}\n\nthis process's resident memory after the step: {memory}"


def _total(rounds: list[ResyncRound], names: Sequence[str]) -> list[float]:
    return [sum(r.steps[name].wall_s for name in names) for r in rounds]


def totals_table(
    rounds: list[ResyncRound], passes: list[PutPass], held: tuple[list[float], float], services: int
) -> str:
    versions_ms, digest_s = held
    put = _median([p.seconds * services / p.requests for p in passes]) if passes else math.nan
    scaled = " (extrapolated from fewer PUTs)" if passes and passes[0].requests != services else ""
    parse = ["parse Services", "parse Nodes", "parse EndpointSlices"]
    views = ["views Services", "views Nodes", "views EndpointSlices"]
    lines: list[tuple[str, list[float]]] = [
        (
            "full resync, fresh indexes: indexes + reconcile first",
            _total(rounds, ["indexes", "reconcile first"]),
        ),
        ("periodic resync, indexes kept: reconcile again", _total(rounds, ["reconcile again"])),
        ("after a Node joins, previous= as the runtime does", _total(rounds, ["node change: previous="])),
        ("after a Node joins, NodeIndex built anew", _total(rounds, ["node change: rebuild"])),
        (
            "first sync from listed JSON: parse + views + indexes + reconcile first",
            _total(rounds, [*parse, *views, "indexes", "reconcile first"]),
        ),
    ]
    if versions_ms:
        versions = _median(versions_ms) / 1000
        lines.append(
            (
                "periodic resync end to end: versions request + reconcile again + spec compare"
                " + status check (nothing sent)",
                [v + versions for v in _total(rounds, ["reconcile again", "spec compare", "status check"])],
            )
        )
        lines.append(
            (
                "after a restart or leader change: versions request + indexes + reconcile first"
                " + a digest per spec (nothing sent)",
                [v + versions + digest_s for v in _total(rounds, ["indexes", "reconcile first"])],
            )
        )
    if passes:
        lines.append(
            (
                f"a restart against rows without digests (before migration 0002): reconcile first"
                f" + {services:,} unchanged PUTs{scaled}",
                [value + put for value in _total(rounds, ["indexes", "reconcile first"])],
            )
        )
    rows = []
    for label, values in lines:
        value = _median(values)
        rows.append(
            [label, f"{value:,.2f}", f"{1e6 * value / services:,.0f}", f"{value / RESYNC_TARGET_S:.2f}x"]
        )
    return markdown_table(["resync of all Services (median)", "s", "per Service (µs)", "÷ 2 s target"], rows)


def put_line(result: PutPass) -> str:
    return (
        f"  PUT pass: {result.requests} unchanged PUTs in {result.seconds:.1f}s"
        f" ({result.requests / result.seconds:.1f}/s), p50 {percentile(result.latencies_ms, 50):.0f} ms,"
        f" p99 {percentile(result.latencies_ms, 99):.0f} ms, max {_pct(result, 100):.0f} ms;"
        f" longest GC run here {result.gc_longest_s:.2f}s; CPU per PUT: control plane"
        f" {1000 * result.server_cpu_s / result.requests:.1f} ms, this process"
        f" {1000 * result.client_cpu_s / result.requests:.1f} ms; errors {dict(result.errors) or 'none'},"
        f" changed {result.changed}"
    )


def put_table(bench: PutBench, passes: list[PutPass], concurrency: int) -> str:
    def med(value: Callable[[PutPass], float]) -> str:
        return f"{_median([value(p) for p in passes]):,.1f}"

    backends = sum(len(listener.backends) for spec in bench.specs for listener in spec.listeners)
    rows = [
        [
            "load balancers / backends per load balancer (mean)",
            f"{len(bench.specs):,} / {backends / len(bench.specs):,.0f}",
        ],
        [f"pass of unchanged PUTs from {concurrency} workers (s)", med(lambda p: p.seconds)],
        ["PUTs/s", med(lambda p: p.requests / p.seconds)],
        [
            "PUT p50 / p99 / max (ms)",
            f"{med(lambda p: _pct(p, 50))} / {med(lambda p: _pct(p, 99))} / {med(lambda p: _pct(p, 100))}",
        ],
        ["longest GC run in the sending process (s)", f"{max(p.gc_longest_s for p in passes):.2f}"],
        ["control plane CPU per PUT (ms)", med(lambda p: 1000 * p.server_cpu_s / p.requests)],
        [
            "controller side CPU per PUT (ms): model_dump + httpx",
            med(lambda p: 1000 * p.client_cpu_s / p.requests),
        ],
        [
            "errors / answers other than 200 with the same version",
            ", ".join(f"{sum(p.errors.values())} / {p.changed}" for p in passes),
        ],
        [
            f"API creates while the tenant is small, p50 / max (ms), {len(bench.create_ms)}",
            f"{percentile(bench.create_ms, 50):,.0f} / {max(bench.create_ms, default=math.nan):,.0f}",
        ],
        [
            f"API creates with {len(bench.specs):,} load balancers held (ms each)",
            ", ".join(f"{v:,.0f}" for v in bench.late_create_ms) or "-",
        ],
        ["rows written straight into the store (s)", f"{bench.seed_seconds:,.1f}"],
        ["exception lines in the control plane's log", str(sum(bench.server_errors.values()))],
    ]
    return markdown_table(["figure", f"median of {len(passes)} pass(es)"], rows)


def latency_line(run: LatencyRun) -> str:
    values = run.latencies_ms
    return (
        f"  {run.nodes:>3} nodes, {run.mode:<10}: {len(values)} creates → ingress p50"
        f" {percentile(values, 50):.0f} / p95 {percentile(values, 95):.0f} / p99"
        f" {percentile(values, 99):.0f} / max {max(values, default=math.nan):.0f} ms in {run.seconds:.1f}s;"
        f" {run.reconciles:.1f} reconciles per create, {run.reconcile_ms:.0f} ms each; CPU per create:"
        f" controller {run.controller_cpu_ms:.0f} ms, control plane {run.control_cpu_ms:.0f} ms, stand-in"
        f" {run.standin_cpu_ms:.0f} ms" + (f"; ERRORS {run.errors}" if run.errors else "")
    )


def latency_table(runs: list[LatencyRun]) -> str:
    groups = sorted({(run.nodes, run.mode) for run in runs}, key=lambda g: (g[0], g[1] != "sequential"))
    rows = []
    for nodes, mode in groups:
        chosen = [run for run in runs if (run.nodes, run.mode) == (nodes, mode)]

        def med(
            value: Callable[[LatencyRun], float], digits: int = 0, chosen: list[LatencyRun] = chosen
        ) -> str:
            return f"{_median([value(run) for run in chosen]):,.{digits}f}"

        p99 = _median([percentile(run.latencies_ms, 99) for run in chosen])
        every = [value for run in chosen for value in run.latencies_ms]
        rows.append(
            [
                f"{nodes} nodes, {mode}",
                f"{med(lambda r: _pct(r, 50))} / {med(lambda r: _pct(r, 95))}",
                f"**{p99:,.0f}** / {max(every, default=math.nan):,.0f}",
                f"{p99 / LATENCY_TARGET_MS:.2f}x",
                f"{med(lambda r: r.reconciles, 1)} x {med(lambda r: r.reconcile_ms)} ms",
                " / ".join(
                    med(value)
                    for value in (
                        lambda r: r.controller_cpu_ms,
                        lambda r: r.control_cpu_ms,
                        lambda r: r.standin_cpu_ms,
                    )
                ),
                str(sum(len(run.errors) for run in chosen)),
            ]
        )
    return markdown_table(
        [
            "Services created",
            "p50 / p95 (ms)",
            "p99 / max of all (ms)",
            "p99 ÷ 1 s target",
            "reconciles per create x mean",
            "CPU per create (ms): controller / control plane / stand-in",
            "timeouts",
        ],
        rows,
    )
