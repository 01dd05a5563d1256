"""One run: every round starts each contender fresh, takes its figures, stops it and notes anomalies."""

from __future__ import annotations

import argparse
import itertools
import re
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .figures import Figure, measure_contender
from .measure import idle_connection_count
from .processes import CHILDREN
from .results import EDGE_WORKERS, HAPROXY_THREADS, Results, Sample
from .servers import Contender, Nginx, make_big_file, start_edge, start_haproxy


@dataclass
class Bench:
    """What every round shares: the temp dir, the one nginx, the run length and the results."""

    workdir: Path
    nginx: Nginx
    seconds: float
    results: Results


def start_contender(bench: Bench, name: str) -> Contender:
    if name == "direct":
        assert bench.nginx.proc is not None
        return Contender("direct", bench.nginx.plain_port, bench.nginx.proc.pid, None, None)
    if name == "haproxy":
        maxconn = bench.results.idle_count + 200
        return start_haproxy(bench.workdir, bench.nginx, maxconn=maxconn, threads=HAPROXY_THREADS)
    relay = name.removeprefix("edge-")  # edge-copy, edge-splice, edge-auto
    return start_edge(bench.workdir, bench.nginx, workers=EDGE_WORKERS, name=name, relay=relay)


def record(sample: Sample, name: str, figure: Figure, round_no: int, results: Results) -> None:
    """Keep the figure, print it as it comes, and note the errors of the run that produced it."""
    sample.values[figure.key] = figure.value
    print(f"  {name:11} {figure.key:13} {figure.value:10.3f}", flush=True)
    if figure.detail is not None:
        sample.syscalls = figure.detail
        top = sorted(figure.detail.items(), key=lambda item: -item[1])[:8]
        print(f"  {name:11} {'per conn':13} " + ", ".join(f"{n} {v:.2f}" for n, v in top), flush=True)
    for error in figure.errors:
        sample.flags.add(figure.key)
        results.note(round_no, name, f"{figure.key}: {error}")


def stop_contender(contender: Contender, round_no: int, results: Results) -> None:
    if contender.proc is None:
        return
    early = CHILDREN.has_exited(contender.proc)
    code = CHILDREN.stop(contender.proc)
    if early:
        results.note(round_no, contender.name, f"exited before it was stopped, code {code}")
    elif code not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
        results.note(round_no, contender.name, f"exit code {code} after SIGTERM")
    assert contender.log is not None
    for line in bad_log_lines(contender.log.read_text(errors="replace").splitlines())[:5]:
        results.note(round_no, contender.name, f"log: {line}")
    contender.log.write_text("")  # a fresh log for the next round's readiness check


def bad_log_lines(lines: list[str]) -> list[str]:
    """Errors and warnings; a traceback with its frame lines and the exception it ends with."""
    bad = []
    for index, line in enumerate(lines):
        if not re.search(r" (ERROR|WARNING|CRITICAL) |Traceback|\[ALERT\]|\[WARNING\]", line):
            continue
        if not line.startswith("Traceback"):
            bad.append(line.strip())
            continue
        body = list(itertools.takewhile(lambda text: text.startswith(" "), lines[index + 1 :]))
        end = lines[index + 1 + len(body)] if index + 1 + len(body) < len(lines) else "(log ends)"
        frames = [text.strip() for text in body if text.strip().startswith("File ")]
        bad.append(f"{line.strip()} {' / '.join(frames[-3:])} → {end.strip()}")
    return bad


def rotated(contenders: tuple[str, ...], round_no: int) -> list[str]:
    """Round 1 runs the contenders in the given order, round 2 starts with the second, and so on."""
    shift = (round_no - 1) % len(contenders)
    return list(contenders[shift:] + contenders[:shift])


@dataclass
class Rounds:
    """Rounds over ``results.contenders`` against the one ``nginx``: each contender started fresh by
    ``start``, its figures taken by ``measure``, then stopped. Shared by the data-plane, Fast Open
    and SNI benches, which differ only in their contenders and figures."""

    results: Results
    nginx: Nginx
    start: Callable[[str], Contender]
    measure: Callable[[Contender], Iterable[Figure]]

    def run(self, rounds: int) -> Results:
        """Starts nginx, runs the rounds (order rotated each round) and, however they end, stops it."""
        self.nginx.start()
        try:
            for round_no in range(1, rounds + 1):
                order = rotated(self.results.contenders, round_no)
                print(f"round {round_no}/{rounds}: {', '.join(order)}", flush=True)
                for name in order:
                    self._contender(name, round_no)
        finally:
            self.nginx.stop()
        return self.results

    def _contender(self, name: str, round_no: int) -> None:
        """A start that fails is noted and leaves an empty sample, so the rounds stay aligned."""
        sample = Sample()
        self.results.samples[name].append(sample)
        self.nginx.renew_workers()  # each contender meets nginx in the same state
        try:
            contender = self.start(name)
        except RuntimeError as failure:
            self.results.note(round_no, name, f"did not start: {failure}")
            return
        try:
            for figure in self.measure(contender):
                record(sample, name, figure, round_no, self.results)
        finally:
            stop_contender(contender, round_no, self.results)


def run(settings: argparse.Namespace, workdir: Path, shm: Path) -> Results:
    """``bench/dataplane.py``'s run: every figure of :func:`measure_contender` per contender."""
    results = Results(settings.contenders, idle_count=idle_connection_count())
    bench = Bench(workdir, Nginx(workdir, make_big_file(shm)), settings.seconds, results)

    def measure(contender: Contender) -> Iterable[Figure]:
        return measure_contender(contender, bench.nginx, bench.seconds, results.idle_count, workdir)

    return Rounds(results, bench.nginx, lambda name: start_contender(bench, name), measure).run(
        settings.rounds
    )
