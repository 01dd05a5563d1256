"""A revoked or rotated-out token stops working on every control plane replica within a second,
even on a replica that has just authenticated it (and so holds it in its cache): two real
``anycastlb control`` processes on one PostgreSQL database."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.control_plane import ControlProcess
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_PROMISE = 1.0  # seconds, docs/control-plane.md


@pytest.fixture
def replicas(tmp_path: Path, postgres: PostgresServer) -> Iterator[tuple[ControlProcess, ControlProcess]]:
    database = postgres.new_database()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        ControlProcess(tmp_path / "a", database) as first,
        ControlProcess(tmp_path / "b", database) as second,
    ):
        with first.client() as admin:
            assert admin.post("/v1/tenants", json={"name": "acme"}).status_code == 201
        yield first, second


def _token(replica: ControlProcess) -> dict[str, str]:
    with replica.client() as admin:
        created = admin.post("/v1/tenants/acme/tokens", json={"description": "controller"})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _seconds_until_refused(replica: ControlProcess, secret: str, change: Callable[[], None]) -> float:
    """Authenticate on ``replica`` (caching the token there), make ``change`` elsewhere, then poll
    ``replica`` until it answers 401; the seconds from the change's answer to the first 401."""
    with replica.client(secret) as caller:
        for _ in range(3):  # a cached, repeatedly used token: the case a stale cache would pass
            assert caller.get("/v1/whoami").status_code == 200
        change()
        changed = time.monotonic()
        while True:
            answer = caller.get("/v1/whoami")
            took = time.monotonic() - changed
            if answer.status_code == 401:
                return took
            assert answer.status_code == 200, answer.text
            assert took < _PROMISE, f"replica B still accepted the token {took:.2f} s after the change"
            time.sleep(0.02)


def _ok(answer: httpx.Response) -> None:
    assert answer.status_code < 300, answer.text


def test_a_token_revoked_on_replica_a_is_refused_by_replica_b_within_a_second(
    replicas: tuple[ControlProcess, ControlProcess],
) -> None:
    first, second = replicas
    token = _token(first)

    def revoke() -> None:
        with first.client() as admin:
            _ok(admin.delete(f"/v1/tenants/acme/tokens/{token['token_id']}"))

    took = _seconds_until_refused(second, token["secret"], revoke)
    assert took < _PROMISE


def test_a_token_rotated_without_grace_on_replica_a_is_refused_by_replica_b_within_a_second(
    replicas: tuple[ControlProcess, ControlProcess],
) -> None:
    first, second = replicas
    token = _token(first)
    new: dict[str, str] = {}

    def rotate() -> None:
        with first.client() as admin:
            answer = admin.post(
                f"/v1/tenants/acme/tokens/{token['token_id']}/rotate", json={"grace_seconds": 0}
            )
        _ok(answer)
        new.update(answer.json())

    assert _seconds_until_refused(second, token["secret"], rotate) < _PROMISE
    with second.client(new["secret"]) as caller:
        assert caller.get("/v1/whoami").json() == {"kind": "tenant", "name": "acme"}


def test_a_deleted_pops_credential_is_refused_by_the_other_replica_within_a_second(
    replicas: tuple[ControlProcess, ControlProcess],
) -> None:
    first, second = replicas
    with first.client() as admin:
        created = admin.post("/v1/pops", json={"name": "fra"})
    _ok(created)

    def delete() -> None:
        with first.client() as admin:
            _ok(admin.delete("/v1/pops/fra"))

    assert _seconds_until_refused(second, created.json()["token"]["secret"], delete) < _PROMISE
