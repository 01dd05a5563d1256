"""Child process lifecycle: every server and client the benchmark starts, and how all of them stop.

Servers lead their own sessions with ``PR_SET_PDEATHSIG``, so they get SIGTERM even if the benchmark
is killed; :data:`CHILDREN` stops whatever is still running on any exit, and :func:`make_temp_dir`
removes the temp dirs that SIGKILLed runs left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the benchmark dies (even by SIGKILL)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Children:
    """Every process the benchmark starts, so that all of them are stopped on any exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()

    def start_server(
        self, argv: Sequence[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A long-lived server leading its own session and process group (Ctrl-C reaches only us)."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - called from the main thread only
            )
        self._add(proc)
        return proc

    def run(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """A short-lived client (curl, wrk); safe to call from threads."""
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            self._discard(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, out.decode(), err.decode())

    def _add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.add(proc)

    def _discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(proc)

    @staticmethod
    def has_exited(proc: subprocess.Popen[bytes]) -> bool:
        """Without reaping it: while it is an unreaped zombie its pid (= its group id) cannot be reused."""
        if proc.returncode is not None:
            return True
        with contextlib.suppress(ChildProcessError):
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        return True

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left of its process group."""
        if not self.has_exited(proc):
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not self.has_exited(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.returncode is None:  # not reaped yet, so the group id is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # workers that outlived their leader
        code = proc.wait()
        self._discard(proc)
        return code

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for proc in running:
            self.stop(proc, grace=5.0)


CHILDREN = Children()


def exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def start_bench(script: str, argv: Sequence[str] | None) -> str:
    """Make SIGTERM and SIGHUP exit through the cleanup paths, and return the command line that
    reproduces this run (every bench prints it and docs/benchmarks.md quotes it)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, exit_on_signal)
    return shlex.join(["python3", script, *(sys.argv[1:] if argv is None else argv)])


def children_of(root: int, recursive: bool) -> set[int]:
    """Child pids of ``root`` (all descendants if ``recursive``), from ``/proc/*/stat``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        if recursive:
            frontier.extend(children)
    return found


def tree_rss_kib(root: int) -> int:
    """Summed VmRSS of ``root`` and all its descendants (nginx workers, edge workers)."""
    total = 0
    for pid in {root} | children_of(root, recursive=True):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def raise_file_limit(wanted: int = 65_536) -> None:
    """10k idle connections need 10k fds here and 20k in a proxy (children inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def make_temp_dir(parent: Path) -> Path:
    """``anycastlb-bench-<pid>-*``; first removes those left by runs that were SIGKILLed (dead pid)."""
    for stale in parent.glob("anycastlb-bench-*-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"anycastlb-bench-{os.getpid()}-", dir=parent))
