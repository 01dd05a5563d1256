"""Fixtures every test directory may use: a private PostgreSQL server (one per run, or per
pytest-xdist worker) and the control plane over either store."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.control_plane import ControlApi
from tests.support.peers import POSTGRESQL, in_ci, require, survey
from tests.support.postgres import PostgresServer


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (scripts/test runs ``-n``), each worker takes its own share of free ports
    (anycastlb.lab.ports.free_port): two workers never race for one between picking and binding it."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if worker is not None and count is not None:
        os.environ["ANYCASTLB_PORT_SHARD"] = f"{int(worker.removeprefix('gw'))}/{count}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Every real peer the suite runs against, found or missing (tests/support/peers.py)."""
    terminalreporter.section("real peers")
    for peer in survey():
        state = "found  " if peer.missing is None else "MISSING"
        where = peer.found if peer.missing is None else peer.missing
        terminalreporter.write_line(f"{state} {peer.name:<26} {where}  [needed by {peer.needed_by}]")
    if in_ci():
        terminalreporter.write_line("CI=true: a test that needs a missing peer fails instead of skipping")
    elif any(peer.missing for peer in survey()):
        terminalreporter.write_line("tests that need a MISSING peer were skipped (CI=true fails them)")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    require(POSTGRESQL)
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that asks for the store runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def api(database_url: str) -> Iterator[ControlApi]:
    control = ControlApi(database_url)
    yield control
    control.close()
