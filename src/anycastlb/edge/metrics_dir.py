"""The edge's private directories, and Prometheus multiprocess mode chosen before it is imported.

Workers write their samples to files in a private directory; the supervisor's scrape sums them.
This module therefore imports nothing from prometheus_client and runs first.

An edge killed with SIGKILL cannot remove its directories. Their names carry the supervisor's pid
(``anycastlb-<kind>-<pid>-<random>``), so the next edge to start removes those whose owner is gone.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["prepare_metrics_dir", "private_dir", "sweep_stale_dirs"]

_PREFIX = "anycastlb-"
_KINDS = frozenset({"metrics", "run"})  # what private_dir() is asked for


def _owner_alive(pid: int) -> bool:
    try:
        return b"anycastlb" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def sweep_stale_dirs() -> int:
    """Remove directories left by edges that died without cleaning up; returns how many."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*-*"):
        _, kind, pid_text, _ = path.name.split("-", 3)
        if kind not in _KINDS or not pid_text.isdigit():
            continue  # another program's directory (e.g. a benchmark's anycastlb-bench-<pid>-*)
        pid = int(pid_text)
        if pid == os.getpid() or _owner_alive(pid) or not path.is_dir():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def private_dir(kind: str) -> Path:
    """A fresh directory for this edge, removed at a clean exit (and by the next edge otherwise)."""
    path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{kind}-{os.getpid()}-"))
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # forked children inherit atexit hooks: only the supervisor cleans up
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


def prepare_metrics_dir() -> str:
    """Create a fresh directory for this agent's samples and remove it at exit."""
    existing = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if existing:
        return existing
    sweep_stale_dirs()
    path = str(private_dir("metrics"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path
