"""The edge's own defence behind the control plane's backend policy, with real processes: a control
plane whose lab switch lets loopback backends through (as a misconfigured or older one would), an
edge following it, and one nginx node.

A tenant's load balancer whose backend is the edge's own metrics endpoint is not served (its VIP
never answers with the edge's metrics) and is reported as a listener problem, while another tenant's
load balancer on the same PoP is served as usual.
"""

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.ports import free_port
from tests.support.control_plane import ControlProcess, listener, spec
from tests.support.controlled_edge import ControlledEdge

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_POOL = "127.78.0.0/24"


def _get(address: str, port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=0.5) as response:
        return str(response.read().decode())


def _wait(what: str, seconds: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} not within {seconds}s"
        time.sleep(0.05)


def _answers(address: str, port: int, path: str = "/metrics") -> str | None:
    try:
        return _get(address, port, path)
    except (OSError, urllib.error.URLError):
        return None


def test_a_backend_equal_to_the_edge_metrics_endpoint_is_refused_and_reported(
    tmp_path: Path, nginx: Callable[..., NginxBackend]
) -> None:
    node = nginx("n1")
    (tmp_path / "cp").mkdir()
    (tmp_path / "edge").mkdir()
    with ControlProcess(tmp_path / "cp") as control:
        with control.client() as admin:
            admin.post("/v1/pools", json={"name": "lab", "networks": [_POOL]}).raise_for_status()
            tokens = {}
            for tenant in ("acme", "mallory"):
                admin.post("/v1/tenants", json={"name": tenant}).raise_for_status()
                tokens[tenant] = admin.post(f"/v1/tenants/{tenant}/tokens", json={}).json()["secret"]
            pop_token = admin.post("/v1/pops", json={"name": "fra"}).json()["token"]["secret"]
        edge = ControlledEdge(tmp_path / "edge", control.url, pop_token).start()
        try:
            metrics_port = int(edge.config["metrics"]["port"])
            assert "anycastlb" in _get("127.0.0.1", metrics_port)  # the endpoint the attack aims at
            web_port, evil_port = free_port(), free_port()
            with control.client(tokens["acme"]) as acme:
                web = spec(
                    "web", listeners=[listener(web_port, ((node.address, node.port),), proxy_protocol="v1")]
                )
                web_vip = acme.post("/v1/tenants/acme/loadbalancers", json=web).json()["addresses"][0]
            with control.client(tokens["mallory"]) as mallory:
                evil = spec("evil", listeners=[listener(evil_port, (("127.0.0.1", metrics_port),))])
                created = mallory.post("/v1/tenants/mallory/loadbalancers", json=evil)
                assert created.status_code == 201, created.text  # the lab switch let it through
                evil_vip, evil_id = created.json()["addresses"][0], created.json()["id"]

                def reported() -> bool:
                    status = mallory.get("/v1/tenants/mallory/loadbalancers/evil/status").json()
                    problems = [problem for pop in status["pops"] for problem in pop["problems"]]
                    return any(
                        "metrics endpoint" in problem["message"] and problem["load_balancer"] == evil_id
                        for problem in problems
                    )

                _wait("the refused listener reported", 10, reported)
            _wait("acme's load balancer served", 5, lambda: _answers(web_vip, web_port, "/") is not None)
            for _ in range(20):
                answer = _answers(evil_vip, evil_port)
                assert answer is None or "anycastlb" not in answer, "the VIP served the edge's metrics"
                assert answer is None, f"the refused listener answered: {answer[:80]!r}"
            assert "metrics endpoint" in edge.log()
        finally:
            edge.stop()
