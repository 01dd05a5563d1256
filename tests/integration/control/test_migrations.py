"""The Alembic migrations against the models, on SQLite and PostgreSQL: a new database gets exactly
the schema the code expects, and a database made by an older release upgrades keeping its rows."""

import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from anycastlb.control.store import engine as store_engine
from anycastlb.control.store.engine import normalize_url, open_store
from anycastlb.control.store.tables import Base
from tests.support.control_plane import ControlApi, spec

pytestmark = pytest.mark.integration


def _upgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(store_engine._MIGRATIONS))
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def test_a_new_database_has_exactly_the_schema_of_the_models(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with store.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        store.dispose()
    assert differences == [], "the models changed without a migration (alembic revision --autogenerate)"


def test_rows_of_an_older_release_survive_the_upgrade_and_get_a_digest_at_their_next_put(
    database_url: str,
) -> None:
    _upgrade(database_url, "0001")  # the schema of the release before spec digests
    api = ControlApi(database_url)  # opens the store: migrates to head
    try:
        api.pool("platform", "203.0.113.0/29")
        token = api.tenant("acme")
        created = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", token, json=spec("web"))
        with api.store.engine.begin() as connection:  # as a row written before 0002 looks
            connection.execute(text("UPDATE load_balancers SET spec_digest = NULL"))
        listed = api.ok("GET", "/v1/tenants/acme/loadbalancer-versions", token)
        assert [(item["name"], item["spec_digest"]) for item in listed] == [("web", None)]
        same = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", token, json=spec("web"))
        assert same["version"] == created["version"]  # unchanged: no new version...
        listed = api.ok("GET", "/v1/tenants/acme/loadbalancer-versions", token)
        assert listed[0]["spec_digest"] is not None  # ...but the digest is filled in
        assert listed[0]["addresses"] == created["addresses"]
        assert uuid.UUID(created["id"])
    finally:
        api.close()
