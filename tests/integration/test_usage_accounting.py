"""Traffic accounting end to end, all real processes on loopback: ``anycastlb control`` (SQLite and
PostgreSQL), an edge following it, a PROXY-protocol backend. Two tenants' load balancers carry
known byte counts; the usage API (and ``anycastlb usage``) must answer exactly what the clients
sent and received, through a control plane outage (reports fail meanwhile) and an edge restart
right after traffic (its last counts travel in the report it sends when it stops).

"Bytes in" is what a client sent to the VIP, "bytes out" what it received: the PROXY header the
edge adds towards the backend is not counted (the backend receives more than "bytes in").
"""

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anycastlb.cli import app
from anycastlb.lab.ports import free_port
from tests.support.control_plane import ADMIN_TOKEN, ControlProcess, listener, spec
from tests.support.controlled_edge import ControlledEdge
from tests.support.stream_backend import BLOCK, StreamBackend

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_POOL = "127.79.0.0/24"  # loopback: the edge binds any 127/8 address with FREEBIND
_EXACT_WITHIN = 30.0  # a report every 5 s, counters folded every 1 s; a loaded machine
View = tuple[str | None, str, str]  # the tenant it is limited to (None: all), token, path


@dataclass
class Sent:
    bytes_in: int = 0
    bytes_out: int = 0
    connections: int = 0

    def key(self) -> tuple[int, int, int]:
        return (self.bytes_in, self.bytes_out, self.connections)


def _read_to_end(sock: socket.socket) -> int:
    received = 0
    view = memoryview(bytearray(1 << 16))
    while count := sock.recv_into(view):
        received += count
    return received


def _connect(vip: str, port: int, deadline: float = 10.0) -> socket.socket:
    """A connection through the edge (retried while the edge starts serving the VIP)."""
    until = time.monotonic() + deadline
    while True:
        try:
            return socket.create_connection((vip, port), timeout=10)
        except OSError:
            if time.monotonic() > until:
                raise
            time.sleep(0.05)


