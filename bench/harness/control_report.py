"""The control-plane benchmark's figures: one line per phase while it runs, then per round the raw
values and, over all rounds, the medians of both stores side by side with PostgreSQL ÷ SQLite.

Percentiles are nearest rank over one round's samples; the tables quote the median of the
per-round values (of a percentile too), and the raw table shows every round.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.harness.control_allocations import AllocationFigures
from bench.harness.control_watch import WatchFigures
from bench.harness.report import markdown_table

__all__ = [
    "APPLIED_TARGET_MS",
    "StoreRun",
    "allocation_line",
    "percentile",
    "summary",
    "targets",
    "watch_line",
]

APPLIED_TARGET_MS, TARGET_POPS = 500.0, 50  # create → applied p99 at 50 PoPs
_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class StoreRun:
    """One store in one round: a fresh database and control plane process."""

    store: str
    round: int
    allocations: list[AllocationFigures]
    watches: list[WatchFigures]
    rss_kib: int  # VmRSS after the run
    peak_kib: int  # VmHWM
    server_errors: Counter[str] = field(default_factory=Counter)  # exceptions in the control plane's log


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _tenth(figures: AllocationFigures, *, last: bool) -> float:
    """Create p50 over the first or last 10% of indexes (the tenant holds 0-10% or 90-100% of N)."""
    indexes = sorted(figures.creates.latencies_ms)
    size = max(1, len(indexes) // 10)
    chosen = indexes[-size:] if last else indexes[:size]
    return percentile([figures.creates.latencies_ms[i] for i in chosen], 50)


def _errors(counts: Counter[str]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items())) or "none"


def allocation_line(run: StoreRun, figures: AllocationFigures) -> str:
    creates, deletes = figures.creates, figures.deletes
    latencies = list(creates.latencies_ms.values())
    verdict = "PASS" if not figures.problems else "FAIL: " + "; ".join(figures.problems)
    return (
        f"  {run.store:<10} {figures.concurrency:>2} client(s): {creates.ok} creates in"
        f" {creates.seconds:.1f}s = {creates.per_second:.1f}/s (p50 {percentile(latencies, 50):.0f} ms, p99"
        f" {percentile(latencies, 99):.0f} ms, first/last 10% p50 {_tenth(figures, last=False):.0f}/"
        f"{_tenth(figures, last=True):.0f} ms, server CPU {figures.server_cpu_ms_per_create:.1f} ms each,"
        f" errors {_errors(creates.errors)}); {deletes.per_second:.1f} deletes/s (errors"
        f" {_errors(deletes.errors)}); addresses {verdict}"
    )


def watch_line(run: StoreRun, figures: WatchFigures) -> str:
    values = figures.latencies_ms
    return (
        f"  {run.store:<10} {figures.pops} PoPs: create → applied over {len(values)} pairs p50"
        f" {percentile(values, 50):.0f} / p95 {percentile(values, 95):.0f} / p99"
        f" {percentile(values, 99):.0f} / max {max(values, default=math.nan):.0f} ms; create p50"
        f" {percentile(figures.create_ms, 50):.0f} ms; missing {figures.missing}, wrong VIPs"
        f" {figures.wrong_vips}; CPU per create: server {figures.server_cpu_ms_per_create:.0f} ms, this"
        f" process (watchers) {figures.client_cpu_ms_per_create:.0f} ms;"
        f" errors create {_errors(figures.create_errors)}, watch {_errors(figures.watch_errors)}"
    )


def _values(run: StoreRun) -> dict[str, tuple[float, int]]:
    """Every figure of one run: label → (value, decimals), in table order."""
    found: dict[str, tuple[float, int]] = {}
    for alloc in run.allocations:
        c, latencies = alloc.concurrency, list(alloc.creates.latencies_ms.values())
        found |= {
            f"creates/s, {c} client(s)": (alloc.creates.per_second, 1),
            f"create p50 (ms), {c}": (percentile(latencies, 50), 0),
            f"create p99 (ms), {c}": (percentile(latencies, 99), 0),
            f"create p50, first 10% of N (ms), {c}": (_tenth(alloc, last=False), 0),
            f"create p50, last 10% of N (ms), {c}": (_tenth(alloc, last=True), 0),
            f"server CPU per create (ms), {c}": (alloc.server_cpu_ms_per_create, 1),
            f"deletes/s, {c}": (alloc.deletes.per_second, 1),
        }
    for watch in run.watches:
        p = watch.pops
        for name, pct in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("max", 100.0)):
            found[f"create → applied {name} (ms), {p} PoPs"] = (percentile(watch.latencies_ms, pct), 0)
        found[f"create request p50 (ms), {p} PoPs"] = (percentile(watch.create_ms, 50), 0)
        found[f"server CPU per create (ms), {p} PoPs"] = (watch.server_cpu_ms_per_create, 0)
        found[f"watchers' CPU per create (ms), {p} PoPs"] = (watch.client_cpu_ms_per_create, 0)
    found["control plane RSS after the run (MiB)"] = (run.rss_kib / 1024, 1)
    found["control plane peak RSS, VmHWM (MiB)"] = (run.peak_kib / 1024, 1)
    return found


def _fmt(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def _checks(runs: list[StoreRun], stores: Sequence[str]) -> list[list[str]]:
    def cell(store: str, text: Callable[[StoreRun], str]) -> str:
        return "; ".join(sorted({text(run) for run in runs if run.store == store}))

    def errors(run: StoreRun) -> str:
        total: Counter[str] = Counter()
        for alloc in run.allocations:
            total.update(alloc.creates.errors)
            total.update(alloc.deletes.errors)
        for watch in run.watches:
            total.update(watch.create_errors)
            total.update(watch.watch_errors)
        return _errors(total)

    def addresses(run: StoreRun) -> str:
        return "PASS" if not any(alloc.problems for alloc in run.allocations) else "FAIL"

    def pairs(run: StoreRun) -> str:
        return ", ".join(f"{w.missing} missing / {w.wrong_vips} wrong VIPs" for w in run.watches)

    def logged(run: StoreRun) -> str:
        return str(sum(run.server_errors.values()))

    return [
        ["exceptions in the control plane's log (per round)"] + [cell(s, logged) for s in stores],
        ["addresses unique, IP list = creates, freed on delete (every round)"]
        + [cell(s, addresses) for s in stores],
        ["request errors (per round)"] + [cell(s, errors) for s in stores],
        ["(create, PoP) pairs never applied / with other VIPs"] + [cell(s, pairs) for s in stores],
    ]


def summary(runs: list[StoreRun], stores: Sequence[str]) -> str:
    """The raw per-round table and the medians side by side (markdown)."""
    values = {id(run): _values(run) for run in runs}
    labels = list(values[id(runs[0])])
    digits = {label: values[id(runs[0])][label][1] for label in labels}
    order = sorted(runs, key=lambda run: (run.round, stores.index(run.store)))
    raw = markdown_table(
        ["figure", *(f"{_NAMES[run.store]} r{run.round + 1}" for run in order)],
        [[label, *(_fmt(values[id(run)][label][0], digits[label]) for run in order)] for label in labels],
    )
    medians = {
        store: [
            _median([values[id(run)][label][0] for run in runs if run.store == store]) for label in labels
        ]
        for store in stores
    }
    header = ["figure (median of rounds)", *(_NAMES[s] for s in stores)]
    both = len(stores) == 2
    if both:
        header.append(f"{_NAMES[stores[1]]} ÷ {_NAMES[stores[0]]}")
    rows = []
    for index, label in enumerate(labels):
        cells = [_fmt(medians[s][index], digits[label]) for s in stores]
        if both:
            base, other = medians[stores[0]][index], medians[stores[1]][index]
            cells.append(f"{other / base:.2f}x" if base and not math.isnan(base + other) else "-")
        rows.append([label, *cells])
    rows += [row + ([""] if both else []) for row in _checks(runs, stores)]
    return "Raw values per round:\n\n" + raw + "\n\nMedians:\n\n" + markdown_table(header, rows)


def targets(runs: list[StoreRun], stores: Sequence[str]) -> list[str]:
    """The issue's target (p99 <= 500 ms at 50 PoPs); other PoP counts are shown for reference."""
    lines = []
    for store in stores:
        for position, watch in enumerate(next(r for r in runs if r.store == store).watches):
            mine = [r for r in runs if r.store == store]
            p99 = _median([percentile(r.watches[position].latencies_ms, 99) for r in mine])
            verdict = "met" if p99 <= APPLIED_TARGET_MS else "NOT met"
            what = "target" if watch.pops == TARGET_POPS else "for reference, the target is at 50 PoPs:"
            lines.append(
                f"{what} create → applied p99 <= {APPLIED_TARGET_MS:.0f} ms at {watch.pops} PoPs,"
                f" {_NAMES[store]}: {p99:.0f} ms, {verdict}"
            )
    return lines
