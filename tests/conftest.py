"""Fixtures every test directory may use: a private PostgreSQL server (one per run, or per
pytest-xdist worker) and the control plane over either store."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.control_plane import ControlApi
from tests.support.postgres import PostgresServer, postgres_binaries


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (scripts/test runs ``-n``), each worker takes its own share of free ports
    (anycastlb.lab.ports.free_port): two workers never race for one between picking and binding it."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if worker is not None and count is not None:
        os.environ["ANYCASTLB_PORT_SHARD"] = f"{int(worker.removeprefix('gw'))}/{count}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if postgres_binaries() is None:
        pytest.fail("PostgreSQL is not installed: run scripts/setup (installs Debian's postgresql)")
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
