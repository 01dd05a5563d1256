"""The controller end to end: the real ``anycastlb controller`` process with lightkube's client,
a stateful Kubernetes API stand-in over HTTP (no kube-apiserver can be installed here; see
tests/support/kube_api), and the real control plane on SQLite.

Users write plain Kubernetes YAML; these tests do the same and check what the cluster and the
control plane see: status.loadBalancer.ingress, Events, the finalizer, and the load balancer spec.
"""

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anycastlb.k8s.views import load_balancer_name
from tests.support.control_plane import ControlProcess
from tests.support.controller_process import ControllerProcess
from tests.support.kube_api import KubeApiStandIn

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLASS = "anycastlb.io/anycast"
FINALIZER = "anycastlb.io/load-balancer-cleanup"


def node(name: str, address: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]
        },
    }


def service(
    name: str, *, ports: tuple[int, ...] = (80, 443), local: bool = False, **annotations: str
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "loadBalancerClass": CLASS,
        "selector": {"app": name},
        "ports": [
            {"name": f"p{port}", "port": port, "protocol": "TCP", "targetPort": port} for port in ports
        ],
    }
    if local:
        spec["externalTrafficPolicy"] = "Local"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "web", "annotations": annotations},
        "spec": spec,
    }


def endpoint_slice(service_name: str, nodes: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-abc",
            "namespace": "web",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.244.0.{index + 10}"], "nodeName": node_name, "conditions": {"ready": True}}
            for index, node_name in enumerate(nodes)
        ],
        "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}],
    }


