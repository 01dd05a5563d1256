"""An edge killed with SIGKILL leaves its directories; the next edge removes them, and only them."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from anycastlb.edge import metrics_dir


def test_directories_of_dead_edges_are_swept_and_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    probe = [sys.executable, "-c", "import os; print(os.getpid())"]
    dead = subprocess.run(probe, capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"anycastlb-run-{dead_pid}-abc"
    mine = metrics_dir.private_dir("run")
    foreign = tmp_path / "anycastlb-metrics-xyz"  # no pid in the name: not ours to judge
    benchmark = tmp_path / f"anycastlb-bench-{dead_pid}-def"  # another program's, even with a pid
    stale.mkdir()
    foreign.mkdir()
    benchmark.mkdir()

    assert metrics_dir.sweep_stale_dirs() == 1
    assert not stale.exists()
    assert mine.exists() and foreign.exists() and benchmark.exists()
    assert f"-{os.getpid()}-" in mine.name
