"""Issue 12's targets, checked against HAProxy in the same run: the last table of the report.

Each target is a bound on edge ÷ HAProxy for one figure. The ratio quoted is the median over rounds
of the ratio *within* a round (the edge and HAProxy ran minutes apart at most, so drift of the
shared machine cancels), per relay mode; the verdict is the best relay mode's. The best mode may
differ between targets: the table shows every mode so that a verdict is not read as one mode's.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from .markdown import markdown_table
from .results import Results

__all__ = ["TARGETS", "Target", "round_ratios", "targets_section"]


@dataclass(frozen=True)
class Target:
    key: str  # a figure key (results.FIGURES)
    title: str
    bound: float  # on edge ÷ HAProxy
    at_most: bool  # True: ratio ≤ bound is met; False: ratio ≥ bound is met

    def met(self, ratio: float) -> bool:
        compare: Callable[[float, float], bool] = operator.le if self.at_most else operator.ge
        return compare(ratio, self.bound)

    @property
    def wanted(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.bound:g}x"


TARGETS = (
    Target("cpu", "CPU per connection (user + sys)", 0.85, at_most=True),
    Target("cps", "new connections/s", 1.15, at_most=False),
    Target("bulk_cpu", "bulk CPU per GB relayed (1 stream)", 0.8, at_most=True),
    Target("bulk1", "one-stream throughput", 1.1, at_most=False),
    Target("p99", "p99 latency at 500 req/s", 1.0, at_most=True),
    Target("rss", "RSS per 10k idle connections", 0.5, at_most=True),
)
# Not in the target list but in its item 3 ("fewer syscalls than HAProxy"): shown, not counted.
SYSCALLS = Target("syscalls", "syscalls per connection (item 3, not counted)", 1.0, at_most=True)


def round_ratios(results: Results, contender: str, key: str) -> list[float]:
    """contender ÷ haproxy for each round where both have the figure."""
    ratios = []
    for mine, theirs in zip(results.samples[contender], results.samples["haproxy"], strict=False):
        value, reference = mine.values.get(key), theirs.values.get(key)
        if value is None or not reference or value != value or reference != reference:  # noqa: PLR0124 - NaN
            continue
        ratios.append(value / reference)
    return ratios


def targets_section(results: Results) -> str:
    """The table, and one sentence per target in plain words."""
    edges = [name for name in results.contenders if name.startswith("edge-")]
    if "haproxy" not in results.contenders or not edges:
        return "Not checked: the run needs `haproxy` and at least one `edge-*` contender."
    rows, verdicts = [], []
    for target in (*TARGETS, SYSCALLS):
        medians = {
            edge: statistics.median(ratios)
            for edge in edges
            if (ratios := round_ratios(results, edge, target.key))
        }
        cells = [f"{medians[edge]:.2f}x" if edge in medians else "-" for edge in edges]
        if not medians:
            rows.append([target.title, target.wanted, *cells, "-", "not measured"])
            continue
        best = (min if target.at_most else max)(medians, key=lambda edge: medians[edge])
        verdict = "met" if target.met(medians[best]) else "NOT met"
        rows.append([target.title, target.wanted, *cells, f"{best} {medians[best]:.2f}x", verdict])
        if target is not SYSCALLS:
            verdicts.append(verdict == "met")
    header = ["target (edge ÷ HAProxy)", "wanted", *edges, "best", "verdict"]
    summary = (
        f"**{sum(verdicts)} of {len(TARGETS)} targets met** ({len(verdicts)} measured). Ratios: median over"
        " rounds of edge ÷ HAProxy within the same round; verdict on the best relay mode per target."
    )
    return markdown_table(header, rows) + "\n\n" + summary
