"""The Grafana dashboards and the alert rules against a real Prometheus scraping real processes.

A control plane (SQLite), an edge following it with a BGP block (its router is absent, so the
session stays down: the metric is still there), nginx nodes, the Kubernetes controller against the
API stand-in; Prometheus (Debian's, started here on a free loopback port, scrape and rule interval
1 s) scrapes the three. Then every panel's query of every dashboard in deploy/grafana, with its
template variables replaced by values their own queries return, must give data; and every alert rule
must evaluate without error, one of them (connection limits) firing on what the edge really did.
"""

import contextlib
import json
import re
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.ports import free_port
from tests.support.control_plane import ADMIN_TOKEN, ControlProcess, listener, spec
from tests.support.controlled_edge import ControlledEdge
from tests.support.controller_process import ControllerProcess
from tests.support.kube_api import KubeApiStandIn
from tests.support.prometheus import PrometheusServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "deploy" / "grafana").glob("*.json"))
RULES = REPO / "deploy" / "prometheus" / "anycastlb-alerts.yml"
POOL = "127.78.14.0/28"  # loopback: the edge binds any 127/8 address with FREEBIND
RATE_INTERVAL = "5s"  # what Grafana's $__rate_interval is at a 1 s scrape interval, rounded up
LIMIT_SERIES = 'anycastlb_connections_rejected_total{reason="listener_rate"}'
_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]])")


def _escape(value: str) -> str:
    """A value as Grafana puts it into a ``=~"$var"`` matcher: regex-escaped, inside a PromQL string."""
    return _REGEX_SPECIAL.sub(r"\\\\\1", value)


def _substitute(expr: str, values: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    for name, value in values.items():
        expr = expr.replace(f"${{{name}}}", _escape(value)).replace(f"${name}", _escape(value))
    assert "$" not in expr, f"a template variable is left in {expr!r}"
    return expr


def _variable_values(prom: PrometheusServer, query: str, chosen: dict[str, str]) -> list[str]:
    """What a ``label_values(selector, label)`` variable offers, as Grafana asks Prometheus."""
    found = re.fullmatch(r"label_values\((.*), *(\w+)\)", query)
    assert found is not None, f"unsupported variable query {query!r}"
    selector, label = _substitute(found[1], chosen), found[2]
    values: list[str] = prom.api(f"label/{label}/values", **{"match[]": selector})
    return values


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def _get(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2) as client:
            client.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
            return client.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False  # refused by a limit: the edge resets


def _wait(what: str, check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} not within {seconds}s"
        time.sleep(0.1)


def test_every_dashboard_panel_returns_data_and_every_alert_rule_evaluates(
    tmp_path: Path, nginx: Callable[..., NginxBackend]
) -> None:
    started = time.monotonic()
    nodes = [nginx("n1"), nginx("n2")]
    for part in ("cp", "edge", "prom", "controller"):
        (tmp_path / part).mkdir()
    with KubeApiStandIn() as kube, ControlProcess(tmp_path / "cp") as control:
        with control.client() as admin:
            admin.post("/v1/pools", json={"name": "lab", "networks": [POOL]}).raise_for_status()
            admin.post("/v1/tenants", json={"name": "acme"}).raise_for_status()
            acme_token = admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"]
            pop_token = admin.post("/v1/pops", json={"name": "fra"}).json()["token"]["secret"]
        bgp = {
            "local_as": 65001,
            "router_id": "127.0.0.1",
            "peers": [{"address": "127.0.0.2", "remote_as": 65000}],
        }
        edge = ControlledEdge(tmp_path / "edge", control.url, pop_token, base={"bgp": bgp})
        controller = ControllerProcess(
            tmp_path / "controller",
            control_url=control.url,
            token=acme_token,
            kubeconfig=kube.kubeconfig(tmp_path / "kubeconfig"),
        )
        with contextlib.ExitStack() as running:
            running.callback(edge.stop)
            running.callback(controller.stop)
            with ThreadPoolExecutor(2) as starting:  # both wait on Python's start-up: side by side
                edge_up, controller_up = starting.submit(edge.start), starting.submit(controller.start)
                edge_up.result()
                controller_up.result()
            # a load balancer with two healthy nodes and a connection rate limit the test will hit
            port = free_port()
            backends = tuple((node.address, node.port) for node in nodes)
            web = listener(
                port,
                backends,
                proxy_protocol="v1",
                health={"type": "tcp"},
                new_connections_per_second=0.5,
                new_connections_burst=3,
            )
            with control.client(acme_token) as acme:
                created = acme.post("/v1/tenants/acme/loadbalancers", json=spec("web", listeners=[web]))
                assert created.status_code == 201, created.text
            vip = created.json()["addresses"][0]
            # and a Service the controller turns into another load balancer (its nodes are not there)
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": "node-0", "labels": {"kubernetes.io/hostname": "node-0"}},
                    "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.11"}]},
                }
            )
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "shop", "namespace": "web"},
                    "spec": {
                        "type": "LoadBalancer",
                        "loadBalancerClass": "anycastlb.io/anycast",
                        "selector": {"app": "shop"},
                        "ports": [
                            {"name": "https", "port": free_port(), "protocol": "TCP", "targetPort": 443}
                        ],
                    },
                }
            )
            _wait("the web VIP served", lambda: _get(vip, port), 10)
            edge_target = f"127.0.0.1:{edge.config['metrics']['port']}"
            scrape: list[dict[str, Any]] = [
                {"job_name": "anycastlb-edge", "static_configs": [{"targets": [edge_target]}]},
                {
                    "job_name": "anycastlb-control",
                    "authorization": {"credentials": ADMIN_TOKEN},
                    "static_configs": [{"targets": [f"127.0.0.1:{control.port}"]}],
                },
                {
                    "job_name": "anycastlb-controller",
                    "static_configs": [{"targets": [f"127.0.0.1:{controller.metrics_port}"]}],
                },
            ]
            processes_up = time.monotonic()
            with PrometheusServer(tmp_path / "prom", scrape, rule_files=(RULES,)) as prom:
                _wait("every target scraped", lambda: _all_up(prom), 10)
                # the refusal counters are scraped at 0 first, so that increase() sees the refusals
                _wait("the limit counters at 0", lambda: bool(prom.query(LIMIT_SERIES)), 10)
                served = sum(_get(vip, port) for _ in range(8))  # the burst passes, the rest is refused
                assert 0 < served < 8, f"{served} of 8 served: the rate limit did not bite"
                instances = {
                    "anycastlb-edge": edge_target,
                    "anycastlb-control": f"127.0.0.1:{control.port}",
                    "anycastlb-controller": f"127.0.0.1:{controller.metrics_port}",
                }
                ready = time.monotonic()
                _check_dashboards(prom, instances, web_listener_prefix="acme-web")
                _check_rules(prom)
                checked = time.monotonic() - ready
                print(
                    f"processes up in {processes_up - started:.1f}s, prometheus scraping and traffic "
                    f"{ready - processes_up:.1f}s, dashboards and rules checked in {checked:.1f}s"
                )


