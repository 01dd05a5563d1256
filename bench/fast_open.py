"""Fast Open benchmark: the edge with ``backend_fast_open`` off and on, HAProxy without and with ``tfo``.

Issue 12 asks for TCP Fast Open towards the backends as a listener option, measured: with a cookie
from the node, the PROXY header and the client's first bytes ride in the SYN, which a C probe
measured at 34 µs of CPU per connection against 40 without. This benchmark measures the edge's
option against its own default and against HAProxy's ``tfo`` server keyword, in one run.

Fast Open needs the kernel's client and server bits (``net.ipv4.tcp_fastopen=3``), and this
script never changes the host's sysctls: it creates a network namespace of its own
(``alb-tfobench<pid>``), sets the sysctl there, runs itself inside it (``ip netns exec``) and
removes the namespace at the end. Inside, the parts are those of ``bench/dataplane.py``
(``bench/harness/``): one nginx whose PROXY port listens with ``fastopen=``, HAProxy or the edge in
front of it, started fresh for each contender in each round (rounds interleaved, order rotated),
and per contender:

- **conn/s** and **CPU µs per connection** (user and sys apart) from one ``wrk -t1 -c50
  -H 'Connection: close'`` run: CPU of the contender's whole process tree from ``/proc/PID/stat``
  ÷ requests served; nginx's CPU in the same run on a line of its own;
- **fast opens per connection**: the namespace's ``TcpExt.TCPFastOpenActive`` during that run ÷
  requests, the proof that a ``-tfo`` contender did send its first bytes in the SYN (and the
  others did not);
- **latency p50/p99** at a fixed 500 requests/s (the harness's open-loop client).

The report gives medians over rounds, every contender ÷ HAProxy, and Fast Open on ÷ off for each
proxy. Needs root (``ip netns``) and (Debian) ``nginx-light haproxy wrk``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # ``anycastlb``, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for ``bench.harness``

from anycastlb.lab.netns import delete_namespace, inside, ip, namespace_pids, run_inside
from bench.harness.fast_open_run import report, run
from bench.harness.processes import start_bench
from bench.harness.results import Results
from bench.harness.session import Finished, publish, run_session

INSIDE = "--inside-namespace"  # how the script tells its second self that it already runs inside


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all contenders (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each timed run (default 5)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round of 2 s runs")
    parser.add_argument("--output", type=Path, default=None, help="also write the markdown report here")
    parser.add_argument(INSIDE, action="store_true", dest="inside", help=argparse.SUPPRESS)
    settings = parser.parse_args(argv)
    if settings.quick:
        settings.rounds, settings.seconds = 1, 2.0
    return settings


def in_namespace(argv: list[str]) -> int:
    """Create the namespace, run this script inside it with the same arguments, remove it."""
    if os.geteuid() != 0:
        print("needs root: the benchmark runs in a network namespace of its own (ip netns)", file=sys.stderr)
        return 2
    missing = [tool for tool in ("ip", "nginx", "haproxy", "wrk") if shutil.which(tool) is None]
    if missing:
        packages = "iproute2 nginx-light haproxy wrk"
        print(f"missing: {' '.join(missing)}; apt-get install -y {packages}", file=sys.stderr)
        return 2
    name = f"alb-tfobench{os.getpid()}"
    ip("netns", "add", name)
    try:
        run_inside(name, ["sysctl", "-q", "-w", "net.ipv4.tcp_fastopen=3"])  # this namespace's only
        ip("-n", name, "link", "set", "lo", "up")
        return subprocess.call(inside(name, [sys.executable, str(Path(__file__).resolve()), INSIDE, *argv]))
    finally:
        for pid in namespace_pids(name):  # whatever the run left in its own namespace
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        delete_namespace(name)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    settings = parse_args(arguments)
    outer_arguments = [arg for arg in arguments if arg != INSIDE]
    command = start_bench("bench/fast_open.py", outer_arguments)
    if not settings.inside:
        return in_namespace(outer_arguments)

    def finish(done: Finished[Results]) -> None:
        publish(report(done.result, command, done.env, done.duration, settings), settings.output)

    return run_session(lambda session: run(settings, session.temp_dir()), finish)


if __name__ == "__main__":
    sys.exit(main())
