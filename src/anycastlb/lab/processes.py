"""The lab's long-running programs (BIRD, nginx, the edges): started detached inside a namespace,
recorded by pid *and* start time, signalled only while that exact process still lives.

They must outlive ``anycastlb lab up``, so each is spawned in a session of its own with its output in
a log file, and ``lab down`` (another process, later) finds it through the state file. The start
time guards against a recycled pid: a record whose start time no longer matches is a stranger.
"""

import contextlib
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anycastlb
from anycastlb.lab.netns import LabError, inside
from anycastlb.lab.procfs import ProcStat, parse_stat, tcp_listeners

__all__ = ["ProcessRecord", "checkout_env", "children_of", "kill", "running", "spawn", "stat"]

_SRC = Path(anycastlb.__file__).resolve().parent.parent


def checkout_env() -> dict[str, str]:
    """This environment, with this checkout's ``src/`` first on PYTHONPATH: the lab's Python
    programs (the edges, the client) run the code next to the lab, installed or not."""
    paths = [str(_SRC), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def stat(pid: int) -> ProcStat | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


def _reap(pid: int) -> None:
    """If the process is our own child (the lab ran in this process), collect its exit status."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@dataclass(frozen=True)
class ProcessRecord:
    role: str  # "bird", "node1", "edge-fra", ...
    namespace: str
    pid: int
    start_time: int
    log: str

    def alive(self) -> bool:
        _reap(self.pid)
        info = stat(self.pid)
        return info is not None and info.state != "Z" and info.start_time == self.start_time

    def listens_on(self, address: str, port: int) -> bool:
        """Whether a socket in the process's network namespace listens on address:port (its
        /proc/PID/net/tcp is its namespace's table); False once it is gone."""
        try:
            return (address, port) in tcp_listeners(Path(f"/proc/{self.pid}/net/tcp").read_text())
        except OSError:
            return False

    def send(self, signum: int) -> bool:
        """Send ``signum`` if the process still lives; True if it was sent."""
        if not self.alive():
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)
            return True
        return False

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, timeout: float = 5.0, signum: int = signal.SIGTERM) -> None:
        """``signum``, then SIGKILL after ``timeout``; returns once the process is gone."""
        if self.send(signum) and not self.wait_gone(timeout):
            self.send(signal.SIGKILL)
            if not self.wait_gone(5.0):
                raise LabError(
                    f"{self.role} (pid {self.pid}) survives SIGKILL: is it stuck in the kernel (D state)?"
                )

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.log).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ProcessRecord":
        return cls(
            str(data["role"]),
            str(data["namespace"]),
            int(data["pid"]),
            int(data["start_time"]),
            str(data["log"]),
        )


def spawn(
    role: str, namespace: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> ProcessRecord:
    """Start ``argv`` inside ``namespace`` in a new session, stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawnp(
            "ip",
            inside(namespace, argv),
            env if env is not None else dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
            ],
            setsid=True,
        )
    except OSError as error:
        raise LabError(f"cannot start {role} ({argv[0]}) in {namespace}: {error.strerror}") from None
    finally:
        os.close(fd)
    info = stat(pid)
    if info is None:
        raise LabError(f"{role} ({argv[0]}) exited at once; see {log}")
    return ProcessRecord(role, namespace, pid, info.start_time, str(log))


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every process's ``/proc/PID/stat``)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))) is not None and info.ppid == pid:
            children.append(int(entry.name))
    return children


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie holds no namespace and serves nothing)."""
    info = stat(pid)
    return info is not None and info.state != "Z"


def kill(pid: int) -> None:
    """SIGKILL ``pid`` (one the lab owns: recorded, or inside a lab namespace); reap it if ours."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)
