"""One Fast Open run: HAProxy and the edge, each with and without TCP Fast Open towards nginx.

The contenders, the figures of one contender in one round, the rounds and the markdown report of
``bench/fast_open.py``. Everything here runs inside the benchmark's network namespace (that script
puts it there), so the kernel counters read from ``/proc/net/netstat`` are this run's alone.
"""

from __future__ import annotations

import argparse
import statistics
import textwrap
from collections.abc import Iterator
from pathlib import Path

from .figures import CONNECTION_FIGURES, Figure, connection_figures, connection_run
from .markdown import fmt, markdown_table, median, ratio
from .measure import latency_ms
from .results import EDGE_WORKERS, HAPROXY_THREADS, LATENCY_RATE, FigureSpec, Results
from .rounds import Rounds
from .servers import Contender, Nginx, start_edge, start_haproxy

__all__ = ["CONTENDERS", "FIGURES", "paired_ratios", "report", "run", "tcp_ext_counters"]

CONTENDERS = ("haproxy", "haproxy-wait", "haproxy-tfo", "edge", "edge-tfo")
# HAProxy connects to the server at accept in mode tcp, with nothing to send yet, and it uses TFO
# only for a connect that has data to send (backend.c: CONNECT_HAS_DATA). So "-wait" and "-tfo"
# wait for the client's first bytes first, as the edge always does: "-wait" isolates the cost
# of waiting, "-tfo" adds ``tfo`` to the server line.
WAIT_FOR_DATA = "tcp-request inspect-delay 1s\ntcp-request content accept if { req.len gt 0 }"
FASTOPEN_QUEUE = 4096  # nginx's fastopen=N: SYN-data connections it holds before falling back to 3WHS

FIGURES = (
    *CONNECTION_FIGURES,
    FigureSpec("tfo", "backend connections that were fast opens", "share", True),
    FigureSpec("p50", f"latency p50 @ {LATENCY_RATE}/s", "ms", False),
    FigureSpec("p99", f"latency p99 @ {LATENCY_RATE}/s", "ms", False),
)


