"""``anycastlb control --migrate auto|only|off`` on SQLite and PostgreSQL: ``only`` migrates and
exits (what the Helm chart's hook Job runs), ``off`` never changes the schema and refuses to serve
a database that is not at this release's revision, and the default still migrates at start.
Replicas serving with ``--migrate off`` after the Job: test_chart_commands.py."""

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner, Result

from anycastlb.cli import app
from anycastlb.control.store.engine import normalize_url
from tests.integration.control.test_migrations import _upgrade
from tests.support.control_plane import ADMIN_TOKEN, ControlProcess

pytestmark = pytest.mark.integration

HEAD = "0010"  # the tunnels (clusters); 0009 (pools.sni_sharing) before it


def control(database: str, *args: str, admin_token: str | None = None, from_env: bool = False) -> Result:
    """``anycastlb control`` in-process; the URL as --database, or (``from_env``) as the Helm chart
    passes it: in ANYCASTLB_DATABASE_URL, so that the password is not on a command line."""
    env = {
        "ANYCASTLB_ADMIN_TOKEN": admin_token,
        "ANYCASTLB_PLATFORM_NETWORKS": None,
        "ANYCASTLB_DATABASE_URL": database if from_env else None,
    }
    flags = [] if from_env else ["--database", database]
    return CliRunner().invoke(app, ["control", *flags, *args], env=env, catch_exceptions=False)


def revision(url: str) -> str | None:
    """The database's schema revision (None: no alembic_version table) and nothing else."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return None if found is None else str(found)
    finally:
        engine.dispose()


def tables(url: str) -> list[str]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            return sorted(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_only_migrates_a_new_database_and_exits_without_an_admin_token(database_url: str) -> None:
    first = control(database_url, "--migrate", "only")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == f"schema migrated from revision none (a new database) to {HEAD}"
    assert revision(database_url) == HEAD
    again = control(database_url, "--migrate", "only")
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == f"schema already at revision {HEAD}"


def test_only_upgrades_an_older_release_and_says_from_where(database_url: str) -> None:
    _upgrade(database_url, "0004")
    result = control(database_url, "--migrate", "only", from_env=True)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"schema migrated from revision 0004 to {HEAD}"
    assert revision(database_url) == HEAD


def test_off_refuses_a_new_database_and_creates_nothing(database_url: str) -> None:
    result = control(database_url, "--migrate", "off", admin_token=ADMIN_TOKEN)
    assert result.exit_code == 2
    assert "the database has no anycastlb schema yet" in result.stderr
    assert "run `anycastlb control --migrate only` with the same --database first" in result.stderr
    assert tables(database_url) == []


def test_off_refuses_an_older_schema_and_leaves_it_as_it_was(database_url: str) -> None:
    _upgrade(database_url, "0005")
    result = control(database_url, "--migrate", "off", admin_token=ADMIN_TOKEN, from_env=True)
    assert result.exit_code == 2
    assert f"the database is at schema revision 0005, this release needs {HEAD}" in result.stderr
    assert revision(database_url) == "0005"


def test_off_refuses_a_schema_a_newer_release_wrote(database_url: str) -> None:
    _upgrade(database_url, "head")
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    result = control(database_url, "--migrate", "off", admin_token=ADMIN_TOKEN)
    assert result.exit_code == 2
    assert "at schema revision 9999, which this release" in result.stderr
    assert "a newer release migrated it" in result.stderr
    assert revision(database_url) == "9999"


def test_the_default_still_migrates_at_start(database_url: str, tmp_path: Path) -> None:
    assert revision(database_url) is None
    with ControlProcess(tmp_path, database_url):
        assert revision(database_url) == HEAD


def test_two_jobs_at_once_migrate_once(database_url: str, tmp_path: Path) -> None:
    """Two `--migrate only` processes started together (a retried Job beside a slow one). Whichever
    order they reach the database in, one migrates and the other finds the schema at head: the
    revision it reports is read under the migration lock (PostgreSQL's advisory lock, SQLite's
    write lock), so when they do overlap the second waits instead of migrating again."""
    command = [
        sys.executable,
        "-m",
        "anycastlb.cli",
        "control",
        "--database",
        database_url,
        "--migrate",
        "only",
    ]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr
        outputs.append(stdout.strip())
    assert sorted(outputs) == sorted(
        [
            f"schema migrated from revision none (a new database) to {HEAD}",
            f"schema already at revision {HEAD}",
        ]
    )
    assert revision(database_url) == HEAD
