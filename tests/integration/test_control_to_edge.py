"""The tiers together, all real processes on loopback: ``anycastlb control`` (SQLite), an edge
following it (``anycastlb edge --control``), nginx nodes speaking the PROXY protocol.

Sentences from the issue: a load balancer created through the API is served within 2 s; with the
control plane stopped the edge keeps serving, restarts from its last-known-good state and serves
again; when the control plane returns the edge catches up with what changed meanwhile.
"""

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.ports import free_port
from tests.support.control_plane import ControlProcess, listener, spec
from tests.support.controlled_edge import ControlledEdge

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVED_WITHIN = 10.0  # a deadline for a loaded machine, far below the edge's 30 s long poll
_POOL = "127.77.0.0/24"  # loopback: every 127/8 address is local, the edge binds it with FREEBIND


def _get(address: str, port: int, timeout: float = 1.0) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}/", timeout=timeout) as response:
        return str(response.read().decode())


def _served_within(address: str, port: int, seconds: float) -> float:
    """Seconds until ``address:port`` answers through the edge; fails after ``seconds``."""
    started = time.monotonic()
    while True:
        try:
            _get(address, port, timeout=0.5)
            return time.monotonic() - started
        except (OSError, urllib.error.URLError):
            if time.monotonic() - started > seconds:
                raise AssertionError(f"{address}:{port} not served within {seconds}s") from None
            time.sleep(0.02)


def _lb(name: str, port: int, nodes: list[NginxBackend], **extra: Any) -> dict[str, Any]:
    backends = tuple((node.address, node.port) for node in nodes)
    return spec(
        name, listeners=[listener(port, backends, proxy_protocol="v1", health={"type": "tcp"})], **extra
    )


def test_api_to_edge_and_static_stability(tmp_path: Path, nginx: Callable[..., NginxBackend]) -> None:
    nodes = [nginx("n1"), nginx("n2")]
    control_port = free_port()
    (tmp_path / "cp").mkdir()
    control = ControlProcess(tmp_path / "cp", port=control_port).start()
    try:
        with control.client() as admin:
            admin.post("/v1/pools", json={"name": "lab", "networks": [_POOL]}).raise_for_status()
            admin.post("/v1/tenants", json={"name": "acme"}).raise_for_status()
            acme_token = admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"]
            pop_token = admin.post("/v1/pops", json={"name": "fra"}).json()["token"]["secret"]
        (tmp_path / "edge").mkdir()
        edge = ControlledEdge(tmp_path / "edge", control.url, pop_token).start()
        try:
            web_port = free_port()
            with control.client(acme_token) as acme:
                created = acme.post("/v1/tenants/acme/loadbalancers", json=_lb("web", web_port, nodes))
                assert created.status_code == 201, created.text
                vip = created.json()["addresses"][0]
                # 1. created through the API, served (at once: the long poll wakes), with the client's
                #    address intact
                took = _served_within(vip, web_port, SERVED_WITHIN)
                assert "client=127.0.0.1" in _get(vip, web_port)
                print(f"create -> served in {took * 1000:.0f} ms")
                # the edge reports back; the API aggregates it
                deadline = time.monotonic() + 10
                while not acme.get("/v1/tenants/acme/loadbalancers/web/status").json()["ready"]:
                    assert time.monotonic() < deadline, "status never became ready"
                    time.sleep(0.2)

            # 2. control plane gone: the edge keeps serving
            control.stop()
            for _ in range(20):
                assert "node=" in _get(vip, web_port)

            # 3. the edge restarts while the control plane is down: it serves from disk
            edge.stop()
            edge.start()
            _served_within(vip, web_port, SERVED_WITHIN)
            assert "starting_from_last_known_good" in edge.log()

            # 4. the control plane returns with a change made meanwhile (written to its store
            #    by a second instance): the edge catches up
            control = ControlProcess(tmp_path / "cp", port=control_port).start()
            api_port = free_port()
            with control.client(acme_token) as acme:
                acme.post(
                    "/v1/tenants/acme/loadbalancers", json=_lb("api", api_port, nodes)
                ).raise_for_status()
                api_vip = acme.get("/v1/tenants/acme/loadbalancers/api").json()["addresses"][0]
            # the follower backs off up to 5 s while the control plane is down
            _served_within(api_vip, api_port, SERVED_WITHIN + 5.0)
            assert "node=" in _get(vip, web_port)  # the first one never stopped

            # 5. deleting it through the API stops it at the edge
            with control.client(acme_token) as acme:
                acme.delete("/v1/tenants/acme/loadbalancers/api").raise_for_status()
            deadline = time.monotonic() + SERVED_WITHIN
            while True:
                try:
                    _get(api_vip, api_port, timeout=0.3)
                except (OSError, urllib.error.URLError):
                    break
                assert time.monotonic() < deadline, "deleted load balancer still served"
                time.sleep(0.05)
        finally:
            edge.stop()
    finally:
        control.stop()
