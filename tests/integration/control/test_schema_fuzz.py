"""Schemathesis against the control plane's own OpenAPI schema: whatever a client sends that the
schema allows (and much it does not), the answer is never a 5xx, and it is what the schema says:
a documented status code, the documented content type, a body that matches the documented schema
(errors included: ``{"detail": "..."}``, see control/api/errors.py) and the documented headers.

Runs as the admin and as a tenant, against a store seeded with a pool, a tenant, a PoP and a load
balancer, so generated requests reach real objects as well as missing ones.
"""

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
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.support.control_plane import ADMIN_TOKEN, ControlApi, spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_TOKENS: dict[str, str] = {}
_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def control_schema(tmp_path: Path) -> Iterator[OpenApiSchema]:
    api = ControlApi(f"sqlite:///{tmp_path / 'fuzz.db'}")
    api.pool("platform", "203.0.113.0/24", "2001:db8::/64")
    _TOKENS["tenant"] = api.tenant("acme")
    _TOKENS["admin"] = ADMIN_TOKEN
    api.pop("fra")
    api.ok("POST", "/v1/tenants/acme/loadbalancers", _TOKENS["tenant"], json=spec("web"))
    yield schemathesis.openapi.from_asgi(
        "/openapi.json", api.app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    api.close()


schema = schemathesis.pytest.from_fixture("control_schema")


def _bounded(case: Any) -> None:
    """A long poll may wait up to 60 s by contract; the fuzzer does not need to."""
    if case.query and "timeout" in case.query:
        case.query["timeout"] = 0.05


def _call(case: Any, caller: str) -> None:
    _bounded(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {_TOKENS[caller]}"}, checks=_CHECKS)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_admin_request_gets_an_answer_the_schema_documents(case: Any) -> None:
    _call(case, "admin")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_tenant_request_gets_an_answer_the_schema_documents(case: Any) -> None:
    _call(case, "tenant")
