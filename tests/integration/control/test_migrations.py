"""The Alembic migrations against the models, on SQLite and PostgreSQL: a new database gets exactly
the schema the code expects, and rows written by the first release (0001) go through every migration
one at a time, each leaving them intact with exactly the columns it adds, and then still serve."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Connection, MetaData, Table, bindparam, create_engine, select, text

from anycastlb.control.store import engine as store_engine
from anycastlb.control.store.engine import normalize_url, open_store
from anycastlb.control.store.tables import Base
from anycastlb.control.store.utc import UTCDateTime
from anycastlb.model.desired import LoadBalancerSpec
from anycastlb.model.duration import STORED_SECONDS
from tests.support.control_plane import ControlApi, spec

pytestmark = pytest.mark.integration


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(store_engine._MIGRATIONS))
    return config


def _upgrade(url: str, revision: str) -> None:
    config = _config()
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


# Rows as the first release (revision 0001, commit cfa0e4c) wrote them. The spec is that release's
# LoadBalancerSpec.model_dump(mode="json") of spec("web"): it lacks the fields added since
# (backend_fast_open, new_connections_*, source_prefix_*).
_CREATED = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
_TENANT_SECRET = "alb_tenant_0123456789ab_" + "t" * 43
_POP_SECRET = "alb_pop_ba9876543210_" + "p" * 43
_LB_ID = "6f1c1d2e-1b0a-4c55-9a51-1f6a7c0e2d11"
_SPEC_0001: dict[str, Any] = json.loads(
    '{"name": "web", "ips": {"addresses": [], "families": ["ipv4"], "count": 1, "pool": null,'
    ' "sharing_key": null}, "listeners": [{"port": 443, "protocol": "tcp", "proxy_protocol": "v2",'
    ' "backends": [{"address": "10.0.0.11", "port": 30443, "weight": 1}], "health": {"type": "tcp",'
    ' "port": null, "path": "/healthz", "host": null, "tls": false, "expect_status": [],'
    ' "expect_body": null, "send_proxy": null, "interval": 0.5, "timeout": 0.25, "rise": 2, "fall": 2,'
    ' "passive_fall": 1, "initial": "up"}, "connect_timeout": 1.0, "idle_timeout": 300.0, "retries": 2,'
    ' "retry_on_reset": true, "max_connections": 50000, "max_connections_per_source": 1000,'
    ' "backlog": 4096, "first_data_timeout": 10.0, "server_speaks_first": false,'
    ' "sni_authority": true, "client_hello_wait": 0.2}], "pops": []}'
)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_ROWS_0001: dict[str, list[dict[str, Any]]] = {
    "revision": [{"id": 1, "value": 2}],
    "tenants": [{"id": 1, "name": "acme", "created_at": _CREATED}],
    "pops": [
        {
            "id": 1,
            "name": "fra1",
            "desired_version": 2,
            "status": None,
            "status_at": None,
            "created_at": _CREATED,
        }
    ],
    "api_tokens": [
        {
            "id": 1,
            "token_id": "alb_tenant_0123456789ab",
            "secret_hash": _hash(_TENANT_SECRET),
            "kind": "tenant",
            "tenant_id": 1,
            "pop_id": None,
            "description": "ci",
            "created_at": _CREATED,
        },
        {
            "id": 2,
            "token_id": "alb_pop_ba9876543210",
            "secret_hash": _hash(_POP_SECRET),
            "kind": "pop",
            "tenant_id": None,
            "pop_id": 1,
            "description": "PoP fra1",
            "created_at": _CREATED,
        },
    ],
    "pools": [
        {
            "id": 1,
            "name": "platform",
            "owner_tenant_id": None,
            "networks": ["203.0.113.0/29"],
            "reserved": [],
            "auto_assign": True,
            "created_at": _CREATED,
        }
    ],
    "addresses": [
        {
            "id": 1,
            "address": "203.0.113.1",
            "pool_id": 1,
            "tenant_id": 1,
            "static": False,
            "sharing_key": None,
            "created_at": _CREATED,
        }
    ],
    "load_balancers": [
        {
            "id": _LB_ID,
            "tenant_id": 1,
            "name": "web",
            "spec": _SPEC_0001,
            "version": 2,
            "created_at": _CREATED,
            "updated_at": _CREATED,
        }
    ],
    "load_balancer_addresses": [{"load_balancer_id": _LB_ID, "address_id": 1, "position": 0}],
}

# What each later migration does to those rows: the columns it adds to existing rows (with the value
# an old row gets) and the rows of the tables it creates. A new migration must be added here.
_CHANGES: dict[str, dict[str, dict[str, Any] | list[dict[str, Any]]]] = {
    "0002": {"load_balancers": {"spec_digest": None}},  # filled in at the next PUT
    "0003": {"tenants": {"allowed_backend_networks": None}},  # no private backends
    "0004": {"api_tokens": {"expires_at": None}, "token_generation": [{"id": 1, "value": 0}]},
    "0005": {"tenants": {"max_load_balancers": None, "max_addresses": None}},  # process defaults
    "0006": {},  # an audit only
    "0007": {"audit_log": []},  # a new table: no change before it is recorded
    "0008": {"usage_epochs": [], "usage_cursors": [], "usage_buckets": []},  # traffic from now on
    "0009": {"pools": {"sni_sharing": "tenant"}},  # today's rule: sharing within a tenant only
    # tunnels: a PoP has no endpoint until the admin sets one; no clusters yet
    "0010": {"pops": {"tunnel_endpoint": None}, "clusters": [], "cluster_pop_keys": [], "cluster_nodes": []},
}
_JSON_COLUMNS = {"spec", "networks", "reserved", "status", "allowed_backend_networks"}
_TIME_COLUMNS = {"created_at", "updated_at", "status_at", "expires_at"}


def _insert(url: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE revision SET value = :value"), rows["revision"][0])
            for table, table_rows in rows.items():
                if table == "revision":
                    continue
                for row in table_rows:
                    columns, values = ", ".join(row), ", ".join(f":{column}" for column in row)
                    statement = text(
                        f"INSERT INTO {table} ({columns}) VALUES ({values})"  # noqa: S608 - our own names
                    ).bindparams(
                        *(bindparam(c, type_=JSON()) for c in row if c in _JSON_COLUMNS),
                        *(bindparam(c, type_=UTCDateTime()) for c in row if c in _TIME_COLUMNS),
                    )
                    connection.execute(statement, row)
    finally:
        engine.dispose()


def _read(connection: Connection, name: str) -> list[dict[str, Any]]:
    """Every row of a table, JSON decoded and times as aware UTC, whatever the dialect."""
    table = Table(name, MetaData(), autoload_with=connection)
    rows = []
    for row in connection.execute(select(table).order_by(*table.primary_key.columns)).mappings():
        values = dict(row)
        for column in _JSON_COLUMNS & values.keys():
            if isinstance(values[column], str):
                values[column] = json.loads(values[column])
        for column in _TIME_COLUMNS & values.keys():
            moment = values[column]
            if isinstance(moment, datetime):
                values[column] = (
                    moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
                )
        rows.append(values)
    return rows


def _tables(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            names = MetaData()
            names.reflect(connection)
            return {name: _read(connection, name) for name in names.tables if name != "alembic_version"}
    finally:
        engine.dispose()


def _expected_after(revision: str, expected: dict[str, list[dict[str, Any]]]) -> None:
    assert revision in _CHANGES, f"migration {revision} is new: say in _CHANGES what it does to old rows"
    for table, change in _CHANGES[revision].items():
        if isinstance(change, list):
            expected[table] = change
        else:
            expected[table] = [{**row, **change} for row in expected[table]]


def test_rows_of_the_first_release_go_through_every_migration_intact_and_still_serve(
    database_url: str,
) -> None:
    _upgrade(database_url, "0001")
    _insert(database_url, _ROWS_0001)
    expected = {table: [dict(row) for row in rows] for table, rows in _ROWS_0001.items()}
    assert _tables(database_url) == expected
    later = [script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()]
    later.reverse()
    assert later[0] == "0001"
    for revision in later[1:]:
        _upgrade(database_url, revision)
        _expected_after(revision, expected)
        assert _tables(database_url) == expected, f"rows after migration {revision}"

    api = ControlApi(database_url)  # at head already: opening it migrates nothing
    try:
        # The old credentials still work (issued without an expiry: they never expire).
        got = api.ok("GET", "/v1/tenants/acme/loadbalancers/web", _TENANT_SECRET)
        assert (got["id"], got["version"], got["addresses"]) == (_LB_ID, 2, ["203.0.113.1"])
        # 0001 wrote durations as bare seconds; a stored spec is read as such (model/duration.py).
        old_spec = LoadBalancerSpec.model_validate(_SPEC_0001, context=STORED_SECONDS)
        assert got["spec"] == old_spec.model_dump(mode="json")
        desired = api.ok("GET", "/v1/pops/fra1/desired", _POP_SECRET)
        served = [(lb["id"], lb["vips"], lb["listeners"][0]["port"]) for lb in desired["load_balancers"]]
        assert served == [(_LB_ID, ["203.0.113.1"], 443)]
        listed = api.ok("GET", "/v1/tenants/acme/loadbalancer-versions", _TENANT_SECRET)
        assert [(item["name"], item["spec_digest"]) for item in listed] == [("web", None)]

        # Its next PUT fills the digest in and keeps its address. The 0001 JSON lacks the fields
        # added since, so that PUT stores today's form as a new version; the one after is a no-op.
        put = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", _TENANT_SECRET, json=spec("web"))
        assert put["addresses"] == ["203.0.113.1"]
        listed = api.ok("GET", "/v1/tenants/acme/loadbalancer-versions", _TENANT_SECRET)
        assert [(item["name"], item["spec_digest"]) for item in listed] == [
            ("web", LoadBalancerSpec.model_validate(spec("web")).digest())
        ]
        again = api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", _TENANT_SECRET, json=spec("web"))
        assert again["version"] == put["version"]

        # The old address row still holds 203.0.113.1: a new load balancer gets the next one.
        other = api.ok("PUT", "/v1/tenants/acme/loadbalancers/api", _TENANT_SECRET, json=spec("api"))
        assert other["addresses"] == ["203.0.113.2"]
    finally:
        api.close()
