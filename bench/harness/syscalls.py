"""Syscalls per connection of a proxy, counted by ``strace -f -c`` attached to its whole process tree.

A phase of its own, after the timed figures (ptrace slows every syscall, so nothing else is measured
while strace is attached), in two windows of the same length:

1. **idle**: strace attached, no traffic: what the proxy does on its own (timers, health checks, the
   supervisor's loop);
2. **traffic**: strace attached while :data:`CONNECTIONS` ``Connection: close`` requests arrive at
   :data:`RATE` per second from the open-loop generator, so each connection is handled on its own
   (no batching of events across connections: the cost of one connection, not of a burst).

Per syscall, the traffic window's calls minus the idle window's (scaled to the same length, never
below zero), divided by the requests that succeeded. Each window attaches to every process of the
tree with ``-p`` (``-f`` adds threads and any process forked meanwhile) and waits until every thread
shows strace as its ``TracerPid`` before it starts the clock; SIGTERM makes strace detach and write
its summary (``-U calls,name``: two columns, easy to read back).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .measure import open_loop
from .probes import wait_until
from .processes import CHILDREN, children_of

__all__ = ["CONNECTIONS", "RATE", "SyscallFigures", "parse_summary", "syscalls_per_connection"]

CONNECTIONS = 500
RATE = 200  # requests/s: 2.5 s per window


@dataclass
class SyscallFigures:
    """Per connection: the total, every syscall, and the idle window's share that was subtracted."""

    total: float
    by_name: dict[str, float] = field(default_factory=dict)
    background: float = 0.0


def parse_summary(text: str) -> dict[str, int]:
    """Calls per syscall from ``strace -c -U calls,name`` output (the ``total`` line left out)."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if (match := re.fullmatch(r"\s*(\d+)\s+(\w+)\s*", line)) and match.group(2) != "total":
            counts[match.group(2)] = int(match.group(1))
    return counts


def _traced(tracer: int, pids: set[int]) -> bool:
    """Every thread of every pid has ``tracer`` as its TracerPid (or is gone)."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                status = (task / "status").read_text()
            except OSError:
                continue
            match = re.search(r"^TracerPid:\s*(\d+)", status, re.MULTILINE)
            if match is None or int(match.group(1)) != tracer:
                return False
    return True


def _strace_window(
    root: int, workdir: Path, name: str, traffic_port: int | None
) -> tuple[dict[str, int], float, int]:
    """Calls per syscall, the window's seconds, and the requests that succeeded (0 when idle)."""
    pids = {root} | children_of(root, recursive=True)
    out = workdir / f"strace-{name}.txt"
    argv = ["strace", "-f", "-c", "-U", "calls,name", "-S", "calls", "-o", str(out)]
    for pid in sorted(pids):
        argv += ["-p", str(pid)]
    proc = CHILDREN.start_server(argv, workdir / f"strace-{name}.log")
    try:
        wait_until(lambda: CHILDREN.has_exited(proc) or _traced(proc.pid, pids), "strace attached", 10)
        if CHILDREN.has_exited(proc):
            raise RuntimeError(f"strace exited: {(workdir / f'strace-{name}.log').read_text()[-500:]}")
        started = time.monotonic()
        served = 0
        if traffic_port is None:
            time.sleep(CONNECTIONS / RATE)
        else:
            outcomes, _lag = open_loop(traffic_port, RATE, CONNECTIONS / RATE)
            served = sum(isinstance(outcome, float) for outcome in outcomes)
        seconds = time.monotonic() - started
    finally:
        CHILDREN.stop(proc)  # SIGTERM: strace detaches and writes the summary
    return parse_summary(out.read_text() if out.exists() else ""), seconds, served


def syscalls_per_connection(root: int, port: int, workdir: Path) -> tuple[SyscallFigures, list[str]]:
    """The figures for the proxy whose process tree starts at ``root`` and which listens on ``port``."""
    idle, idle_seconds, _ = _strace_window(root, workdir, "idle", None)
    busy, busy_seconds, served = _strace_window(root, workdir, "traffic", port)
    errors = []
    if served < CONNECTIONS:
        errors.append(f"syscall phase: {CONNECTIONS - served} of {CONNECTIONS} requests failed")
    if not busy:
        errors.append("syscall phase: strace wrote no summary")
    scale = busy_seconds / idle_seconds if idle_seconds > 0 else 0.0
    per_connection = {
        name: max(0.0, calls - idle.get(name, 0) * scale) / max(1, served) for name, calls in busy.items()
    }
    background = sum(min(calls, idle.get(name, 0) * scale) for name, calls in busy.items()) / max(1, served)
    figures = SyscallFigures(sum(per_connection.values()), per_connection, background)
    return figures, errors
