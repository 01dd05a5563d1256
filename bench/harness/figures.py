"""One contender's figures in one round, in a fixed order, with the CPU each timed run cost.

The CPU figures come from the same runs as the throughput figures: :class:`CpuMeter` brackets the
bulk 1-stream run (CPU seconds per GB relayed) and the ``wrk`` run (µs per connection, user and sys
apart) around the contender's process tree, and separately around nginx's. For ``direct`` the
contender is nginx, so both are nginx's figure; for a proxy the backend's CPU is reported on its own
line and is not in the proxy's figure. The strace phase comes last (proxies only): it slows the
proxy, so it must not overlap a timed run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from .cpu import CpuMeter, CpuTimes
from .measure import bulk_transfer, connection_rate, idle_rss_mib, latency_ms
from .results import FigureSpec
from .servers import Contender, Nginx
from .syscalls import syscalls_per_connection

__all__ = [
    "CONNECTION_FIGURES",
    "ConnectionRun",
    "Figure",
    "connection_figures",
    "connection_run",
    "measure_contender",
]


class Figure(NamedTuple):
    """A figure's key (:data:`results.FIGURES`), its value, the errors of the run that produced it
    and, for ``syscalls``, the calls per connection of each syscall."""

    key: str
    value: float
    errors: list[str]
    detail: dict[str, float] | None = None


def _bulk(contender: Contender, streams: int, seconds: float) -> Iterator[Figure]:
    with CpuMeter(contender.pid) as meter:
        size, elapsed, errors = bulk_transfer(contender.port, streams, seconds)
    yield Figure(f"bulk{streams}", size * 8 / elapsed / 1e9, errors)
    if streams == 1:
        yield Figure("bulk_cpu", meter.used.total / (size / 1e9) if size else float("nan"), [])


class ConnectionRun(NamedTuple):
    """One ``wrk`` run with ``Connection: close``: its rate, the requests (= connections) served,
    its errors, and the CPU the contender's and nginx's process trees spent during it."""

    rate: float
    served: int
    errors: list[str]
    proxy: CpuTimes
    backend: CpuTimes


def connection_run(contender: Contender, nginx: Nginx, seconds: float) -> ConnectionRun:
    """Separate from :func:`connection_figures` so that a bench can read more counters around the
    same run (``bench/harness/fast_open_run.py``: the kernel's fast opens)."""
    assert nginx.proc is not None
    with CpuMeter(contender.pid) as meter, CpuMeter(nginx.proc.pid) as backend:
        rate, served, errors = connection_rate(contender.port, seconds)
    return ConnectionRun(rate, served, errors, meter.used, backend.used)


CONNECTION_FIGURES = (  # what :func:`connection_figures` yields, for a report's rows
    FigureSpec("cps", "new connections", "conn/s", True),
    FigureSpec("cpu", "CPU per connection, user + sys", "µs", False),
    FigureSpec("cpu_user", "… of which user", "µs", False),
    FigureSpec("cpu_sys", "… of which sys", "µs", False),
    FigureSpec("backend_cpu", "nginx CPU per connection (not in the above)", "µs", False),
)


def connection_figures(run: ConnectionRun) -> Iterator[Figure]:
    """conn/s, then (if anything was served) CPU µs per connection: total, user, sys, and nginx's."""
    yield Figure("cps", run.rate, run.errors)
    if run.served == 0:
        return
    yield Figure("cpu", run.proxy.total * 1e6 / run.served, [])
    yield Figure("cpu_user", run.proxy.user * 1e6 / run.served, [])
    yield Figure("cpu_sys", run.proxy.sys * 1e6 / run.served, [])
    yield Figure("backend_cpu", run.backend.total * 1e6 / run.served, [])


def measure_contender(
    contender: Contender, nginx: Nginx, seconds: float, idle_count: int, workdir: Path
) -> Iterator[Figure]:
    """Yields the figures as they are taken; the syscall phase only for proxies.

    RSS first, on the fresh process: memory that earlier traffic left behind (freed but kept by the
    allocator) would otherwise absorb part of the growth, by an amount that varies from run to run.
    """
    yield Figure("rss", *idle_rss_mib(contender, nginx, idle_count))
    yield from _bulk(contender, 1, seconds)
    yield from _bulk(contender, 4, seconds)
    yield from connection_figures(connection_run(contender, nginx, seconds))
    p50, p99, errors = latency_ms(contender.port, seconds)
    yield Figure("p50", p50, errors)
    yield Figure("p99", p99, [])
    if contender.name == "direct":
        return
    try:
        calls, errors = syscalls_per_connection(contender.pid, contender.port, workdir)
    except (RuntimeError, TimeoutError, OSError) as failure:
        yield Figure("syscalls", float("nan"), [f"syscall phase failed: {failure}"])
        return
    yield Figure("syscalls", calls.total, errors, calls.by_name)
    yield Figure("syscalls_idle", calls.background, [])  # subtracted from the above; not a FIGURES row
