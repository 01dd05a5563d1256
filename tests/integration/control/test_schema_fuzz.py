"""Schemathesis against the control plane's own OpenAPI schema: whatever a client sends that the
schema allows (and much it does not), the answer is never a 5xx, and it is what the schema says:
a documented status code, the documented content type, a body that matches the documented schema
(errors included: ``{"detail": "..."}``, see control/api/errors.py) and the documented headers.

Runs as the admin and as a tenant, against a store seeded with a pool, a tenant (with a token and a
reserved address), a PoP and a load balancer; on SQLite and on PostgreSQL, which enforces what
SQLite does not (string lengths, 32-bit integers).

Generated path parameters almost never name a real object (the coverage phase fills them with
"0"), so the request ends at a 404 before its body reaches the store. :func:`_aimed` therefore
points the path of every coverage-phase case (but the parameter the case is about) and of every
other fuzzing case at the seeded objects; deletes and rotations keep their generated names, so
that the seeded objects live through the run. The coverage phase (the boundary values of every
parameter, ~3,800 requests per caller and store) runs in full; ``max_examples`` bounds only the
random fuzzing phase.
"""

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.schemas import OpenApiSchema

from anycastlb.control.tokens import token_id_of
from tests.support.control_plane import ADMIN_TOKEN, ControlApi, spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_TOKENS: dict[str, str] = {}
_SEEDED: dict[str, str] = {}  # path parameter -> the seeded object it names
_TURN = itertools.count()
_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _seeded_schema(database_url: str) -> Iterator[OpenApiSchema]:
    api = ControlApi(database_url)
    api.pool("platform", "203.0.113.0/24", "2001:db8::/64")
    _TOKENS["tenant"] = api.tenant("acme")
    _TOKENS["admin"] = ADMIN_TOKEN
    api.pop("fra")
    api.ok("POST", "/v1/tenants/acme/loadbalancers", _TOKENS["tenant"], json=spec("web"))
    reserved = api.ok("POST", "/v1/tenants/acme/ips/reserve", _TOKENS["tenant"], json={})
    _SEEDED.update(
        tenant="acme",
        name="web",
        pool="platform",
        pop="fra",
        token_id=token_id_of(_TOKENS["tenant"]),
        address=reserved["address"],
    )
    yield schemathesis.openapi.from_asgi(
        "/openapi.json", api.app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    api.close()


@pytest.fixture
def control_schema(database_url: str) -> Iterator[OpenApiSchema]:
    """On SQLite and on PostgreSQL (tests/conftest.py)."""
    yield from _seeded_schema(database_url)


@pytest.fixture
def sqlite_control_schema(tmp_path: Path) -> Iterator[OpenApiSchema]:
    yield from _seeded_schema(f"sqlite:///{tmp_path / 'fuzz.db'}")


schema = schemathesis.pytest.from_fixture("control_schema")
# The tenant's run checks what a tenant may do and see, which the store does not change; what
# PostgreSQL refuses and SQLite does not, the admin's run (every route, both stores) finds.
tenant_schema = schemathesis.pytest.from_fixture("sqlite_control_schema")


def _bounded(case: Any) -> None:
    """A long poll may wait up to 60 s by contract (30 s without a timeout); the fuzzer does not
    need to. A watch without a timeout (and a `since` above every version) would wait 30 s."""
    if case.query and ("timeout" in case.query or case.query.get("watch") not in (None, False, "false")):
        case.query["timeout"] = 0.05


def _aimed(case: Any) -> None:
    """Point the case's path at the seeded objects (the module docstring says which cases)."""
    if not case.path_parameters or case.method == "DELETE" or case.path.endswith("/rotate"):
        return
    phase = case.meta.phase if case.meta is not None else None
    about = None
    if phase is not None and phase.name == TestPhase.COVERAGE:
        if phase.data.parameter_location == ParameterLocation.PATH:
            about = phase.data.parameter  # a case about this path parameter keeps its value
    elif next(_TURN) % 2:
        return
    case.path_parameters = {
        key: _SEEDED[key] if key in _SEEDED and key != about else value
        for key, value in case.path_parameters.items()
    }


def _call(case: Any, caller: str) -> None:
    _aimed(case)
    _bounded(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {_TOKENS[caller]}"}, checks=_CHECKS)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_admin_request_gets_an_answer_the_schema_documents(case: Any) -> None:
    _call(case, "admin")


@tenant_schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_tenant_request_gets_an_answer_the_schema_documents(case: Any) -> None:
    _call(case, "tenant")
