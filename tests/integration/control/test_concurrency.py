"""No address is ever handed out twice, even to concurrent requests spread over two control plane
replicas sharing one PostgreSQL database (and on SQLite, with one process)."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.control_plane import ControlProcess, spec
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_POOL = "10.99.0.0/26"  # 62 usable addresses (network and broadcast are skipped)
_CAPACITY = 62
_REQUESTS = 100


def _seed(replica: ControlProcess) -> str:
    with replica.client() as admin:
        assert admin.post("/v1/pools", json={"name": "platform", "networks": [_POOL]}).status_code == 201
        assert admin.post("/v1/tenants", json={"name": "acme"}).status_code == 201
        assert admin.post("/v1/tenants", json={"name": "globex"}).status_code == 201
        acme = admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"]
    return str(acme)


def _race(replicas: list[ControlProcess], token: str) -> list[httpx.Response]:
    clients = [replica.client(token) for replica in replicas]

    def create(index: int) -> httpx.Response:
        client = clients[index % len(clients)]
        return client.post("/v1/tenants/acme/loadbalancers", json=spec(f"lb{index}"))

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(create, range(_REQUESTS)))
    for client in clients:
        client.close()
    return responses


def _assert_no_double_allocation(
    replica: ControlProcess, token: str, responses: list[httpx.Response]
) -> None:
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(201) == _CAPACITY, statuses
    assert set(statuses) == {201, 409}, f"unexpected statuses: {sorted(set(statuses))}"
    exhausted = [r.json()["detail"] for r in responses if r.status_code == 409]
    assert all("no free IPv4 address" in detail for detail in exhausted), exhausted[:3]
    addresses = [r.json()["addresses"][0] for r in responses if r.status_code == 201]
    assert len(set(addresses)) == len(addresses) == _CAPACITY
    with replica.client(token) as client:
        held = client.get("/v1/tenants/acme/ips").json()
    assert sorted(ip["address"] for ip in held) == sorted(addresses)
    # One audit row per created load balancer, none for the refused ones (the row commits with the
    # change), numbered in commit order.
    with replica.client() as admin:
        rows = admin.get("/v1/audit", params={"type": "load_balancer", "limit": 1000}).json()["entries"]
    created = {r.headers["X-Request-Id"] for r in responses if r.status_code == 201}
    assert sorted(row["request_id"] for row in rows) == sorted(created)
    assert [row["at"] for row in rows] == sorted((row["at"] for row in rows), reverse=True)


def test_two_replicas_on_postgresql_never_allocate_an_address_twice(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    database = postgres.new_database()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        ControlProcess(tmp_path / "a", database) as first,
        ControlProcess(tmp_path / "b", database) as second,
    ):
        token = _seed(first)
        responses = _race([first, second], token)
        _assert_no_double_allocation(second, token, responses)


def test_one_sqlite_process_never_allocates_an_address_twice(tmp_path: Path) -> None:
    with ControlProcess(tmp_path) as replica:
        token = _seed(replica)
        _assert_no_double_allocation(replica, token, _race([replica], token))


def test_a_specific_address_raced_by_two_tenants_goes_to_exactly_one(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    database = postgres.new_database()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        ControlProcess(tmp_path / "a", database) as first,
        ControlProcess(tmp_path / "b", database) as second,
    ):
        acme = _seed(first)
        with first.client() as admin:
            globex = admin.post("/v1/tenants/globex/tokens", json={}).json()["secret"]
        calls = [(first, acme, "acme"), (second, globex, "globex")] * 10

        def reserve(call: tuple[ControlProcess, str, str]) -> int:
            replica, token, tenant = call
            with replica.client(token) as client:
                return client.post(
                    f"/v1/tenants/{tenant}/ips/reserve", json={"address": "10.99.0.7"}
                ).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(reserve, calls))
        assert statuses.count(201) == 1, statuses
        assert set(statuses) == {201, 409}, statuses
