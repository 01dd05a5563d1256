"""One failover run: three nodes, every contender in front of them, faults interleaved round by round.

Round r (1..faults) does every fault kind once for every contender, contenders in an order rotated
each round, all on node ``(r - 1 + kind index) % 3``, so every contender meets the same faults on
the same nodes under the same background noise. One fault, for one contender:

1. the client loop starts (only against this contender) and runs :data:`PREROLL` seconds;
2. t0: the fault (:func:`~.failover_nodes.inject`; a flap takes 1.5 s of it);
3. the loop keeps going until t0 + the contender's observation time (+ the flap), then stops
   starting requests and waits for those in flight, so a request sent to a hung node fails or
   succeeds while the fault is still on;
4. the node is restored, and the run waits until *every* contender logs it up again (the others
   saw the fault through their own checks), so each fault starts from three healthy nodes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from .failover_client import Attempt, OpenLoop
from .failover_contenders import OBSERVE, Contender, StateChange, start_contender
from .failover_nodes import FLAP_SPAN, Node, inject, restore
from .processes import CHILDREN

PREROLL = 0.5  # seconds of steady traffic before t0
UP_TIMEOUT = 15.0  # seconds for every contender to see a restored node up again
NODES = 3


@dataclass
class Fault:
    """What one fault on one contender gave: every request of its window and the node's DOWN/UP lines."""

    contender: str
    kind: str
    number: int
    node: str
    t0: float
    attempts: list[Attempt]
    changes: list[StateChange]
    lag: float  # how far the client fell behind its schedule, seconds


@dataclass
class FailoverRun:
    settings: argparse.Namespace
    faults: list[Fault] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    warmup: dict[str, str] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.anomalies.append(text)
        print(f"  ! {text}", flush=True)


def rotated(names: tuple[str, ...], round_no: int) -> list[str]:
    shift = (round_no - 1) % len(names)
    return list(names[shift:] + names[:shift])


def wait_all_up(contenders: dict[str, Contender], nodes: list[Node], run: FailoverRun, what: str) -> None:
    deadline = time.monotonic() + UP_TIMEOUT
    while True:
        down = [f"{c.name}:{n.name}" for c in contenders.values() for n in nodes if not c.is_up(n.name)]
        if not down:
            return
        if time.monotonic() > deadline:
            run.note(f"{what}: still down after {UP_TIMEOUT:.0f}s: {', '.join(down)}")
            return
        time.sleep(0.02)


def one_fault(run: FailoverRun, contender: Contender, kind: str, node: Node, number: int) -> Fault:
    settings = run.settings
    loop = OpenLoop(contender.port, settings.pace_ms / 1000, settings.timeout).start()
    time.sleep(PREROLL)
    t0 = inject(kind, node)
    window = OBSERVE[contender.name] + (FLAP_SPAN if kind == "flap" else 0.0)
    time.sleep(max(0.0, t0 + window - time.time()))
    attempts = loop.finish()
    restore(kind, node)
    return Fault(contender.name, kind, number, node.name, t0, attempts, [], loop.max_lag)


def warm_up(run: FailoverRun, contender: Contender, nodes: list[Node]) -> None:
    """A second of traffic before the first fault: every node answers, nothing fails."""
    loop = OpenLoop(contender.port, run.settings.pace_ms / 1000, run.settings.timeout).start()
    time.sleep(1.0)
    attempts = loop.finish()
    answered = {a.node for a in attempts if a.node}
    failed = [a for a in attempts if a.node is None]
    shares = ", ".join(
        f"{n.name} {sum(a.node == n.name for a in attempts) / max(1, len(attempts)):.0%}" for n in nodes
    )
    run.warmup[contender.name] = f"{len(attempts)} requests, {len(failed)} failed; {shares}"
    if failed or answered != {n.name for n in nodes}:
        run.note(f"warm-up {contender.name}: {run.warmup[contender.name]}; {failed[:1]}")


def summary_line(fault: Fault) -> str:
    new = [a for a in fault.attempts if a.started >= fault.t0]
    failed = [a for a in new if a.node is None]
    down = next((c for c in fault.changes if not c.up), None)
    ejected = f"ejected {1000 * (down.at - fault.t0):5.0f} ms" if down else "not ejected    "
    last = f", last failed +{1000 * (failed[-1].started - fault.t0):.0f} ms" if failed else ""
    return (
        f"  {fault.number:3} {fault.kind:5} {fault.contender:12} {fault.node}: {ejected}, "
        f"{len(failed)} of {len(new)} new failed{last}"
    )


def run(settings: argparse.Namespace, workdir: Path) -> FailoverRun:
    result = FailoverRun(settings)
    nodes = [Node(workdir, f"n{index}").start() for index in range(NODES)]
    contenders: dict[str, Contender] = {}
    try:
        for name in settings.contenders:
            contenders[name] = start_contender(name, workdir, nodes)
        wait_all_up(contenders, nodes, result, "start")
        for contender in contenders.values():
            warm_up(result, contender, nodes)
        for number in range(1, settings.faults + 1):
            print(f"round {number}/{settings.faults}", flush=True)
            for kind_index, kind in enumerate(settings.kinds):
                node = nodes[(number - 1 + kind_index) % NODES]
                for name in rotated(settings.contenders, number):
                    contender = contenders[name]
                    if not contender.alive():
                        continue
                    fault = one_fault(result, contender, kind, node, number)
                    wait_all_up(contenders, nodes, result, f"{kind} #{number} {name} on {node.name}")
                    fault.changes = contender.changes_of(node.name, since=fault.t0)
                    result.faults.append(fault)
                    print(summary_line(fault), flush=True)
                    if fault.lag > 0.05:
                        result.note(f"{kind} #{number} {name}: client fell {fault.lag * 1000:.0f} ms behind")
                    if not contender.alive():
                        result.note(f"{name} exited during {kind} #{number}: code {contender.proc.poll()}")
    finally:
        for contender in contenders.values():
            for line in contender.trouble()[:5]:
                result.note(f"{contender.name} log: {line}")
            CHILDREN.stop(contender.proc)
        for node in nodes:
            node.stop()
    return result
