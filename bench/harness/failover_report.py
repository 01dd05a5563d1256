"""The failover figures (per fault, then per contender x fault kind), the targets, and the report.

Per fault, with t0 the wall-clock time just before the signal:

- **ejection**: t0 to the contender's first DOWN line for that node (HAProxy ``is DOWN``, the edge
  ``backend_down``); both log wall-clock time (HAProxy in µs, the edge in truncated ms).
- **failed new**: requests started at or after t0 that failed (error, reset, bad answer, or no
  answer within the client timeout); **t0 → last failed new**: t0 to the *start* of the last of
  them (0 when none failed): how long new requests kept failing, the figure the hang target is about.
- **lost in flight**: requests started before t0 that failed (no proxy can save those on SIGKILL).
- **node share**: the faulted node's share of the answers before t0 (the hash decides it).
- **slow ok new**: new requests that succeeded but took :data:`SLOW_S` or more (a retry or
  redispatch costs time: HAProxy waits up to ``timeout connect`` before it retries a refused
  connect), and the slowest new request that succeeded.

Percentiles are nearest-rank over faults: with fewer than 100 faults p99 is the maximum.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .failover_contenders import CONTENDERS
from .failover_run import PREROLL, FailoverRun, Fault
from .report import markdown_table

TARGET_MS = 250.0
SLOW_S = 0.5
_CONNECTION_KINDS = ("kill", "close", "flap")


@dataclass(frozen=True)
class FaultFigures:
    ejection_ms: float | None
    reason: str
    downs: int
    requests: int
    new: int
    failed_new: int
    last_failed_ms: float
    lost_in_flight: int
    share: float
    slow_ok_new: int
    slowest_ok_ms: float
    first_error: str


def figures(fault: Fault) -> FaultFigures:
    new = [a for a in fault.attempts if a.started >= fault.t0]
    old = [a for a in fault.attempts if a.started < fault.t0]
    failed = [a for a in new if a.node is None]
    downs = [c for c in fault.changes if not c.up]
    answered_before = [a for a in old if a.node is not None]
    ok_new = [a.ended - a.started for a in new if a.node is not None]
    return FaultFigures(
        ejection_ms=max(0.0, 1000 * (downs[0].at - fault.t0)) if downs else None,
        reason=downs[0].detail if downs else "",
        downs=len(downs),
        requests=len(fault.attempts),
        new=len(new),
        failed_new=len(failed),
        last_failed_ms=1000 * (failed[-1].started - fault.t0) if failed else 0.0,
        lost_in_flight=sum(a.node is None for a in old),
        share=sum(a.node == fault.node for a in answered_before) / max(1, len(answered_before)),
        slow_ok_new=sum(took >= SLOW_S for took in ok_new),
        slowest_ok_ms=1000 * max(ok_new, default=0.0),
        first_error=failed[0].error if failed else "",
    )


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest rank; ``inf`` counts (a fault that was never ejected)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Group:
    """One contender x fault kind over all its faults."""

    contender: str
    kind: str
    faults: list[FaultFigures]

    def ejection(self, pct: float) -> float | None:
        return percentile(
            [f.ejection_ms if f.ejection_ms is not None else math.inf for f in self.faults], pct
        )

    def last_failed(self, pct: float) -> float | None:
        return percentile([f.last_failed_ms for f in self.faults], pct)

    def total(self, attribute: str) -> int:
        return sum(int(getattr(f, attribute)) for f in self.faults)

    @property
    def not_ejected(self) -> int:
        return sum(f.ejection_ms is None for f in self.faults)


def groups(run: FailoverRun) -> dict[tuple[str, str], Group]:
    found: dict[tuple[str, str], Group] = {}
    for kind in run.settings.kinds:
        for name in run.settings.contenders:
            faults = [figures(f) for f in run.faults if f.contender == name and f.kind == kind]
            if faults:
                found[name, kind] = Group(name, kind, faults)
    return found


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return "never" if math.isinf(value) else f"{value:.0f}"


def summary_table(found: dict[tuple[str, str], Group]) -> str:
    header = [
        "fault",
        "contender",
        "faults",
        "ejection p50 / p99 / max, ms",
        "failed new (faults with any)",
        "t0 → last failed new p50 / p99 / max, ms",
        "lost in flight",
        "requests (new)",
        "node share",
        f"slow ok new (>= {SLOW_S:g} s)",
        "slowest ok new p50 / max, ms",
    ]
    rows = []
    for (name, kind), group in found.items():
        faults = group.faults
        slowest = [f.slowest_ok_ms for f in faults]
        never = f" ({group.not_ejected} never)" if group.not_ejected else ""
        rows.append(
            [
                kind,
                name,
                str(len(faults)),
                f"{ms(group.ejection(50))} / {ms(group.ejection(99))} / {ms(group.ejection(100))}{never}",
                f"{group.total('failed_new')} ({sum(f.failed_new > 0 for f in faults)})",
                f"{ms(group.last_failed(50))} / {ms(group.last_failed(99))} / {ms(group.last_failed(100))}",
                str(group.total("lost_in_flight")),
                f"{group.total('requests')} ({group.total('new')})",
                f"{statistics.median(f.share for f in faults):.0%}",
                str(group.total("slow_ok_new")),
                f"{ms(statistics.median(slowest))} / {ms(max(slowest))}",
            ]
        )
    return markdown_table(header, rows)


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or reference is None:
        return "-"
    if math.isinf(value) or math.isinf(reference):
        return "never" if math.isinf(value) else "0x"
    if reference == 0:
        return "=" if value == 0 else f"{value:.0f} vs 0"
    return f"{value / reference:.2f}x"


def ratio_table(found: dict[tuple[str, str], Group], kinds: Sequence[str], contenders: Sequence[str]) -> str:
    edges = [name for name in contenders if name != "haproxy"]
    if not edges or "haproxy" not in contenders:
        return "(no ratios: the run needs haproxy and an edge contender)"
    figures_of = (
        ("ejection p50", lambda g: g.ejection(50)),
        ("ejection p99", lambda g: g.ejection(99)),
        ("t0 → last failed new p99", lambda g: g.last_failed(99)),
        ("failed new", lambda g: float(g.total("failed_new"))),
    )
    rows = []
    for kind in kinds:
        reference = found.get(("haproxy", kind))
        for title, take in figures_of:
            cells = []
            for name in edges:
                group = found.get((name, kind))
                cells.append(ratio(take(group), take(reference)) if group and reference else "-")
            rows.append([kind, title, *cells])
    return markdown_table(["fault", "figure", *(f"{name} ÷ haproxy" for name in edges)], rows)


def targets(found: dict[tuple[str, str], Group]) -> list[str]:
    """One ``PASS``/``FAIL``/``n/a`` line per target (see the issue: hang, connection faults, vs HAProxy)."""
    lines: list[str] = []

    def check(passed: bool | None, text: str) -> None:
        lines.append(f"{'n/a ' if passed is None else 'PASS' if passed else 'FAIL'}  {text}")

    fast, haproxy = found.get(("edge-fast", "hang")), found.get(("haproxy", "hang"))
    for title, take in (
        ("t0 → last failed new request p99", Group.last_failed),
        ("ejection p99", Group.ejection),
    ):
        value = take(fast, 99) if fast else None
        check(
            None if value is None else value <= TARGET_MS,
            f"hang, edge-fast: {title} {ms(value)} <= {TARGET_MS:.0f} ms",
        )
        reference = take(haproxy, 99) if haproxy else None
        passed = None if value is None or reference is None else value <= reference
        check(passed, f"hang, edge-fast: {title} {ms(value)} <= haproxy's {ms(reference)} ms")
    for name in ("edge-fast", "edge-default"):
        for kind in _CONNECTION_KINDS:
            group, reference_group = found.get((name, kind)), found.get(("haproxy", kind))
            if group is None:
                continue
            failed = group.total("failed_new")
            check(failed == 0, f"{kind}, {name}: {failed} failed new connections == 0")
            if reference_group is not None:
                theirs = reference_group.total("failed_new")
                check(
                    failed <= theirs, f"{kind}, {name}: {failed} failed new connections <= haproxy's {theirs}"
                )
    return lines or ["n/a   no edge contender in this run"]


def raw_table(run: FailoverRun) -> str:
    header = [
        "contender",
        "fault",
        "#",
        "node",
        "ejection ms",
        "DOWN lines",
        "failed new",
        "last failed ms",
        "lost in flight",
        "requests",
        "how it was ejected / first error",
    ]
    rows = []
    for fault in sorted(run.faults, key=lambda f: (CONTENDERS.index(f.contender), f.kind, f.number)):
        fig = figures(fault)
        detail = "; ".join(text for text in (fig.reason[:70], fig.first_error[:50]) if text)
        rows.append(
            [
                fault.contender,
                fault.kind,
                str(fault.number),
                fault.node,
                ms(fig.ejection_ms),
                str(fig.downs),
                str(fig.failed_new),
                ms(fig.last_failed_ms),
                str(fig.lost_in_flight),
                str(fig.requests),
                detail.replace("|", "/"),
            ]
        )
    return markdown_table(header, rows)


def cpu_pressure() -> str:
    """The ``some`` line of /proc/pressure/cpu (share of time some task waited for a CPU)."""
    path = Path("/proc/pressure/cpu")
    if not path.exists():
        return "not available"
    line = next((ln for ln in path.read_text().splitlines() if ln.startswith("some")), "")
    return " ".join(part for part in line.split()[1:] if not part.startswith("total"))


def console(run: FailoverRun) -> str:
    found = groups(run)
    return "\n\n".join(
        [
            summary_table(found),
            ratio_table(found, run.settings.kinds, run.settings.contenders),
            "\n".join(targets(found)),
        ]
    )


def report(run: FailoverRun, command: str, env: str, pressure: tuple[str, str], duration: float) -> str:
    found = groups(run)
    settings = run.settings
    anomalies = "\n".join(f"- {line}" for line in run.anomalies) or "- none"
    warmup = "\n".join(f"- {name}: {text}" for name, text in run.warmup.items())
    return textwrap.dedent("""\
        # Failover benchmark: HAProxy and the anycastlb edge, the same faults on the same nodes

        Command: `{command}` ({faults} fault(s) per contender and kind, interleaved round by round; run
        took {duration:.0f}s).

        {env}
        - CPU pressure (/proc/pressure/cpu, `some`) before the run: {before}; after: {after}

        Three lab nginx nodes (`master_process off`, PROXY protocol port only) behind every contender at
        once; the client (a paced open loop: one new connection every {pace:g} ms from 127.0.0.2 to .101,
        `GET /`, {timeout:g} s timeout) runs against one contender at a time. Per fault: {preroll:g} s of
        traffic, the fault at t0, traffic until t0 + 1.5 s (3 s for edge-default; + 1.5 s for a flap),
        the node restored, and a wait until every contender logs it up. How each figure is taken: the
        docstrings of `bench/failover.py` and `bench/harness/failover_report.py`; contender configs:
        `bench/harness/failover_contenders.py` and `bench/README.md`.

        ## Results

        {summary}

        **Edge ÷ HAProxy** (below 1 is better; `=`: both 0)

        {ratios}

        ## Targets

        ```
        {targets}
        ```

        ## Warm-up (1 s of traffic per contender before the first fault)

        {warmup}

        ## Anomalies

        {anomalies}

        ## Every fault

        <details><summary>{count} faults</summary>

        {raw}

        </details>
    """).format(
        command=command,
        faults=settings.faults,
        duration=duration,
        env=env,
        before=pressure[0],
        after=pressure[1],
        pace=settings.pace_ms,
        timeout=settings.timeout,
        preroll=PREROLL,
        summary=summary_table(found),
        ratios=ratio_table(found, settings.kinds, settings.contenders),
        targets="\n".join(targets(found)),
        warmup=warmup,
        anomalies=anomalies,
        count=len(run.faults),
        raw=raw_table(run),
    )
