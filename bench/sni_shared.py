"""SNI-sharing benchmark: what routing by SNI costs a shared port, and that a plain one pays nothing.

Issue 15 (part 3) lets several listeners share one VIP:port; the core then peeks every connection's
first bytes and routes it to a member. Two questions, one run:

- **a plain listener**, on this build (``edge``) against the same listener on a baseline build of
  the edge (``edge-base``: ``--baseline-src``, the ``src/`` of e.g. ``main`` built in place): the
  per-connection path of a listener that shares nothing must not have become dearer;
- **a shared port** (``edge-shared``: three listeners naming hostnames on one port, the last the
  ``sni_default``) against ``edge``: ``wrk`` speaks plain HTTP, so each connection takes the peek (not
  TLS: decided on the first byte), the route (no name: the default) and the move to the member's
  snapshot, i.e. the whole extra work of a shared port except matching a name in the table.

Per contender, fresh for each round (rounds interleaved, order rotated), the figures of
``bench/dataplane.py``'s harness (``bench/harness/``): conn/s and CPU µs per connection (user + sys of
the edge's whole process tree ÷ requests) from one ``wrk -t1 -c50 -H 'Connection: close'`` run, nginx's
CPU on a line of its own. The report gives medians, ratios to ``edge``, and the per-round ratios.
Needs (Debian) ``nginx-light wrk``; runs on 127.0.0.1, no root needed.

    mkdir /tmp/edge-base && git archive main | tar -x -C /tmp/edge-base
    (cd /tmp/edge-base && python3 setup.py -q build_ext --inplace)
    python3 bench/sni_shared.py --baseline-src /tmp/edge-base/src --rounds 5 --seconds 5
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # ``anycastlb``, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for ``bench.harness``

from bench.harness.figures import CONNECTION_FIGURES, connection_figures, connection_run
from bench.harness.markdown import fmt, markdown_table, median, ratio
from bench.harness.processes import start_bench
from bench.harness.results import EDGE_WORKERS, Results
from bench.harness.rounds import Rounds
from bench.harness.servers import Contender, Nginx, start_edge
from bench.harness.session import Finished, publish, run_session

FIGURES = CONNECTION_FIGURES
SHARED = {"hostnames": ["bench.example.com", "*.bench.example.com"], "sni_default": True}
OTHERS = ("shop.example.com", "*.shop.example.com", "blog.example.org")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all contenders (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each timed run (default 5)")
    parser.add_argument(
        "--baseline-src", type=Path, default=None, help="src/ of a baseline build (edge-base)"
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the markdown report here")
    return parser.parse_args(argv)


def contenders(settings: argparse.Namespace) -> tuple[str, ...]:
    return ("edge", "edge-shared", *(("edge-base",) if settings.baseline_src else ()))


def start(name: str, workdir: Path, nginx: Nginx, settings: argparse.Namespace) -> Contender:
    if name == "edge-base":
        return start_edge(workdir, nginx, EDGE_WORKERS, name=name, src=settings.baseline_src)
    if name == "edge":
        return start_edge(workdir, nginx, EDGE_WORKERS, name=name)
    contender = start_edge(workdir, nginx, EDGE_WORKERS, SHARED, name=name)
    _add_sharers(workdir / f"{name}.yaml", contender)
    return contender


def _add_sharers(config_path: Path, contender: Contender) -> None:
    """Two more listeners on the same port (their own names, no backends reached by wrk): the route
    table the default's connections are looked up in then holds 5 names of 3 members. Applied by a
    reload (SIGHUP), waited for in the log."""
    config = yaml.safe_load(config_path.read_text())
    bench = config["listeners"][0]
    for index in range(2):
        sharer = dict(bench, name=f"other-{index}", hostnames=list(OTHERS[index * 2 : index * 2 + 2]))
        sharer.pop("sni_default", None)
        config["listeners"].append(sharer)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert contender.proc is not None and contender.log is not None
    log = contender.log
    before = log.read_text(errors="replace").count("config_applied")
    contender.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while log.read_text(errors="replace").count("config_applied") < before + EDGE_WORKERS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{contender.name}: the reload adding the sharers was not applied")
        time.sleep(0.05)


def run(settings: argparse.Namespace, workdir: Path) -> Results:
    (workdir / "unused-big-file").write_bytes(b"")
    nginx = Nginx(workdir, workdir / "unused-big-file")
    return Rounds(
        Results(contenders(settings)),
        nginx,
        lambda name: start(name, workdir, nginx, settings),
        lambda contender: connection_figures(connection_run(contender, nginx, settings.seconds)),
    ).run(settings.rounds)


def _per_round(results: Results, name: str, key: str) -> str:
    ratios = [
        sample.values[key] / reference.values[key]
        for sample, reference in zip(results.samples[name], results.samples["edge"], strict=False)
        if sample.values.get(key) and reference.values.get(key)
    ]
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.3f} ({', '.join(f'{value:.3f}' for value in ratios)})"


def report(results: Results, command: str, env: str, duration: float, settings: argparse.Namespace) -> str:
    names = results.contenders
    medians = {
        name: {spec.key: median(results.samples[name], spec.key) for spec in FIGURES} for name in names
    }
    rows = [
        [
            f"{spec.title} ({spec.unit})",
            *(fmt(medians[name][spec.key]) for name in names),
            *(ratio(medians[name][spec.key], medians["edge"][spec.key]) for name in names[1:]),
        ]
        for spec in FIGURES
    ]
    summary = markdown_table(
        ["figure (median over rounds)", *names, *(f"{name} ÷ edge" for name in names[1:])], rows
    )
    paired = markdown_table(
        ["figure", *(f"{name} ÷ edge: median (each round)" for name in names[1:])],
        [
            [f"{spec.title} ({spec.unit})", *(_per_round(results, name, spec.key) for name in names[1:])]
            for spec in FIGURES
        ],
    )
    anomalies = "\n".join(f"- {line}" for line in results.anomalies) or "- none"
    return (
        "# SNI sharing benchmark: a plain listener (this build and a baseline) and a shared port\n\n"
        f"Command: `{command}` ({settings.rounds} round(s) of {settings.seconds:g}s, contenders "
        f"interleaved and rotated; medians over rounds; run took {duration:.0f}s).\n\n{env}\n\n"
        f"{summary}\n\nRound by round (each contender ÷ `edge` of the same round):\n\n{paired}\n\n"
        f"## Anomalies\n\n{anomalies}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    settings = parse_args(arguments)
    command = start_bench("bench/sni_shared.py", arguments)
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        print(f"missing: {' '.join(missing)}; apt-get install -y nginx-light wrk", file=sys.stderr)
        return 2

    def finish(done: Finished[Results]) -> None:
        publish(report(done.result, command, done.env, done.duration, settings), settings.output)

    return run_session(lambda session: run(settings, session.temp_dir()), finish)


if __name__ == "__main__":
    sys.exit(main())
