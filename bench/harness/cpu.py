"""CPU time of a process tree, user and system apart, from ``/proc/PID/stat``.

A snapshot sums, over the root and every descendant alive at that moment, ``utime + cutime`` and
``stime + cstime`` (fields 14-17: the process's own time, all its threads included, plus the time of
the children it has reaped). The difference of two snapshots is the tree's CPU between them, also
for a process that exits in between: it leaves the sum and its whole lifetime shows up in its
parent's ``cutime``/``cstime`` when the parent reaps it, so only the part after the first snapshot
is added. What is lost: a process that exits unreaped by a member of the tree (reparented to init).
For the contenders here the workers live as long as the proxy, so this never happens in a run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .processes import children_of

__all__ = ["CpuMeter", "CpuTimes", "tree_cpu"]

_TICK = os.sysconf("SC_CLK_TCK")  # stat's unit: clock ticks (100 per second on Linux)


@dataclass(frozen=True)
class CpuTimes:
    """Seconds of CPU in user and in kernel mode."""

    user: float = 0.0
    sys: float = 0.0

    @property
    def total(self) -> float:
        return self.user + self.sys

    def __add__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user + other.user, self.sys + other.sys)

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user - other.user, self.sys - other.sys)


def process_cpu(pid: int) -> CpuTimes:
    """One process (all its threads) plus its reaped children; zero if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return CpuTimes()
    fields = stat.rsplit(")", 1)[1].split()  # the name, in parentheses, may contain spaces
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])  # fields 14-17 of proc(5)
    return CpuTimes((utime + cutime) / _TICK, (stime + cstime) / _TICK)


def tree_cpu(root: int) -> CpuTimes:
    """``root`` and every descendant alive now (see the module docstring for exited ones)."""
    total = CpuTimes()
    for pid in {root} | children_of(root, recursive=True):
        total += process_cpu(pid)
    return total


class CpuMeter:
    """``with CpuMeter(pid) as meter: ...``, then ``meter.used``: the tree's CPU inside the block."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.used = CpuTimes()
        self._start = CpuTimes()

    def __enter__(self) -> CpuMeter:
        self._start = tree_cpu(self.root)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.used = tree_cpu(self.root) - self._start