def tcp_ext_counters() -> dict[str, int]:
    """This network namespace's ``TcpExt`` counters (``nstat -az`` reads the same file)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    counters: dict[str, int] = {}
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            counters.update(zip(names.split()[1:], map(int, values.split()[1:]), strict=True))
    return counters


def start(name: str, workdir: Path, nginx: Nginx) -> Contender:
    fast_open = name.endswith("-tfo")
    if name.startswith("haproxy"):
        return start_haproxy(
            workdir,
            nginx,
            maxconn=4_000,  # wrk holds 50; fds for 4,000 fit any RLIMIT_NOFILE the harness meets
            frontend=WAIT_FOR_DATA if name != "haproxy" else "",
            name=name,
            threads=HAPROXY_THREADS,
            server_options="tfo" if fast_open else "",
        )
    return start_edge(workdir, nginx, EDGE_WORKERS, {"backend_fast_open": fast_open}, name=name)


def measure(contender: Contender, nginx: Nginx, seconds: float) -> Iterator[Figure]:
    """conn/s and CPU per connection from one ``wrk`` run (``Connection: close``: every request a
    new client connection and a new nginx connection), with the fast opens the kernel counted in
    the same run; then p50/p99 from the open-loop client at a fixed rate."""
    before = tcp_ext_counters()
    wrk = connection_run(contender, nginx, seconds)
    fast_opens = tcp_ext_counters().get("TCPFastOpenActive", 0) - before.get("TCPFastOpenActive", 0)
    yield from connection_figures(wrk)
    if wrk.served:
        yield Figure("tfo", fast_opens / wrk.served, [])
    p50, p99, errors = latency_ms(contender.port, seconds)
    yield Figure("p50", p50, errors)
    yield Figure("p99", p99, [])


def run(settings: argparse.Namespace, workdir: Path) -> Results:
    (workdir / "unused-big-file").write_bytes(b"")
    nginx = Nginx(workdir, workdir / "unused-big-file", fastopen=FASTOPEN_QUEUE)
    return Rounds(
        Results(CONTENDERS),
        nginx,
        lambda name: start(name, workdir, nginx),
        lambda contender: measure(contender, nginx, settings.seconds),
    ).run(settings.rounds)


def _medians(results: Results) -> dict[str, dict[str, float | None]]:
    return {name: {f.key: median(results.samples[name], f.key) for f in FIGURES} for name in CONTENDERS}


def summary_table(results: Results) -> str:
    """Medians, then each contender ÷ HAProxy without tfo, and Fast Open on ÷ off for each proxy."""
    medians = _medians(results)
    rows = []
    for spec in FIGURES:
        values = [medians[name][spec.key] for name in CONTENDERS]
        rows.append(
            [
                f"{spec.title} ({spec.unit}, {'higher' if spec.higher_is_better else 'lower'} is better)",
                *(fmt(value) for value in values),
                *(ratio(medians[name][spec.key], medians["haproxy"][spec.key]) for name in CONTENDERS[1:]),
                ratio(medians["haproxy-tfo"][spec.key], medians["haproxy-wait"][spec.key]),
                ratio(medians["edge-tfo"][spec.key], medians["edge"][spec.key]),
            ]
        )
    header = [
        "figure (median over rounds)",
        *CONTENDERS,
        *(f"{name} ÷ haproxy" for name in CONTENDERS[1:]),
        "haproxy: tfo ÷ wait",
        "edge: tfo ÷ off",
    ]
    return markdown_table(header, rows)


def paired_ratios(results: Results) -> str:
    """Fast Open on ÷ off within each round (the two ran minutes apart at most), and the median:
    on a shared machine this moves less than a ratio of medians taken from different minutes."""
    pairs = (("edge-tfo", "edge"), ("haproxy-tfo", "haproxy-wait"))
    rows = []
    for spec in FIGURES:
        if spec.key == "tfo":
            continue
        cells = []
        for on, off in pairs:
            ratios = [
                on_sample.values[spec.key] / off_sample.values[spec.key]
                for on_sample, off_sample in zip(results.samples[on], results.samples[off], strict=False)
                if on_sample.values.get(spec.key) and off_sample.values.get(spec.key)
            ]
            per_round = ", ".join(f"{value:.2f}" for value in ratios) or "-"
            cells.append(f"{statistics.median(ratios):.2f}x ({per_round})" if ratios else "-")
        rows.append([f"{spec.title} ({spec.unit})", *cells])
    header = ["figure", *(f"{on} ÷ {off}: median (each round)" for on, off in pairs)]
    return markdown_table(header, rows)


def raw_table(results: Results) -> str:
    rows = []
    for name in CONTENDERS:
        for round_no, sample in enumerate(results.samples[name], 1):
            cells = [fmt(sample.values.get(f.key)) + (" ⚠" if f.key in sample.flags else "") for f in FIGURES]
            rows.append([name, str(round_no), *cells])
    header = ["contender", "round", *(f"{f.key} ({f.unit})" for f in FIGURES)]
    return markdown_table(header, rows) + "\n\n⚠ = that run reported errors (see anomalies)."


def report(results: Results, command: str, env: str, duration: float, settings: argparse.Namespace) -> str:
    anomalies = "\n".join(f"- {line}" for line in results.anomalies) or "- none"
    return textwrap.dedent("""\
        # Fast Open benchmark: HAProxy and the edge, without and with TCP Fast Open towards nginx

        Command: `{command}` ({rounds} round(s) of {seconds:g}s per figure, contenders interleaved and
        rotated each round; medians over rounds; run took {duration:.0f}s).

        {env}

        All of it runs in one network namespace with `net.ipv4.tcp_fastopen=3` over 127.0.0.1: the
        clients (wrk, a Python open-loop generator), the proxy and one nginx (1 worker) whose PROXY
        port listens with `fastopen={queue}`. `haproxy` is `mode tcp`, `nbthread {threads}`, splice,
        `send-proxy-v2`, as in `bench/dataplane.py`: it connects to nginx at accept. HAProxy sends a
        SYN with data only when it has data when it connects, so `haproxy-wait` first waits for the
        client's first bytes (`tcp-request inspect-delay` + `content accept if {{ req.len gt 0 }}`), as
        the edge always does, and `haproxy-tfo` is `haproxy-wait` with `tfo` on its server line (its
        config warning about `retry-on` is expected: `retry-on` is HTTP-only, so HAProxy cannot retry
        a failed fast open in `mode tcp`). `edge` is the edge with {workers} workers, PROXY v2,
        `backend_fast_open: false`; `edge-tfo` the same with `true`.
        conn/s and CPU come from one `wrk -t1 -c50 -H 'Connection: close'` run each (every request a
        new client connection and a new nginx connection); CPU is user + sys of the contender's whole
        process tree (`/proc/PID/stat`) ÷ requests served. "Fast opens" are the namespace's
        `TcpExt.TCPFastOpenActive` (SYNs whose data nginx acknowledged) during that run ÷ requests.
        Latency: an open-loop client at {rate} req/s, each sample connect + `GET /small` + answer.

        {summary}

        Ratios: the contender's median ÷ the reference's; for CPU and latency below 1 is better.

        ## Fast Open on ÷ off, round by round

        {paired}

        ## Raw values per round

        {raw}

        ## Anomalies

        {anomalies}
    """).format(
        command=command,
        rounds=settings.rounds,
        seconds=settings.seconds,
        duration=duration,
        env=env,
        queue=FASTOPEN_QUEUE,
        threads=HAPROXY_THREADS,
        workers=EDGE_WORKERS,
        rate=LATENCY_RATE,
        summary=summary_table(results),
        paired=paired_ratios(results),
        raw=raw_table(results),
        anomalies=anomalies,
    )
