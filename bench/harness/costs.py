"""What a connection and a gigabyte cost each contender: one line each, medians over rounds.

CPU per connection (user + sys, from the ``wrk`` run), the backend nginx's CPU in the same run (not
part of a proxy's figure), CPU per GB of the bulk 1-stream run, and syscalls per connection from
the strace phase with the most frequent syscalls (each one's median over rounds).
"""

from __future__ import annotations

import statistics

from .markdown import fmt, median
from .results import Results

__all__ = ["TOP_SYSCALLS", "cost_line", "costs_section", "top_syscalls"]

TOP_SYSCALLS = 8


def top_syscalls(results: Results, name: str) -> list[tuple[str, float]]:
    """Median calls per connection of each syscall over the rounds that have any, most frequent first."""
    rounds = [sample.syscalls for sample in results.samples[name] if sample.syscalls]
    names = {call for calls in rounds for call in calls}
    medians = {call: statistics.median(calls.get(call, 0.0) for calls in rounds) for call in names}
    return sorted(medians.items(), key=lambda item: -item[1])[:TOP_SYSCALLS]


def cost_line(results: Results, name: str) -> str:
    samples = results.samples[name]

    def value(key: str) -> str:
        return fmt(median(samples, key))

    line = (
        f"- `{name}`: CPU {value('cpu')} µs/conn (user {value('cpu_user')} + sys {value('cpu_sys')}),"
        f" nginx {value('backend_cpu')} µs/conn; bulk {value('bulk_cpu')} CPU s/GB"
    )
    if name == "direct":
        return line + " (the contender is nginx: both figures are nginx's; no strace phase)"
    top = ", ".join(f"{call} {calls:.2f}" for call, calls in top_syscalls(results, name))
    return (
        f"{line}; syscalls {value('syscalls')}/conn (idle {value('syscalls_idle')}/conn subtracted):"
        f" {top or '-'}"
    )


def costs_section(results: Results) -> str:
    return "\n".join(cost_line(results, name) for name in results.contenders)
