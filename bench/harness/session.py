"""One benchmark run's shell: the set-up, the clean-up and the report's way out, the same for every bench.

Each bench script checks its own tools and parses its own arguments, then hands its measuring run to
:func:`run_session`, which raises the file limit, notes the environment and the clock, gives the run
its temp dirs, and, however the run ends (done, Ctrl-C, SIGTERM through :func:`start_bench`'s
handler), stops every child process and removes those dirs. :func:`publish` then prints the report
and writes it where ``--output`` asked. Kept here so that the five scripts cannot drift apart in how
they clean up or what Ctrl-C returns.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from .processes import CHILDREN, make_temp_dir, raise_file_limit
from .report import environment

__all__ = ["INTERRUPTED", "Finished", "Session", "publish", "run_session", "save"]

R = TypeVar("R")
INTERRUPTED = 130  # the exit code of a run stopped by Ctrl-C, as a shell gives for SIGINT


@dataclass
class Session:
    """What a run is given: temp dirs on request, each removed when the run ends however it ends."""

    temp_dirs: list[Path] = field(default_factory=list)

    def temp_dir(self, parent: Path | None = None) -> Path:
        """A fresh ``anycastlb-bench-<pid>-*`` dir under ``parent`` (default: the system temp dir)."""
        path = make_temp_dir(Path(tempfile.gettempdir()) if parent is None else parent)
        self.temp_dirs.append(path)
        return path

    def clean_up(self) -> None:
        CHILDREN.stop_all()
        for path in self.temp_dirs:
            shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Finished(Generic[R]):
    """A run that ended normally: its result, the environment line noted before it, and how long it
    took (clean-up included, as the reports have always said)."""

    result: R
    env: str
    duration: float


def run_session(work: Callable[[Session], R], finish: Callable[[Finished[R]], None]) -> int:
    """Run ``work`` with every child stopped and every temp dir removed afterwards, whatever happens,
    then hand what it measured to ``finish`` (which prints and writes the report); returns the
    bench's exit code.

    That is 0, or :data:`INTERRUPTED` (after the clean-up, ``finish`` not called) when the run was
    stopped by Ctrl-C; any other exception propagates after the clean-up. ``CHILDREN.stop_all`` is
    also registered at exit for a ``SystemExit`` raised by a signal handler.
    """
    atexit.register(CHILDREN.stop_all)
    raise_file_limit()
    env, started = environment(), time.monotonic()
    session = Session()
    try:
        result = work(session)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every child process and removing temp files", file=sys.stderr)
        return INTERRUPTED
    finally:
        session.clean_up()
    finish(Finished(result, env, time.monotonic() - started))
    return 0


def save(text: str, output: Path | None) -> None:
    """Write the report to ``output`` (its parent dirs created) and say where; nothing if ``None``."""
    if output is None:
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(f"written to {output}")


def publish(text: str, output: Path | None) -> None:
    """Print the report after a blank line, then :func:`save` it."""
    print("\n" + text)
    save(text, output)