def _all_up(prom: PrometheusServer) -> bool:
    targets = prom.targets().values()
    return len(targets) == 3 and all(target["health"] == "up" for target in targets)


def _check_dashboards(prom: PrometheusServer, instances: dict[str, str], web_listener_prefix: str) -> None:
    """Each panel's queries give data within a few scrapes (rates need two samples in the window)."""
    jobs = {
        "anycastlb-pop.json": "anycastlb-edge",
        "anycastlb-load-balancer.json": "anycastlb-edge",
        "anycastlb-control.json": "anycastlb-control",
        "anycastlb-controller.json": "anycastlb-controller",
    }
    assert sorted(path.name for path in DASHBOARDS) == sorted(jobs)
    queries: dict[str, str] = {}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        chosen: dict[str, str] = {}
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            offered = _variable_values(prom, variable["query"]["query"], chosen)
            if variable["name"] == "instance":
                want = instances[jobs[path.name]]
                assert want in offered, (path.name, offered)
            else:
                assert variable["name"] == "listener", variable["name"]
                web = [value for value in offered if value.startswith(web_listener_prefix)]
                assert len(web) == 1, offered
                want = web[0]
            chosen[variable["name"]] = want
        for panel in _panels(dashboard):
            for target in panel["targets"]:
                where = f"{path.name}: {panel['title']!r} {target['refId']}"
                queries[where] = _substitute(target["expr"], chosen)
    empty = dict(queries)
    deadline = time.monotonic() + 15
    while empty and time.monotonic() < deadline:
        empty = {where: expr for where, expr in empty.items() if not prom.query(expr)}
        if empty:
            time.sleep(0.5)
    assert not empty, "panels without data:\n" + "\n".join(f"{w}: {e}" for w, e in empty.items())


def _check_rules(prom: PrometheusServer) -> None:
    def evaluated() -> bool:
        return all(rule["health"] == "ok" for rule in prom.rules())

    _wait("every rule evaluated", evaluated, 10)
    broken = [(rule["name"], rule.get("lastError")) for rule in prom.rules() if rule.get("lastError")]
    assert not broken, broken

    def limit_alert() -> list[dict[str, Any]]:
        rule = next(rule for rule in prom.rules() if rule["name"] == "AnycastlbConnectionLimitHit")
        alerts: list[dict[str, Any]] = rule["alerts"]
        return alerts

    _wait(
        "AnycastlbConnectionLimitHit firing", lambda: any(a["state"] == "firing" for a in limit_alert()), 10
    )
    labels = limit_alert()[0]["labels"]
    assert labels["reason"] == "listener_rate" and labels["listener"].startswith("acme-web"), labels