def _upload(vip: str, port: int, size: int, tally: Sent) -> None:
    with _connect(vip, port) as sock:
        request = b"UPLOAD\n" + (BLOCK * (size // len(BLOCK) + 1))[:size]
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = _read_to_end(sock)
    assert received > 0, "the backend answers an upload with its count and digest"
    tally.bytes_in += len(request)
    tally.bytes_out += received
    tally.connections += 1


def _download(vip: str, port: int, size: int, tally: Sent) -> None:
    with _connect(vip, port) as sock:
        request = f"DOWNLOAD {size}\n".encode()
        sock.sendall(request)
        received = _read_to_end(sock)
    assert received == size
    tally.bytes_in += len(request)
    tally.bytes_out += received
    tally.connections += 1


def _traffic(targets: dict[str, tuple[str, int, Sent]], round_: int) -> None:
    """Different, known amounts per load balancer and round (each counted by the client)."""
    for index, (vip, port, tally) in enumerate(targets.values()):
        _upload(vip, port, 100_000 * (index + 1) + round_ * 7_919, tally)
        _download(vip, port, 250_000 * (index + 1) + round_ * 104_729, tally)
        _download(vip, port, 1 + round_, tally)


def _usage(control: ControlProcess, token: str, path: str) -> dict[str, tuple[int, int, int]]:
    with control.client(token) as client:
        answer = client.get(path, params={"since": "2020-01-01T00:00:00Z", "step": "1000h"})
    assert answer.status_code == 200, answer.text
    return {
        f"{s['tenant']}/{s['load_balancer']}": (
            s["total"]["bytes_in"],
            s["total"]["bytes_out"],
            s["total"]["connections"],
        )
        for s in answer.json()["series"]
    }


def _exact(control: ControlProcess, expected: dict[str, tuple[int, int, int]], views: list[View]) -> None:
    """Wait until every view's totals are exactly the clients' (a tenant's view: its own only)."""
    deadline = time.monotonic() + _EXACT_WITHIN
    wanted = [
        {key: value for key, value in expected.items() if tenant is None or key.startswith(f"{tenant}/")}
        for tenant, _, _ in views
    ]
    seen: list[dict[str, tuple[int, int, int]]] = []
    while time.monotonic() < deadline:
        seen = [_usage(control, token, path) for _, token, path in views]
        if seen == wanted:
            return
        time.sleep(0.25)
    raise AssertionError(f"usage {seen} != what the clients relayed {wanted}")


def test_usage_equals_what_clients_relayed_across_an_outage_and_an_edge_restart(
    tmp_path: Path, database_url: str, stream_backend: StreamBackend
) -> None:
    (tmp_path / "cp").mkdir()
    control = ControlProcess(tmp_path / "cp", database=database_url).start()
    edge: ControlledEdge | None = None
    try:
        with control.client() as admin:
            admin.post("/v1/pools", json={"name": "lab", "networks": [_POOL]}).raise_for_status()
            tokens = {}
            for tenant in ("acme", "globex"):
                admin.post("/v1/tenants", json={"name": tenant}).raise_for_status()
                tokens[tenant] = admin.post(f"/v1/tenants/{tenant}/tokens", json={}).json()["secret"]
            pop_token = admin.post("/v1/pops", json={"name": "fra"}).json()["token"]["secret"]
        targets: dict[str, tuple[str, int, Sent]] = {}
        for tenant, name in (("acme", "web"), ("globex", "shop")):
            port = free_port()
            body = spec(
                name,
                listeners=[listener(port, (("127.0.0.1", stream_backend.port),), proxy_protocol="v2")],
            )
            with control.client(tokens[tenant]) as client:
                created = client.post(f"/v1/tenants/{tenant}/loadbalancers", json=body)
            assert created.status_code == 201, created.text
            targets[f"{tenant}/{name}"] = (created.json()["addresses"][0], port, Sent())
        (tmp_path / "edge").mkdir()
        edge = ControlledEdge(tmp_path / "edge", control.url, pop_token).start()
        views: list[View] = [
            ("acme", tokens["acme"], "/v1/tenants/acme/usage"),
            ("globex", tokens["globex"], "/v1/tenants/globex/usage"),
            (None, ADMIN_TOKEN, "/v1/usage"),
        ]

        def expected() -> dict[str, tuple[int, int, int]]:
            return {key: tally.key() for key, (_, _, tally) in targets.items()}

        # 1. traffic, reported
        _traffic(targets, 1)
        _exact(control, expected(), views)
        # 2. the control plane is away: reports fail, the edge keeps counting; totals exact after
        failures = edge.log().count("status_report_failed")
        control.stop()
        _traffic(targets, 2)
        edge.wait_for_log("status_report_failed", timeout=30, count=failures + 1)  # a report failed
        control.start()
        _exact(control, expected(), views)
        # 3. traffic, then at once an edge restart (a new counter epoch), then more traffic
        _traffic(targets, 3)
        edge.stop()
        edge.start()
        _traffic(targets, 4)
        _exact(control, expected(), views)
        assert "last_report_timeout" not in edge.log()
        # the backend received more than "bytes in": the PROXY headers, which are not counted
        assert len(stream_backend.headers) == sum(tally.connections for _, _, tally in targets.values())
        # the CLI reads the same numbers: a tenant sees only its own
        cli = CliRunner().invoke(
            app,
            ["usage", "--since", "1h", "--json"],
            env={"ANYCASTLB_URL": control.url, "ANYCASTLB_TOKEN": tokens["globex"], "ANYCASTLB_TENANT": None},
            catch_exceptions=False,
        )
        assert cli.exit_code == 0, cli.output
        (series,) = json.loads(cli.output)["series"]
        assert (series["tenant"], series["load_balancer"]) == ("globex", "shop")
        assert series["total"]["bytes_in"] == targets["globex/shop"][2].bytes_in
        table = CliRunner().invoke(
            app,
            ["usage", "--since", "1h", "--step", "5m"],
            env={"ANYCASTLB_URL": control.url, "ANYCASTLB_TOKEN": ADMIN_TOKEN, "COLUMNS": None},
            catch_exceptions=False,
        )
        assert table.exit_code == 0, table.output
        for key, (vip, _, tally) in targets.items():
            line = next(row for row in table.output.splitlines() if vip in row)
            assert line.split() == [
                *key.split("/"),
                vip,
                str(tally.bytes_in),
                str(tally.bytes_out),
                str(tally.connections),
            ]
        with control.client() as admin:
            metrics = admin.get("/metrics").text
        assert 'anycastlb_control_accounting_last_report_timestamp_seconds{pop="fra"}' in metrics
    finally:
        if edge is not None:
            edge.stop()
        control.stop()
