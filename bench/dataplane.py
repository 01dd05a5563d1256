"""Data-plane benchmark: direct to nginx, HAProxy, and our edge agent in each relay mode, in one run.

Issue 12's figures, per contender and round (all traffic on 127.0.0.1; contenders: ``direct``,
``haproxy`` with ``nbthread 2`` and splice, ``edge-copy``/``edge-splice``/``edge-auto``: the edge with
2 workers and that ``relay`` mode):

- **bulk 1 / 4 streams, Gbit/s**: curl downloads a 1 GiB file (tmpfs, nginx ``sendfile``) again and
  again for ``--seconds``; the last download is cut by ``--max-time`` and its bytes still count.
  Figure = all bytes / wall time. Streams are separate curl processes (separate connections).
  **CPU s per GB**: user + sys of the contender's process tree during the 1-stream run ÷ GB relayed.
- **conn/s**: ``wrk -t1 -c50 -H 'Connection: close'`` on a 3-byte response, so every request is a
  new TCP connection (and, through a proxy, a new backend connection plus a PROXY v2 header).
  Socket errors and non-2xx answers are reported and flag the run. **CPU µs per connection**, user
  and sys apart: the contender's process tree during that run (``/proc/PID/stat``, threads and
  reaped children included) ÷ requests served; nginx's own CPU in the same run is a separate figure
  (for ``direct`` the contender is nginx).
- **latency p50/p99, ms**: an open-loop generator (fixed schedule, 500 req/s, not waiting for
  answers) times connect + ``GET /small`` + complete response. wrk cannot hold a rate and wrk2 is
  not packaged, and a closed loop hides queueing; the Python client adds its own overhead, but it
  is the same client for every contender, so differences are the proxies'.
- **RSS per 10k idle connections, MiB**: 10,000 connections (fewer if the fd limit cannot fit them;
  then scaled) that each sent an unfinished request line (the proxy has connected to nginx; nginx
  waits for the rest). Figure = growth of the summed
  VmRSS of the proxy's process tree. For ``direct`` it is nginx itself (master + worker). Taken
  first, on a freshly started proxy (fresh nginx workers for ``direct``), before any traffic.
- **syscalls per connection** (proxies only): last, in a phase of its own so that ptrace's cost
  touches no timed figure: ``strace -f -c`` attached to the proxy's whole tree while 500
  ``Connection: close`` requests arrive at 200/s, minus an idle window of the same length
  (``bench/harness/syscalls.py``); the report lists the most frequent syscalls too.

Why side by side in one run: the machine is small (2 cores) and shared, so absolute numbers drift
by tens of percent between minutes. Every round runs all contenders in rotated order against the
same nginx, and the report gives medians over rounds, ratios to HAProxy and to direct, every raw
value, and last issue 12's targets (edge ÷ HAProxy within each round, median over rounds, met or
not). Client, proxy and nginx share the same cores: the figures compare CPU efficiency under
contention, not line rate.

This file is the command line; the parts are in ``bench/harness/``: ``processes`` (children,
cleanup), ``probes``, ``servers`` (nginx, HAProxy, the edge), ``measure``, ``cpu`` (process-tree
CPU), ``syscalls`` (the strace phase), ``figures`` (one contender's figures), ``rounds``,
``markdown``, ``costs``, ``targets``, ``report``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for ``bench.harness``

from bench.harness.processes import start_bench
from bench.harness.report import report
from bench.harness.results import CONTENDERS, Results
from bench.harness.rounds import run
from bench.harness.servers import REPO
from bench.harness.session import Finished, Session, publish, run_session


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all contenders (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each timed run (default 5)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round of 2 s runs, no --output")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="markdown report (default docs/benchmarks-dataplane.md; --quick writes none)",
    )
    parser.add_argument(
        "--contenders",
        type=lambda text: tuple(name.strip() for name in text.split(",")),
        default=CONTENDERS,
        help=f"comma-separated subset of {','.join(CONTENDERS)} (default: all)",
    )
    settings = parser.parse_args(argv)
    if unknown := set(settings.contenders) - set(CONTENDERS):
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")
    if settings.quick:
        settings.rounds, settings.seconds = 1, 2.0
    elif settings.output is None:
        settings.output = REPO / "docs" / "benchmarks-dataplane.md"
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    missing = [tool for tool in ("nginx", "haproxy", "wrk", "curl", "strace") if shutil.which(tool) is None]
    if missing:
        packages = "nginx-light haproxy wrk curl strace"
        print(
            f"missing: {' '.join(missing)}; scripts/setup or apt-get install -y {packages}", file=sys.stderr
        )
        return 2
    command = start_bench("bench/dataplane.py", argv)

    def work(session: Session) -> Results:
        return run(settings, session.temp_dir(), session.temp_dir(Path("/dev/shm")))

    def finish(done: Finished[Results]) -> None:
        publish(report(done.result, command, done.env, done.duration, settings), settings.output)

    return run_session(work, finish)


if __name__ == "__main__":
    sys.exit(main())
