"""Service create → ``status.loadBalancer.ingress`` has an ip, through the real pieces: the Kubernetes
API stand-in (``tests/support/kube_api``, uvicorn in a thread of this process), ``anycastlb control``
on SQLite and the ``anycastlb controller`` process (lightkube, 4 workers), set up as
``tests/integration/test_k8s_controller.py`` does: a pool, a tenant and its token, one PoP.

A world has ``nodes`` Nodes before the controller starts; a warm-up Service is created and waited
for first (the controller is then leader, synced and connected). Services have ports 80 and 443;
30% are ``externalTrafficPolicy: Local`` with an EndpointSlice of 3 ready endpoints created just
before them. Two ways to create ``count`` Services:

- ``sequential``: create one, wait for its ingress, create the next;
- ``burst``: create ``burst`` back to back, wait until all have their ingress, then the next burst.

Each latency runs from just before the create call (an in-process write to the stand-in's store, as
``kubectl apply`` lands) to the moment a waiter sees the ingress: ``KubeApiStandIn.wait_for`` is
woken by every write to the store, so no polling; the waiter checks every pending Service per wake.
It reads the clock when it wakes, after the writing thread lets go of the GIL (up to Python's 5 ms
switch interval late when the stand-in's thread is busy).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.control_plane import ControlProcess
from tests.support.controller_process import ControllerProcess
from tests.support.kube_api import KubeApiStandIn

from bench.harness.controller_cluster import CLASS, Obj, node_object
from bench.harness.controller_resync import own_cpu_seconds

__all__ = ["MODES", "LatencyRun", "World", "measure_latency", "world"]

MODES = ("sequential", "burst")
NAMESPACE = "web"
_TIMEOUT_S = 120.0
_SERVER_OWNED = ("uid", "resourceVersion", "creationTimestamp")


@dataclass
class LatencyRun:
    nodes: int
    mode: str
    round: int
    latencies_ms: list[float]
    seconds: float
    reconciles: float  # the controller's reconciles per create (its /metrics)
    reconcile_ms: float  # their mean duration
    controller_cpu_ms: float  # per create
    control_cpu_ms: float
    standin_cpu_ms: float  # this process: the stand-in's thread (and the waiter)
    errors: list[str] = field(default_factory=list)


def _node(index: int) -> Obj:
    obj = node_object(index)
    for key in _SERVER_OWNED:
        obj["metadata"].pop(key, None)
    return obj


def _service(name: str, *, local: bool) -> Obj:
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "loadBalancerClass": CLASS,
        "selector": {"app": name},
        "ports": [
            {"name": f"p{port}", "port": port, "protocol": "TCP", "targetPort": port} for port in (80, 443)
        ],
    }
    if local:
        spec["externalTrafficPolicy"] = "Local"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def _slice(name: str, nodes: list[str]) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-ab12",
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.244.{slot}.{len(name)}"], "nodeName": node, "conditions": {"ready": True}}
            for slot, node in enumerate(nodes)
        ],
        "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}],
    }


def _has_ingress(obj: Obj | None) -> bool:
    ingress = (((obj or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return any(item.get("ip") for item in ingress)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _metric(text: str, name: str) -> float:
    """The sum of a Prometheus metric's samples over its labels."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    )


@dataclass
class World:
    kube: KubeApiStandIn
    control: ControlProcess
    controller: ControllerProcess
    nodes: int
    rng: random.Random
    created: int = 0

    def pids(self) -> tuple[int, int]:
        assert self.controller.process is not None and self.control.process is not None
        return self.controller.process.pid, self.control.process.pid

    def create(self, name: str) -> None:
        """Create a Service (Local ones after their EndpointSlice)."""
        local = self.rng.random() < 0.30
        if local:
            picked = [f"node-{self.rng.randrange(self.nodes):03d}" for _ in range(3)]
            self.kube.create(_slice(name, picked))
        self.kube.create(_service(name, local=local))

    def wait(self, started: dict[str, float]) -> dict[str, float]:
        """Latency (ms) of every Service in ``started`` (name → its create's clock), as each is seen."""
        done: dict[str, float] = {}

        def all_seen(_first: Obj | None) -> bool:
            now = time.perf_counter()
            for name, sent in started.items():
                if name not in done and _has_ingress(self.kube.find("Service", NAMESPACE, name)):
                    done[name] = 1000 * (now - sent)
            return len(done) == len(started)

        self.kube.wait_for("Service", NAMESPACE, next(iter(started)), all_seen, _TIMEOUT_S)
        return done


@contextmanager
def world(workdir: Path, nodes: int, seed: int) -> Iterator[World]:
    workdir.mkdir(parents=True, exist_ok=True)
    with KubeApiStandIn() as kube, ControlProcess(workdir) as control:
        with control.client() as admin:
            admin.post(
                "/v1/pools", json={"name": "platform", "networks": ["10.64.0.0/16"]}
            ).raise_for_status()
            admin.post("/v1/tenants", json={"name": "acme"}).raise_for_status()
            token = str(admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"])
            admin.post("/v1/pops", json={"name": "fra"}).raise_for_status()
        for index in range(nodes):
            kube.create(_node(index))
        kubeconfig = kube.kubeconfig(workdir / "kubeconfig")
        with ControllerProcess(workdir, control_url=control.url, token=token, kubeconfig=kubeconfig) as ctl:
            found = World(kube, control, ctl, nodes, random.Random(seed))
            found.create("warm-up")
            found.wait({"warm-up": time.perf_counter()})
            yield found


def measure_latency(found: World, mode: str, count: int, burst: int, index: int) -> LatencyRun:
    """``count`` Services created ``mode``-wise in ``found`` (names unique within the world)."""
    controller_pid, control_pid = found.pids()
    before = found.controller.metrics()
    cpu = (_cpu_seconds(controller_pid), _cpu_seconds(control_pid), own_cpu_seconds())
    latencies: list[float] = []
    errors: list[str] = []
    size = 1 if mode == "sequential" else burst
    wall = time.perf_counter()
    for first in range(0, count, size):
        started: dict[str, float] = {}
        for _ in range(min(size, count - first)):
            name = f"{mode[:3]}-{found.created:04d}"
            found.created += 1
            started[name] = time.perf_counter()
            found.create(name)
        try:
            latencies += found.wait(started).values()
        except TimeoutError as error:
            errors.append(str(error)[:200])
    seconds = time.perf_counter() - wall
    after = found.controller.metrics()
    used = (_cpu_seconds(controller_pid), _cpu_seconds(control_pid), own_cpu_seconds())
    reconciles, busy = (
        _metric(after, name) - _metric(before, name)
        for name in ("anycastlb_controller_reconciles_total", "anycastlb_controller_reconcile_seconds_sum")
    )
    per = 1000 / count
    return LatencyRun(
        found.nodes,
        mode,
        index,
        latencies,
        seconds,
        reconciles / count,
        1000 * busy / reconciles if reconciles else 0.0,
        (used[0] - cpu[0]) * per,
        (used[1] - cpu[1]) * per,
        (used[2] - cpu[2]) * per,
        errors,
    )