class World:
    def __init__(self, tmp: Path, kube: KubeApiStandIn, control: ControlProcess, token: str) -> None:
        self.tmp, self.kube, self.control, self.token = tmp, kube, control, token
        self.kubeconfig = kube.kubeconfig(tmp / "kubeconfig")
        self.controllers: list[ControllerProcess] = []

    def controller(self, **kwargs: Any) -> ControllerProcess:
        made = ControllerProcess(
            self.tmp, control_url=self.control.url, token=self.token, kubeconfig=self.kubeconfig, **kwargs
        )
        self.controllers.append(made)
        return made

    def load_balancer(self, name: str) -> dict[str, Any] | None:
        with self.control.client(self.token) as client:
            response = client.get(f"/v1/tenants/acme/loadbalancers/{load_balancer_name('test', 'web', name)}")
        return response.json() if response.status_code == 200 else None

    def wait_ingress(self, name: str, count: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        found = self.kube.wait_for(
            "Service",
            "web",
            name,
            lambda obj: (
                obj is not None
                and len(((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []) == count
            ),
            timeout,
        )
        assert found is not None
        return found

    def wait_lb(
        self, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            lb = self.load_balancer(name)
            if lb is not None and check(lb):
                return lb
            assert time.monotonic() < deadline, f"load balancer {name} never matched; last: {lb}"
            time.sleep(0.1)

    def reasons(self, name: str) -> list[str]:
        return [event["reason"] for event in self.kube.events_for("web", name)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with KubeApiStandIn() as kube, ControlProcess(tmp_path) as control:
        with control.client() as admin:
            admin.post(
                "/v1/pools", json={"name": "platform", "networks": ["203.0.113.0/28"]}
            ).raise_for_status()
            admin.post("/v1/tenants", json={"name": "acme"}).raise_for_status()
            token = admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"]
            admin.post("/v1/pops", json={"name": "fra"}).raise_for_status()
        for index in range(3):
            kube.create(node(f"node-{index}", f"10.0.0.{11 + index}"))
        yield World(tmp_path, kube, control, token)


def test_a_service_gets_an_anycast_ip_in_its_status_with_a_finalizer_and_an_event(world: World) -> None:
    with world.controller():
        started = time.monotonic()
        world.kube.create(service("shop"))
        found = world.wait_ingress("shop")
        took = time.monotonic() - started
        ingress = found["status"]["loadBalancer"]["ingress"][0]
        assert ingress["ip"] == "203.0.113.1" and "hostname" not in ingress
        assert ingress["ipMode"] == "Proxy"
        assert FINALIZER in found["metadata"]["finalizers"]
        lb = world.load_balancer("shop")
        assert lb is not None
        ports = {listener["port"]: listener for listener in lb["spec"]["listeners"]}
        node_ports = {port["port"]: port["nodePort"] for port in found["spec"]["ports"]}
        assert sorted(ports) == [80, 443]
        assert [(b["address"], b["port"]) for b in ports[443]["backends"]] == [
            (f"10.0.0.{11 + index}", node_ports[443]) for index in range(3)
        ]
        assert ports[443]["health"]["type"] == "tcp" and ports[443]["proxy_protocol"] == "v2"
        world.kube.wait_for("Service", "web", "shop", lambda _: "Allocated" in world.reasons("shop"))
        log = world.controllers[-1].log()
        assert "service_allocated service=web/shop load_balancer=" in log and "vips=203.0.113.1" in log
        assert "load_balancer_ensured service=web/shop" in log and "created=True" in log
        print(f"create -> status.ingress in {took * 1000:.0f} ms")


def test_updates_nodes_endpoints_and_deletion_follow_through(world: World) -> None:
    with world.controller():
        world.kube.create(service("api", ports=(443,), local=True))
        world.kube.create(endpoint_slice("api", ["node-0", "node-0", "node-2"]))
        world.wait_ingress("api")
        # Local: a kube-proxy health check on healthCheckNodePort, weights = ready endpoints per node
        lb = world.wait_lb("api", lambda lb: lb["spec"]["listeners"][0]["backends"][0]["weight"] == 2)
        listener = lb["spec"]["listeners"][0]
        hc_port = world.kube.get("Service", "web", "api")["spec"]["healthCheckNodePort"]
        assert listener["health"]["type"] == "k8s" and listener["health"]["port"] == hc_port
        assert [b["weight"] for b in listener["backends"]] == [2, 1, 1]
        # an annotation: two IPs for DNS load balancing
        world.kube.patch(
            "Service", "web", "api", {"metadata": {"annotations": {"anycastlb.io/ip-count": "2"}}}
        )
        world.wait_ingress("api", count=2)
        # node churn: a new node joins the backends; an excluded one leaves
        world.kube.create(node("node-3", "10.0.0.14"))
        world.kube.patch(
            "Node",
            None,
            "node-1",
            {"metadata": {"labels": {"node.kubernetes.io/exclude-from-external-load-balancers": ""}}},
        )
        world.wait_lb(
            "api",
            lambda lb: (
                [b["address"] for b in lb["spec"]["listeners"][0]["backends"]]
                == ["10.0.0.11", "10.0.0.13", "10.0.0.14"]
            ),
        )
        # deletion: the load balancer goes, its dynamic IPs are freed, the finalizer is removed
        world.kube.delete("Service", "web", "api")
        world.kube.wait_for("Service", "web", "api", lambda obj: obj is None)
        assert world.load_balancer("api") is None
        with world.control.client(world.token) as client:
            assert client.get("/v1/tenants/acme/ips").json() == []


def test_a_typo_warns_and_never_tears_down_the_serving_load_balancer(world: World) -> None:
    with world.controller():
        world.kube.create(service("shop"))
        world.wait_ingress("shop")
        before = world.load_balancer("shop")
        assert before is not None
        world.kube.patch(
            "Service", "web", "shop", {"metadata": {"annotations": {"anycastlb.io/proxy-protocol": "v3"}}}
        )
        world.kube.wait_for(
            "Service", "web", "shop", lambda _: "InvalidConfiguration" in world.reasons("shop"), timeout=10
        )
        warning = next(
            e for e in world.kube.events_for("web", "shop") if e["reason"] == "InvalidConfiguration"
        )
        assert warning["type"] == "Warning" and "v3" in warning["message"]
        after = world.load_balancer("shop")
        assert after is not None and after["version"] == before["version"]
        assert world.kube.get("Service", "web", "shop")["status"]["loadBalancer"]["ingress"]


def test_a_service_of_another_class_is_left_alone_and_one_that_leaves_ours_is_released(world: World) -> None:
    with world.controller():
        other = service("other")
        other["spec"]["loadBalancerClass"] = "example.com/other"
        world.kube.create(other)
        world.kube.create(service("shop"))
        world.wait_ingress("shop")
        assert world.load_balancer("other") is None
        assert FINALIZER not in (
            world.kube.get("Service", "web", "other")["metadata"].get("finalizers") or []
        )
        world.kube.patch("Service", "web", "shop", {"spec": {"type": "ClusterIP"}})
        world.kube.wait_for(
            "Service",
            "web",
            "shop",
            lambda obj: obj is not None and FINALIZER not in (obj["metadata"].get("finalizers") or []),
        )
        assert world.load_balancer("shop") is None


def test_a_control_plane_outage_delays_allocation_and_leaves_status_alone(world: World) -> None:
    with world.controller() as controller:
        world.kube.create(service("shop"))
        world.wait_ingress("shop")
        world.control.stop()
        world.kube.create(service("late"))
        retried = 'anycastlb_controller_reconciles_total{result="retry"}'
        deadline = time.monotonic() + 10
        while _metric(controller.metrics(), retried) < 1:  # it tried "late" and failed: now look
            assert time.monotonic() < deadline, "the controller never tried to allocate during the outage"
            time.sleep(0.1)
        late = world.kube.get("Service", "web", "late")
        assert not ((late.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        assert world.kube.get("Service", "web", "shop")["status"]["loadBalancer"]["ingress"]
        world.control.start()
        world.wait_ingress("late", timeout=15)  # the retry backoff is at most a few seconds by then


def test_a_second_replica_takes_over_when_the_leader_dies(world: World) -> None:
    first = world.controller().start()
    second = world.controller().start()
    try:
        world.kube.create(service("shop"))
        world.wait_ingress("shop")
        leaders = [p for p in (first, second) if "anycastlb_controller_leader 1.0" in p.metrics()]
        assert len(leaders) == 1
        leader = leaders[0]
        standby = second if leader is first else first
        assert standby.readyz().status_code == 200 and standby.readyz().text == "standby\n"
        leader.kill()
        world.kube.create(service("after"))
        world.wait_ingress("after", timeout=30)  # lease 15 s + renew 2 s + a resync
        assert "anycastlb_controller_leader 1.0" in standby.metrics()
    finally:
        first.stop()
        second.stop()


def test_healthz_and_metrics_answer(world: World) -> None:
    with world.controller() as controller:
        assert httpx.get(f"http://127.0.0.1:{controller.metrics_port}/healthz", timeout=2).status_code == 200
        assert "anycastlb_controller_reconciles" in controller.metrics()


def test_a_leader_stopped_cleanly_hands_the_lease_over_at_once(world: World) -> None:
    first = world.controller().start()
    world.kube.wait_for(
        "Lease", "kube-system", "anycastlb-controller-test", lambda lease: lease is not None, timeout=10
    )
    second = world.controller().start()
    try:
        first.stop()  # SIGTERM: releases the Lease
        started = time.monotonic()
        world.kube.create(service("handover"))
        # The standby tries every retry_every (2 s). Had the Lease not been released, it would wait
        # until lease_duration (15 s) after the last renewal, which is at most renew_every (2 s) old.
        unreleased = 15.0 - 2.0
        world.wait_ingress("handover", timeout=unreleased)
        took = time.monotonic() - started
        assert took < unreleased, f"handover took {took:.1f}s; a released Lease needs no lease_duration wait"
        assert "leader_released" in first.log()
    finally:
        first.stop()
        second.stop()


def test_port_policy_and_endpoint_changes_reach_the_load_balancer(world: World) -> None:
    with world.controller():
        world.kube.create(service("shop", ports=(443,)))
        world.wait_ingress("shop")
        # a port is added
        ports = world.kube.get("Service", "web", "shop")["spec"]["ports"]
        ports.append({"name": "p8443", "port": 8443, "protocol": "TCP", "targetPort": 8443})
        world.kube.patch("Service", "web", "shop", {"spec": {"ports": ports}})
        world.wait_lb(
            "shop", lambda lb: sorted(item["port"] for item in lb["spec"]["listeners"]) == [443, 8443]
        )
        # Cluster -> Local: kube-proxy's health check on healthCheckNodePort decides
        world.kube.patch("Service", "web", "shop", {"spec": {"externalTrafficPolicy": "Local"}})
        world.wait_lb("shop", lambda lb: lb["spec"]["listeners"][0]["health"]["type"] == "k8s")
        # endpoint churn: pods move, weights follow
        world.kube.create(endpoint_slice("shop", ["node-1"]))
        world.wait_lb(
            "shop", lambda lb: [b["weight"] for b in lb["spec"]["listeners"][0]["backends"]] == [1, 1, 1]
        )
        world.kube.patch(
            "EndpointSlice",
            "web",
            "shop-abc",
            {
                "endpoints": [
                    {"addresses": [f"10.244.1.{i}"], "nodeName": "node-1", "conditions": {"ready": True}}
                    for i in range(3)
                ]
            },
        )
        world.wait_lb(
            "shop", lambda lb: [b["weight"] for b in lb["spec"]["listeners"][0]["backends"]] == [1, 3, 1]
        )


def test_an_api_server_that_drops_ip_mode_does_not_make_the_controller_loop(tmp_path: Path) -> None:
    with KubeApiStandIn(ip_mode_supported=False) as kube, ControlProcess(tmp_path) as control:
        with control.client() as admin:
            admin.post(
                "/v1/pools", json={"name": "platform", "networks": ["203.0.113.0/28"]}
            ).raise_for_status()
            admin.post("/v1/tenants", json={"name": "acme"}).raise_for_status()
            token = admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"]
        kube.create(node("node-0", "10.0.0.11"))
        world = World(tmp_path, kube, control, token)
        with world.controller(extra=("--resync", "1")) as controller:
            kube.create(service("shop"))
            found = world.wait_ingress("shop")
            assert "ipMode" not in found["status"]["loadBalancer"]["ingress"][0]
            reconciled = 'anycastlb_controller_reconciles_total{result="ok"}'
            before = _metric(controller.metrics(), reconciled)
            deadline = time.monotonic() + 15
            while _metric(controller.metrics(), reconciled) < before + 3:  # three resyncs (--resync 1)
                assert time.monotonic() < deadline, "fewer than three resyncs reconciled the Service"
                time.sleep(0.1)
            writes = [  # each reconcile compared the status without ipMode and wrote nothing
                line
                for line in controller.metrics().splitlines()
                if line.startswith("anycastlb_controller_status_updates_total")
            ]
            assert writes == ["anycastlb_controller_status_updates_total 1.0"], writes


def _metric(text: str, line_start: str) -> float:
    found = [line for line in text.splitlines() if line.startswith(line_start)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def test_a_resync_sends_no_unchanged_spec_but_heals_an_edit_made_behind_its_back(world: World) -> None:
    sent = 'anycastlb_controller_ensures_total{outcome="sent"}'
    unchanged = 'anycastlb_controller_ensures_total{outcome="unchanged"}'
    with world.controller(extra=("--resync", "1")) as controller:
        world.kube.create(service("shop"))
        world.wait_ingress("shop")
        original = world.wait_lb("shop", lambda lb: True)
        before = controller.metrics()
        two_resyncs, deadline = _metric(before, unchanged) + 2, time.monotonic() + 15
        while _metric(after := controller.metrics(), unchanged) < two_resyncs:
            assert time.monotonic() < deadline, "fewer than two resyncs reconciled the Service"
            time.sleep(0.1)
        # the control plane still holds what was sent: nothing is sent
        assert _metric(after, sent) == _metric(before, sent)
        assert _metric(after, unchanged) >= _metric(before, unchanged) + 2
        # an operator edits the load balancer on the control plane: the next resync puts it back
        name = load_balancer_name("test", "web", "shop")
        edited = {**original["spec"], "listeners": original["spec"]["listeners"][:1]}
        with world.control.client(world.token) as client:
            changed = client.put(f"/v1/tenants/acme/loadbalancers/{name}", json=edited)
            assert changed.status_code == 200, changed.text
        healed = world.wait_lb("shop", lambda lb: lb["version"] > changed.json()["version"], timeout=10)
        assert healed["spec"] == original["spec"]
        assert _metric(controller.metrics(), sent) == _metric(after, sent) + 1
        # and deleted behind its back: recreated (its dynamic IP may differ; the status follows)
        with world.control.client(world.token) as client:
            assert client.delete(f"/v1/tenants/acme/loadbalancers/{name}").status_code == 204
        recreated = world.wait_lb("shop", lambda lb: True, timeout=10)
        assert recreated["spec"] == original["spec"]
        found = world.kube.wait_for(
            "Service",
            "web",
            "shop",
            lambda obj: (
                obj is not None
                and [item["ip"] for item in obj["status"]["loadBalancer"]["ingress"]]
                == recreated["addresses"]
            ),
            10,
        )
        assert found is not None


def test_a_restarted_controller_sends_only_what_changed_while_it_was_down(world: World) -> None:
    sent = 'anycastlb_controller_ensures_total{outcome="sent"}'
    unchanged = 'anycastlb_controller_ensures_total{outcome="unchanged"}'
    with world.controller():
        world.kube.create(service("shop"))
        world.kube.create(service("api", ports=(443,)))
        world.wait_ingress("shop")
        world.wait_ingress("api")
    shop = world.wait_lb("shop", lambda lb: True)
    # while no controller runs, one Service changes
    world.kube.patch(
        "Service", "web", "api", {"metadata": {"annotations": {"anycastlb.io/proxy-protocol": "v1"}}}
    )
    with world.controller() as controller:
        world.wait_lb("api", lambda lb: lb["spec"]["listeners"][0]["proxy_protocol"] == "v1")
        deadline = time.monotonic() + 10
        while _metric(controller.metrics(), unchanged) < 1:
            assert time.monotonic() < deadline, "the unchanged Service was never reconciled"
            time.sleep(0.1)
        metrics = controller.metrics()
        assert _metric(metrics, sent) == 1  # api only: shop's spec has the digest the control plane holds
        assert world.wait_lb("shop", lambda lb: True)["version"] == shop["version"]
        assert (
            world.kube.get("Service", "web", "shop")["status"]["loadBalancer"]["ingress"][0]["ip"]
            in shop["addresses"]
        )


def test_a_taken_metrics_port_stops_the_controller_with_a_message_naming_it(world: World) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        controller = world.controller(metrics_port=port)
        try:
            controller.spawn()
            code = controller.wait(20)
        finally:
            controller.stop()
    log = controller.log()
    assert code != 0, log
    assert f"0.0.0.0:{port}" in log and "--metrics-port" in log, log


def test_readyz_waits_for_the_caches_to_hold_their_first_lists(world: World) -> None:
    # the EndpointSlice list fails three times: its informer retries after 0.5, 1 and 2 s
    world.kube.fail_next(3, 500, method="GET", path="endpointslices")
    with world.controller() as controller:
        deadline = time.monotonic() + 10
        while "anycastlb_controller_leader 1.0" not in controller.metrics():
            assert time.monotonic() < deadline, "never became leader"
            time.sleep(0.05)
        early = controller.readyz()
        assert (early.status_code, early.text) == (503, "leading, caches syncing\n")
        deadline = time.monotonic() + 15
        while (ready := controller.readyz()).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.05)
        assert ready.text == "leading, caches synced\n"
        assert "watch_failed kind=EndpointSlice" in controller.log()


def test_a_sharing_key_whose_port_is_taken_fails_the_allocation_instead_of_another_address(
    world: World,
) -> None:
    def shared(name: str, port: int) -> dict[str, Any]:
        found = service(name, ports=(port,))
        found["metadata"]["annotations"]["anycastlb.io/sharing-key"] = "front"
        return found

    with world.controller():
        world.kube.create(shared("web", 443))
        world.kube.create(shared("dns", 53))
        address = world.wait_ingress("web")["status"]["loadBalancer"]["ingress"][0]["ip"]
        assert world.wait_ingress("dns")["status"]["loadBalancer"]["ingress"][0]["ip"] == address
        world.kube.create(shared("clash", 443))
        world.kube.wait_for("Service", "web", "clash", lambda _: "AllocationFailed" in world.reasons("clash"))
        failed = next(e for e in world.kube.events_for("web", "clash") if e["reason"] == "AllocationFailed")
        assert failed["type"] == "Warning"
        message = failed["message"]
        assert "443/tcp" in message and address in message
        assert load_balancer_name("test", "web", "web") in message
        clash = world.kube.get("Service", "web", "clash")
        assert not ((clash.get("status") or {}).get("loadBalancer") or {}).get("ingress")


def test_services_sharing_443_by_sni_get_one_ip_and_a_clashing_hostname_gets_an_event(world: World) -> None:
    def tls(name: str, hostnames: str) -> dict[str, Any]:
        found = service(name, ports=(443,))
        found["metadata"]["annotations"].update(
            {"anycastlb.io/sharing-key": "https", "anycastlb.io/hostnames": hostnames}
        )
        return found

    with world.controller():
        world.kube.create(tls("shop", "shop.example.com"))
        world.kube.create(tls("blog", "blog.example.com,*.blog.example.com"))
        address = world.wait_ingress("shop")["status"]["loadBalancer"]["ingress"][0]["ip"]
        assert world.wait_ingress("blog")["status"]["loadBalancer"]["ingress"][0]["ip"] == address
        blog = world.wait_lb("blog", lambda lb: bool(lb["addresses"]))
        assert blog["spec"]["listeners"][0]["hostnames"] == ["blog.example.com", "*.blog.example.com"]
        world.kube.create(tls("copy", "shop.example.com"))
        world.kube.wait_for("Service", "web", "copy", lambda _: "AllocationFailed" in world.reasons("copy"))
        failed = next(e for e in world.kube.events_for("web", "copy") if e["reason"] == "AllocationFailed")
        assert "shop.example.com" in failed["message"] and address in failed["message"]
        assert load_balancer_name("test", "web", "shop") in failed["message"]
        world.kube.create(tls("typo", "shop"))
        world.kube.wait_for(
            "Service", "web", "typo", lambda _: "InvalidConfiguration" in world.reasons("typo")
        )
        copy = world.kube.get("Service", "web", "copy")
        assert not ((copy.get("status") or {}).get("loadBalancer") or {}).get("ingress")
