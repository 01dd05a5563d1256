"""The markdown report: medians, ratios to HAProxy and to direct, costs per connection, raw values,
environment, anomalies, and issue 12's targets."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import resource
import subprocess
import textwrap
from pathlib import Path

from .costs import costs_section
from .markdown import fmt, markdown_table, median, ratio
from .results import EDGE_WORKERS, FIGURES, HAPROXY_THREADS, Results
from .servers import NGINX_WORKERS, REPO
from .syscalls import RATE as STRACE_RATE
from .targets import targets_section

__all__ = ["environment", "markdown_table", "raw_table", "report", "summary_tables"]


def summary_tables(results: Results) -> str:
    names = results.contenders
    medians = {name: {f.key: median(results.samples[name], f.key) for f in FIGURES} for name in names}
    header = ["figure", *names]
    sections = []
    for title, reference in (("Medians", None), ("÷ haproxy", "haproxy"), ("÷ direct", "direct")):
        rows = []
        for spec in FIGURES:
            label = f"{spec.title} ({spec.unit}, {'higher' if spec.higher_is_better else 'lower'} is better)"
            cells = [
                fmt(medians[name][spec.key])
                if reference is None
                else ratio(medians[name][spec.key], medians.get(reference, {}).get(spec.key))
                for name in names
            ]
            rows.append([label if reference is None else spec.title, *cells])
        sections.append(f"**{title}**\n\n" + markdown_table(header, rows))
    note = (
        "Ratios are the contender's median ÷ the reference's; where lower is better (CPU, syscalls,"
        " latency, RSS) below 1 is better."
    )
    return "\n\n".join([*sections, note])


def raw_table(results: Results) -> str:
    rows = []
    for name in results.contenders:
        for round_no, sample in enumerate(results.samples[name], 1):
            cells = [fmt(sample.values.get(f.key)) + (" ⚠" if f.key in sample.flags else "") for f in FIGURES]
            rows.append([name, str(round_no), *cells])
    header = ["contender", "round", *(f"{f.key} ({f.unit})" for f in FIGURES)]
    return markdown_table(header, rows) + "\n\n⚠ = that run reported errors (see anomalies)."


def environment() -> str:
    def version(argv: list[str]) -> str:
        with contextlib.suppress(OSError):
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
            return next(iter((done.stdout or done.stderr).strip().splitlines()), "")
        return "not found"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    git = ["git", "-C", str(REPO)]
    commit = version([*git, "rev-parse", "--short", "HEAD"])
    dirty = version([*git, "status", "--porcelain", "--", "src", "bench"]) not in ("", "not found")
    return "\n".join(
        [
            f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- commit: {commit}{' with uncommitted changes in src/ or bench/' if dirty else ''}",
            f"- nproc: {os.cpu_count()} ({cpu}); kernel: {platform.release()}",
            f"- load average before the run: {os.getloadavg()[0]:.2f}",
            f"- {version(['haproxy', '-v'])}; {version(['nginx', '-v'])}; {version(['wrk', '-v'])}",
            f"- {version(['curl', '--version'])}; Python {platform.python_version()}",
        ]
    )


def report(results: Results, command: str, env: str, duration: float, settings: argparse.Namespace) -> str:
    anomalies = "\n".join(f"- {line}" for line in results.anomalies) or "- none"
    return textwrap.dedent("""\
        # Data-plane benchmark: direct, HAProxy, anycastlb edge in each relay mode

        Command: `{command}` ({rounds} round(s) of {seconds:g}s per figure, contenders interleaved and rotated
        each round; medians over rounds; run took {duration:.0f}s).

        {env}

        Everything runs on one machine over 127.0.0.1: client (curl, wrk, a Python open-loop generator),
        proxy and one nginx ({workers} worker, `sendfile on`, 1 GiB file on /dev/shm) share the CPUs. `direct`
        goes to nginx's plain port; `haproxy` (`mode tcp`, `nbthread {threads}`, splice both ways) and the
        edge ({edge_workers} workers, `relay: copy`, `splice` or `auto`) send PROXY v2 to nginx's
        `proxy_protocol` port. RSS for `direct` is nginx's own;
        it is measured holding {idle} idle connections (RLIMIT_NOFILE hard limit {nofile}: a one-process
        proxy needs two fds per connection) and scaled to 10k. CPU figures are user + sys of the
        contender's whole process tree (`/proc/PID/stat`) during the bulk 1-stream run (per GB) and
        the `wrk` run (per connection); syscalls per connection come from a separate `strace -f -c`
        phase at {strace_rate} req/s.
        How each figure is taken: `bench/README.md` and the docstring of `bench/dataplane.py`.

        {summary}

        ## CPU and syscalls per connection (medians over rounds)

        {costs}

        Each figure is its own median, so user + sys need not add up to the total exactly.

        ## Raw values per round

        {raw}

        ## Anomalies

        {anomalies}

        ## Issue 12's targets

        {targets}
    """).format(
        command=command,
        rounds=settings.rounds,
        seconds=settings.seconds,
        duration=duration,
        env=env,
        workers=NGINX_WORKERS,
        threads=HAPROXY_THREADS,
        edge_workers=EDGE_WORKERS,
        strace_rate=STRACE_RATE,
        idle=f"{results.idle_count:,}",
        nofile=f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,}",
        summary=summary_tables(results),
        costs=costs_section(results),
        raw=raw_table(results),
        anomalies=anomalies,
        targets=targets_section(results),
    )
