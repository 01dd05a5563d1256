"""tests/support/processes.stop_child, the one stop every helper program of the suite goes through:
a clean SIGTERM, SIGKILL for a child that ignores it, and a whole process group when asked."""

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import exited, stop_child

_IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
)


def _ready(process: subprocess.Popen[bytes]) -> None:
    """Wait until the child has printed its line (its signal handling is in place)."""
    assert process.stdout is not None
    assert process.stdout.readline() == b"1\n"


def test_a_child_that_obeys_sigterm_is_reaped_with_its_exit_code() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stop_child(process) == -signal.SIGTERM
    assert process.returncode == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    process = subprocess.Popen([sys.executable, "-c", _IGNORES_TERM], stdout=subprocess.PIPE)
    _ready(process)
    started = time.monotonic()
    assert stop_child(process, grace=0.2) == -signal.SIGKILL
    assert time.monotonic() - started >= 0.2
    assert process.stdout is not None
    process.stdout.close()


def test_stopping_twice_or_after_an_exit_is_harmless() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    assert stop_child(process) == 3
    assert stop_child(process, group=True) == 3


def test_a_group_stop_also_ends_what_the_child_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {_IGNORES_TERM!r}], stdout=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print(1, flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True)
    _ready(process)
    grandchild = int(pid_file.read_text())
    assert not exited(process)
    stop_child(process, grace=5, group=True)
    deadline = time.monotonic() + 10
    while _alive(grandchild):  # it is init's child now: reaped by init, not by us
        assert time.monotonic() < deadline, f"grandchild {grandchild} survived the group stop"
        time.sleep(0.02)
    assert process.stdout is not None
    process.stdout.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
