"""``anycastlb control`` starts with its own lines, not alembic's (issue 13: seven
``alembic.runtime.plugins`` INFO lines came before anything useful)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.control_plane import ControlProcess

pytestmark = pytest.mark.integration


def test_migrate_only_on_a_new_database_prints_its_summary_and_no_alembic_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anycastlb", "control", "--migrate", "only"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "ANYCASTLB_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("schema migrated from revision none (a new database) to ")
    assert "alembic" not in done.stderr, done.stderr


def test_serving_at_info_logs_the_migration_as_our_event_and_no_alembic_line(tmp_path: Path) -> None:
    with ControlProcess(tmp_path, extra_args=("--log-level", "info")):
        pass  # started: /healthz answered, so the migration and the start-up lines are written
    log = (tmp_path / "control.log").read_text()
    assert "anycastlb.control.store schema_migrated from=none to=" in log, log
    assert "control_starting" in log, log
    assert "alembic" not in log, log
