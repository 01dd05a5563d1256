"""A store written by a release that accepted scope ids is not opened by this one until the rows are
fixed: the error names each row and how to fix it, nothing is changed, and once the rows are gone
the store opens and serves as before (SQLite and PostgreSQL)."""

import json

import pytest
from sqlalchemy import create_engine, text

from anycastlb.control.store.engine import StoreError, normalize_url, open_store
from tests.integration.control.test_migrations import _upgrade

pytestmark = pytest.mark.integration


def _execute(url: str, *statements: tuple[str, dict[str, object]]) -> None:
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as connection:
            for statement, values in statements:
                connection.execute(text(statement), values)
    finally:
        engine.dispose()


def test_a_scoped_address_of_an_earlier_release_stops_the_start_until_it_is_released(
    database_url: str,
) -> None:
    _upgrade(database_url, "0005")  # the release before the audit
    spec = {"name": "evil", "listeners": [{"port": 443, "backends": [{"address": "::1%1", "port": 1}]}]}
    _execute(
        database_url,
        ("INSERT INTO tenants (id, name, created_at) VALUES (1, 'mallory', CURRENT_TIMESTAMP)", {}),
        (
            "INSERT INTO pools (id, name, networks, auto_assign, reserved, created_at) "
            "VALUES (1, 'platform', :networks, true, :reserved, CURRENT_TIMESTAMP)",
            {"networks": json.dumps(["2001:db8::/64"]), "reserved": json.dumps([])},
        ),
        (
            "INSERT INTO addresses (id, address, tenant_id, pool_id, static, created_at) "
            "VALUES (7, '2001:db8::1%1', 1, 1, true, CURRENT_TIMESTAMP)",
            {},
        ),
        (
            "INSERT INTO load_balancers (id, tenant_id, name, spec, version, created_at, updated_at) "
            "VALUES ('lb-1', 1, 'evil', :spec, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            {"spec": json.dumps(spec)},
        ),
    )
    with pytest.raises(StoreError) as refused:
        open_store(database_url)
    message = str(refused.value)
    assert "holds 2 address(es) this release refuses" in message
    assert "addresses row 7 (tenant 'mallory'): '2001:db8::1%1'" in message
    assert "DELETE FROM addresses WHERE id = 7" in message
    assert "load balancer 'evil' of tenant 'mallory': listeners[0].backends[0].address: '::1%1'" in message

    _execute(
        database_url,
        ("DELETE FROM load_balancers WHERE id = 'lb-1'", {}),
        ("DELETE FROM addresses WHERE id = 7", {}),
    )
    store = open_store(database_url)  # the fixed store opens and is at head
    try:
        with store.engine.connect() as connection:
            assert (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0010"
            )  # head
            assert connection.execute(text("SELECT count(*) FROM tenants")).scalar() == 1
    finally:
        store.dispose()
