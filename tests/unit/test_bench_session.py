"""bench/harness/session.py: the shell every bench runs in stops its children and removes its temp
dirs however the run ends, turns Ctrl-C into exit code 130, and writes the report where asked.

Real processes (``sleep``) stand in for the servers: what is checked is that they are gone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from bench.harness.processes import CHILDREN
from bench.harness.session import INTERRUPTED, Finished, Session, publish, run_session, save


def _start_child(session: Session, seen: dict[str, object]) -> Path:
    """Two temp dirs (as ``bench/dataplane.py`` asks for) and a running child in the session."""
    workdir = session.temp_dir()
    other = session.temp_dir(workdir.parent)
    seen["dirs"] = [workdir, other]
    seen["proc"] = CHILDREN.start_server(["sleep", "60"], workdir / "sleep.log")
    return workdir


def _assert_cleaned(seen: dict[str, object]) -> None:
    proc = seen["proc"]
    assert isinstance(proc, subprocess.Popen)
    assert proc.returncode is not None, "the child outlived the session"
    dirs = seen["dirs"]
    assert isinstance(dirs, list)
    assert [path for path in dirs if path.exists()] == []


def test_a_finished_run_hands_its_result_to_finish_after_the_clean_up() -> None:
    seen: dict[str, object] = {}
    finished: list[Finished[str]] = []

    def work(session: Session) -> str:
        workdir = _start_child(session, seen)
        assert workdir.is_dir() and workdir.name.startswith("anycastlb-bench-")
        return "measured"

    def finish(done: Finished[str]) -> None:
        _assert_cleaned(seen)  # the report is written once nothing of the run is left
        finished.append(done)

    assert run_session(work, finish) == 0
    [done] = finished
    assert done.result == "measured"
    assert "- commit: " in done.env
    assert done.duration >= 0


def _never(done: Finished[str]) -> None:
    raise AssertionError(f"finish called after a run that did not finish: {done}")


def test_ctrl_c_returns_130_after_the_clean_up(capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, object] = {}

    def work(session: Session) -> str:
        _start_child(session, seen)
        raise KeyboardInterrupt

    assert run_session(work, _never) == INTERRUPTED == 130
    assert "interrupted: stopping every child process" in capsys.readouterr().err
    _assert_cleaned(seen)


def test_a_failing_run_raises_after_the_clean_up() -> None:
    seen: dict[str, object] = {}

    def work(session: Session) -> str:
        _start_child(session, seen)
        raise RuntimeError("nginx did not start")

    with pytest.raises(RuntimeError, match="nginx did not start"):
        run_session(work, _never)
    _assert_cleaned(seen)


def test_publish_prints_and_writes_into_a_new_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "reports" / "run.md"
    publish("# report\n", output)
    assert output.read_text() == "# report\n"
    assert capsys.readouterr().out == f"\n# report\n\nwritten to {output}\n"


def test_save_without_an_output_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save("# report\n", None)
    assert capsys.readouterr().out == ""
    assert list(tmp_path.iterdir()) == []
