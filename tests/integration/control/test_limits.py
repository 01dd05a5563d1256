"""Every limit of the control plane, tried through a real ``anycastlb control`` process: at the
limit a request is accepted, one over it is refused with a message naming the limit, its value
and the option that raises it; a body too large is refused before the server has read it; tenant
quotas hold under concurrent creates, on SQLite and PostgreSQL."""

import itertools
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.control_plane import ControlProcess, listener, spec

pytestmark = pytest.mark.integration

_SMALL = (
    "--max-body-bytes", "20000",
    "--max-listeners", "3",
    "--max-backends-per-listener", "10",
    "--max-backends-per-load-balancer", "25",
    "--max-load-balancers-per-tenant", "5",
    "--max-addresses-per-tenant", "6",
)  # fmt: skip


def _backends(count: int, port: int = 30443) -> tuple[tuple[str, int], ...]:
    return tuple((f"10.1.{index // 250}.{index % 250 + 1}", port) for index in range(count))


def _lb(name: str, *per_listener: int) -> dict[str, Any]:
    return spec(name, listeners=[listener(1000 + i, _backends(n)) for i, n in enumerate(per_listener)])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def small_control(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlProcess]:
    """One control plane with small limits and a platform pool per store, shared by this module's
    tests (each gets a tenant of its own): starting one costs ~1.7 s."""
    workdir = tmp_path_factory.mktemp(f"limits-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'control.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    with ControlProcess(workdir, url, extra_args=_SMALL) as control, control.client() as admin:
        assert (
            admin.post("/v1/pools", json={"name": "platform", "networks": ["10.99.0.0/24"]}).status_code
            == 201
        )
        yield control


_TENANTS = itertools.count(1)


@pytest.fixture
def small(small_control: ControlProcess) -> tuple[ControlProcess, str, str]:
    """The shared control plane, a new tenant's token, and the tenant's name."""
    tenant = f"t{next(_TENANTS)}"
    with small_control.client() as admin:
        assert admin.post("/v1/tenants", json={"name": tenant}).status_code == 201
        token = admin.post(f"/v1/tenants/{tenant}/tokens", json={}).json()["secret"]
    return small_control, str(token), tenant


def _create(control: ControlProcess, token: str, tenant: str, body: dict[str, Any]) -> httpx.Response:
    with control.client(token) as client:
        return client.post(f"/v1/tenants/{tenant}/loadbalancers", json=body)


@pytest.mark.parametrize(
    ("at_limit", "over", "named"),
    [
        ((10,), (11,), "listener 1000 has 11 backends; the limit is 10 backends per listener"),
        ((1, 1, 1), (1, 1, 1, 1), "the spec has 4 listeners; the limit is 3 listeners per load balancer"),
        (
            (10, 10, 5),
            (10, 10, 6),
            "the spec has 26 backends in all; the limit is 25 backends per load balancer",
        ),
    ],
    ids=["backends-per-listener", "listeners", "backends-per-load-balancer"],
)
def test_a_spec_at_its_limit_is_accepted_and_one_over_is_refused_naming_the_limit(
    small: tuple[ControlProcess, str, str], at_limit: tuple[int, ...], over: tuple[int, ...], named: str
) -> None:
    control, token, tenant = small
    assert _create(control, token, tenant, _lb("at", *at_limit)).status_code == 201
    refused = _create(control, token, tenant, _lb("over", *over))
    assert refused.status_code == 422
    assert named in refused.json()["detail"]
    assert "anycastlb control --max-" in refused.json()["detail"]
    with control.client(token) as client:  # an update is held to the same limits
        updated = client.put(f"/v1/tenants/{tenant}/loadbalancers/at", json=_lb("at", *over))
    assert updated.status_code == 422 and named in updated.json()["detail"]


def test_a_tenant_at_its_load_balancer_quota_is_refused_with_409_naming_it(
    small: tuple[ControlProcess, str, str],
) -> None:
    control, token, tenant = small
    for index in range(5):
        assert _create(control, token, tenant, _lb(f"lb{index}", 1)).status_code == 201
    refused = _create(control, token, tenant, _lb("lb5", 1))
    assert refused.status_code == 409
    assert "holds 5 load balancers; the limit is 5 load balancers per tenant" in refused.json()["detail"]
    assert "--max-load-balancers-per-tenant" in refused.json()["detail"]


def test_a_tenant_at_its_address_quota_cannot_reserve_or_allocate_another(
    small: tuple[ControlProcess, str, str],
) -> None:
    control, token, tenant = small
    with control.client(token) as client:
        for _ in range(5):
            assert client.post(f"/v1/tenants/{tenant}/ips/reserve", json={}).status_code == 201
        two = _lb("two", 1) | {"ips": {"count": 2}}
        refused = client.post(f"/v1/tenants/{tenant}/loadbalancers", json=two)
        assert refused.status_code == 409
        assert "holds 5 addresses and this needs 2 more; the limit is 6 addresses" in refused.json()["detail"]
        assert client.post(f"/v1/tenants/{tenant}/ips/reserve", json={}).status_code == 201  # the 6th
        refused = client.post(f"/v1/tenants/{tenant}/ips/reserve", json={})
        assert refused.status_code == 409 and "--max-addresses-per-tenant" in refused.json()["detail"]


def test_the_admin_overrides_a_tenants_quota_and_the_refusal_says_so(
    small: tuple[ControlProcess, str, str],
) -> None:
    control, token, tenant = small
    with control.client() as admin:
        changed = admin.put(f"/v1/tenants/{tenant}/limits", json={"load_balancers": 1})
        assert changed.status_code == 200
        assert changed.json() | {"addresses_held": 0} == {
            "tenant": tenant,
            "load_balancers": 1,
            "addresses": 6,
            "load_balancers_held": 0,
            "addresses_held": 0,
            "overridden": ["load_balancers"],
        }
    assert _create(control, token, tenant, _lb("one", 1)).status_code == 201
    refused = _create(control, token, tenant, _lb("two", 1))
    assert refused.status_code == 409
    assert (
        f"set for tenant {tenant!r} by the admin: PUT /v1/tenants/{tenant}/limits" in refused.json()["detail"]
    )
    with control.client(token) as client:
        assert client.put(f"/v1/tenants/{tenant}/limits", json={}).status_code == 403  # only the admin
        assert client.get(f"/v1/tenants/{tenant}/limits").json()["load_balancers_held"] == 1


def test_the_limits_endpoint_shows_the_limits_in_force(small: tuple[ControlProcess, str, str]) -> None:
    control, token, _tenant = small
    with control.client(token) as client:
        assert client.get("/v1/limits").json() == {
            "max_body_bytes": 20000,
            "listeners_per_load_balancer": 3,
            "backends_per_listener": 10,
            "backends_per_load_balancer": 25,
            "load_balancers_per_tenant": 5,
            "addresses_per_tenant": 6,
        }


@pytest.mark.parametrize("quota", ["load_balancers", "addresses"])
def test_concurrent_creates_never_overshoot_a_tenant_quota(
    small: tuple[ControlProcess, str, str], quota: str
) -> None:
    control, token, tenant = small
    bodies = [_lb(f"race{index}", 1) for index in range(24)]
    if quota == "addresses":
        with control.client() as admin:  # room for 24 load balancers: the 6 addresses are the bound
            assert admin.put(f"/v1/tenants/{tenant}/limits", json={"load_balancers": 100}).status_code == 200
    with ThreadPoolExecutor(12) as pool:
        statuses = sorted(pool.map(lambda body: _create(control, token, tenant, body).status_code, bodies))
    allowed = 5 if quota == "load_balancers" else 6
    assert statuses == [201] * allowed + [409] * (24 - allowed)
    with control.client(token) as client:
        held = client.get(f"/v1/tenants/{tenant}/limits").json()
    assert held[f"{quota}_held"] == allowed


def _raw_request(
    control: ControlProcess, token: str, tenant: str, headers: str, first_part: bytes
) -> tuple[bytes, bool]:
    """Send the head and the first part of a body, then read the answer without sending the rest.
    Returns (answer, whether the server closed the connection after it)."""
    with socket.create_connection(("127.0.0.1", control.port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /v1/tenants/{tenant}/loadbalancers HTTP/1.1\r\nHost: test\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n{headers}\r\n"
            ).encode()
            + first_part
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                return answer, True
            answer += chunk
        sock.settimeout(5)
        try:
            closed = sock.recv(65536) == b""
        except (ConnectionResetError, TimeoutError):
            closed = False
        return answer, closed


def test_a_body_over_the_limit_by_content_length_is_refused_before_it_is_sent(
    small: tuple[ControlProcess, str, str],
) -> None:
    control, token, tenant = small
    answer, closed = _raw_request(control, token, tenant, "Content-Length: 1000000000\r\n", b'{"name": "x", ')
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"1,000,000,000 bytes (Content-Length); the limit is 20,000 bytes" in answer
    assert b"anycastlb control --max-body-bytes" in answer
    assert closed


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(
    small: tuple[ControlProcess, str, str],
) -> None:
    control, token, tenant = small
    piece = b" " * 4096
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(6))  # 24 KiB, no last chunk
    answer, closed = _raw_request(control, token, tenant, "Transfer-Encoding: chunked\r\n", chunks)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"over 20,000 bytes (counted as it streamed in)" in answer
    assert closed


def test_a_body_just_under_the_limit_is_parsed_as_usual(small: tuple[ControlProcess, str, str]) -> None:
    control, token, tenant = small
    body = _lb("padded", 10)
    with control.client(token) as client:
        content = httpx.Request("POST", "/", json=body).content
        padded = content + b" " * (20000 - len(content))
        answer = client.post(
            f"/v1/tenants/{tenant}/loadbalancers",
            content=padded,
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 201, answer.text


def test_the_default_limits_accept_a_500_node_dual_stack_cluster_with_three_ports(tmp_path: Path) -> None:
    nodes = [f"10.2.{index // 250}.{index % 250 + 1}" for index in range(500)]
    nodes += [f"2001:db8:2::{index + 1:x}" for index in range(500)]
    listeners = [listener(port, tuple((node, 30000 + port) for node in nodes)) for port in (80, 443, 8443)]
    with ControlProcess(tmp_path) as control, control.client() as admin:
        assert (
            admin.post("/v1/pools", json={"name": "platform", "networks": ["10.99.0.0/24"]}).status_code
            == 201
        )
        assert admin.post("/v1/tenants", json={"name": "acme"}).status_code == 201
        created = admin.post("/v1/tenants/acme/loadbalancers", json=spec("big", listeners=listeners))
        assert created.status_code == 201, created.text[:300]
        assert sum(len(item["backends"]) for item in created.json()["spec"]["listeners"]) == 3000
        over = [listener(80, _backends(5001))]
        refused = admin.post("/v1/tenants/acme/loadbalancers", json=spec("over", listeners=over))
        assert refused.status_code == 422
        assert "the limit is 5,000 backends per listener" in refused.json()["detail"]
