"""Failover benchmark: how fast HAProxy and the edge eject a failed node, and how many requests fail.

Three lab nginx nodes (PROXY protocol) sit behind every contender at once: ``haproxy`` (HTTP check
``inter 100ms fall 2 rise 2``, ``timeout check 100ms``, ``option redispatch``, ``retries 3``),
``edge-fast`` (HTTP check, interval 100ms, timeout 100ms, fall 2, rise 2) and ``edge-default``
(HTTP check with the default timing: 500ms / 250ms / 2 / 2). For every contender and fault kind
(``kill``: SIGKILL; ``hang``: SIGSTOP; ``close``: nginx's graceful SIGQUIT; ``flap``: killed and
restarted 3 times, 300 ms apart) the run repeats ``--faults`` faults, rotating the node and
interleaving the contenders round by round so that noise hits all alike. During each fault a paced
open-loop client opens a new connection every few ms from 100 loopback source addresses, each with
a 2 s timeout: longer than HAProxy's 1 s turn-around before it retries a refused connect (``timeout
connect 1s``), so such a request counts as slow, not failed, as it would for a patient client.

Figures per contender x kind (see ``bench/harness/failover_report.py``): time from the fault to the
contender's DOWN log line (p50/p99/max); new requests (started after the fault) that failed, and
the time from the fault to the start of the last of them; requests in flight that were lost.
Targets from the issue: after a hang no new request fails later than 250 ms (p99), no new
connection fails on kill/close/flap, and both at least as good as HAProxy in the same run.

This file is the command line; the parts are ``bench/harness/failover_*.py``: ``nodes`` (nginx and
the faults), ``contenders`` (HAProxy and edge configs, their logs), ``client``, ``run``, ``report``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # ``anycastlb``, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for ``bench.harness``

from bench.harness.failover_contenders import CONTENDERS
from bench.harness.failover_nodes import KINDS
from bench.harness.failover_report import console, cpu_pressure, report
from bench.harness.failover_run import FailoverRun, run
from bench.harness.processes import start_bench
from bench.harness.servers import REPO
from bench.harness.session import Finished, run_session, save


def _subset(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if unknown := [name for name in names if name not in allowed]:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from {','.join(allowed)}")
    if not names:
        raise argparse.ArgumentTypeError(f"no {what} given")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--faults", type=int, default=20, help="faults per contender and kind (default 20)")
    parser.add_argument(
        "--kinds",
        type=lambda text: _subset(text, KINDS, "fault kinds"),
        default=KINDS,
        help=f"comma-separated subset of {','.join(KINDS)} (default: all)",
    )
    parser.add_argument(
        "--contenders",
        type=lambda text: _subset(text, CONTENDERS, "contenders"),
        default=CONTENDERS,
        help=f"comma-separated subset of {','.join(CONTENDERS)} (default: all)",
    )
    parser.add_argument(
        "--pace-ms", type=float, default=3.0, help="one new connection every N ms (default 3)"
    )
    parser.add_argument(
        "--timeout", type=float, default=2.0, help="client timeout per request, s (default 2)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 3 faults each, no report unless --output"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="markdown report (default docs/benchmarks-failover.md; --quick writes none)",
    )
    settings = parser.parse_args(argv)
    if settings.quick:
        settings.faults = 3
    elif settings.output is None:
        settings.output = REPO / "docs" / "benchmarks-failover.md"
    if settings.faults < 1:
        parser.error("--faults must be at least 1")
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    missing = [tool for tool in ("nginx", "haproxy") if shutil.which(tool) is None]
    if missing:
        print(f"missing: {' '.join(missing)}; apt-get install -y nginx-light haproxy", file=sys.stderr)
        return 2
    command = start_bench("bench/failover.py", argv)
    before = cpu_pressure()

    def finish(done: Finished[FailoverRun]) -> None:
        print("\n" + console(done.result) + f"\n\nrun took {done.duration:.0f}s")
        if settings.output is not None:
            pressure = (before, cpu_pressure())
            save(report(done.result, command, done.env, pressure, done.duration), settings.output)

    return run_session(lambda session: run(settings, session.temp_dir()), finish)


if __name__ == "__main__":
    sys.exit(main())
