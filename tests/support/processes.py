"""Stopping the suite's helper programs (the control plane, the controller, Prometheus): one place for
SIGTERM, a grace period, SIGKILL and the reap, so a fix to it reaches every helper.

The lab's detached programs (src/anycastlb/lab/processes.py) are a different case: they outlive the
process that started them and are found again by pid and start time. These are our own children,
held as ``Popen`` objects, and ended before the test that started them returns.

A helper started in a session of its own (``start_new_session=True``) is stopped as a *group*: the
signals reach whatever it started, and the group is signalled only while its leader is not yet
reaped, so the number can never name a stranger that reused it.
"""

import contextlib
import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

__all__ = ["ChildProcess", "exited", "signal_group", "stop_child"]

STOP_GRACE = 10.0  # seconds from SIGTERM to SIGKILL


def exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether ``process`` has exited, without reaping it (its pid stays taken until it is reaped)."""
    if process.returncode is not None:
        return True
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    """Signal the process group ``process`` leads, only while the leader is not reaped."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


def stop_child(process: subprocess.Popen[bytes], *, grace: float = STOP_GRACE, group: bool = False) -> int:
    """SIGTERM (a clean stop), SIGKILL after ``grace`` seconds, then reap; the exit code.

    ``group``: signal the whole process group, and SIGKILL what is left of it even when the leader
    stopped cleanly. Safe to call on a process that has already exited, and again."""
    if not group:
        if process.poll() is None:
            process.terminate()
            try:
                return process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()
    if not exited(process):
        signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not exited(process) and time.monotonic() < deadline:
            time.sleep(0.02)
    signal_group(process, signal.SIGKILL)
    return process.wait()


class ChildProcess(ABC):
    """A helper program a test runs as a child: ``with Helper(...) as helper:`` starts it and stops
    it (and closes its log) on the way out, even when the test fails."""

    stop_grace: float = STOP_GRACE
    stop_group: bool = False  # True for a child started with start_new_session=True

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def _open_log(self, path: Path) -> BinaryIO:
        """Open ``path`` for the child's output (appending); closed by :meth:`stop`."""
        self._close_log()
        self._log = path.open("ab")
        return self._log

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    @abstractmethod
    def start(self) -> Self:
        """Start the program and return once it is ready (stopping it again if it never is)."""

    def stop(self) -> None:
        """Stop the program (see :func:`stop_child`) and close its log; safe at any point, and again."""
        if self.process is not None:
            stop_child(self.process, grace=self.stop_grace, group=self.stop_group)
        self._close_log()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
