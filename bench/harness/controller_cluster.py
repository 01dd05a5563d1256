"""A synthetic cluster as the API server would list it: Nodes, LoadBalancer Services, EndpointSlices.

Plain dicts in the API's JSON shape, with what the API server fills in (uid, resourceVersion,
clusterIP, nodePorts, healthCheckNodePort, status), so the bench can time the whole way a resync
starts from: JSON dicts → lightkube models (what lightkube does per listed or watched object) →
the controller's views (``anycastlb.k8s.convert``) → reconcile.

The mix (seeded, the same every run):

- Nodes: ``pool=edge`` on the even half and ``pool=batch`` on the odd half, a zone label, an
  InternalIP and a Hostname address, 5 conditions, capacity, nodeInfo and 10 images (a real Node
  lists more images and managedFields; those only make the lightkube parse dearer).
- Services: 70% ``externalTrafficPolicy: Cluster``, 30% ``Local`` (with a healthCheckNodePort);
  1-3 TCP ports; 10% ``anycastlb.io/node-selector: pool=edge`` (half the nodes), 5%
  ``anycastlb.io/ip-count: 2``, 10% in pairs with an ``anycastlb.io/sharing-key`` (the pair's ports
  differ, so the control plane lets them share); a status with one ingress ip, as after the first sync.
- EndpointSlices: one per Service (Kubernetes makes one for every Service with a selector), 2-10
  ready endpoints on random nodes. reconcile reads them for Local Services only.

nodePorts go past Kubernetes' default 30000-32767 (5,000 Services need more than its 2,768 ports);
a cluster this size sets ``--service-node-port-range`` wider.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["CLASS", "NAMESPACE_COUNT", "Cluster", "make_cluster", "node_object", "service_object"]

CLASS = "anycastlb.io/anycast"
NAMESPACE_COUNT = 50
_NODE_PORT_BASE = 20000  # up to 3 ports per Service: 20000 + 3 * index + slot
_HEALTH_PORT_BASE = 50000  # Local Services' healthCheckNodePort: 50000 + index (5,000 → 54999)
_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable", "Ready")

Obj = dict[str, Any]


def _meta(name: str, namespace: str | None, version: int, **extra: Any) -> Obj:
    meta: Obj = {
        "name": name,
        "uid": str(uuid.UUID(int=version)),
        "resourceVersion": str(version),
        "creationTimestamp": "2026-11-24T10:00:00Z",
        **extra,
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def node_object(index: int, version: int = 1) -> Obj:
    name = f"node-{index:03d}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(
            name,
            None,
            version,
            labels={
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "pool": "edge" if index % 2 == 0 else "batch",
                "topology.kubernetes.io/zone": f"fra-{index % 3 + 1}",
            },
        ),
        "spec": {"podCIDR": f"10.244.{index % 256}.0/24", "providerID": f"bench://{name}"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{index // 250}.{index % 250 + 1}"},
                {"type": "Hostname", "address": name},
            ],
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "7800m", "memory": "31Gi", "pods": "110"},
            "conditions": [
                {
                    "type": kind,
                    "status": "True" if kind == "Ready" else "False",
                    "reason": f"Kubelet{kind}",
                    "message": f"kubelet reports {kind}",
                    "lastHeartbeatTime": "2026-11-24T10:00:00Z",
                    "lastTransitionTime": "2026-11-24T09:00:00Z",
                }
                for kind in _CONDITIONS
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.UUID(int=index + 1)),
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "6.1.0-26-amd64",
                "kubeProxyVersion": "v1.31.2",
                "kubeletVersion": "v1.31.2",
                "machineID": f"{index:032x}",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": str(uuid.UUID(int=index + 2)),
            },
            "images": [
                {"names": [f"registry.example/app-{image}@sha256:{image:064x}"], "sizeBytes": 50_000_000}
                for image in range(10)
            ],
        },
    }


def service_object(
    index: int,
    namespace: str,
    ports: tuple[int, ...],
    *,
    local: bool = False,
    annotations: dict[str, str] | None = None,
    ingress_ip: str | None = None,
    version: int = 1,
) -> Obj:
    """A Service as listed: allocated clusterIP and nodePorts, status with ``ingress_ip`` if given."""
    name = f"svc-{index:04d}"
    spec: Obj = {
        "type": "LoadBalancer",
        "loadBalancerClass": CLASS,
        "selector": {"app": name},
        "clusterIP": f"10.96.{index // 250}.{index % 250 + 1}",
        "clusterIPs": [f"10.96.{index // 250}.{index % 250 + 1}"],
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "allocateLoadBalancerNodePorts": True,
        "internalTrafficPolicy": "Cluster",
        "sessionAffinity": "None",
        "externalTrafficPolicy": "Local" if local else "Cluster",
        "ports": [
            {
                "name": f"p{port}",
                "port": port,
                "protocol": "TCP",
                "targetPort": port,
                "nodePort": _NODE_PORT_BASE + 3 * index + slot,
            }
            for slot, port in enumerate(ports)
        ],
    }
    if local:
        spec["healthCheckNodePort"] = _HEALTH_PORT_BASE + index
    ingress = (
        [{"ip": ingress_ip, "ipMode": "Proxy", "ports": [{"port": p, "protocol": "TCP"} for p in ports]}]
        if ingress_ip
        else []
    )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(
            name,
            namespace,
            version,
            annotations=annotations or {},
            finalizers=["anycastlb.io/load-balancer-cleanup"],
        ),
        "spec": spec,
        "status": {"loadBalancer": {"ingress": ingress}},
    }


def _pod_ip(number: int) -> str:
    return f"10.{128 + (number >> 16)}.{(number >> 8) & 255}.{number & 255}"


def _slice_object(service: Obj, index: int, nodes: int, rng: random.Random, version: int) -> Obj:
    meta = service["metadata"]
    name = meta["name"]
    count = rng.randint(2, 10)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _meta(
            f"{name}-{version:05x}",
            meta["namespace"],
            version,
            labels={"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "bench"},
        ),
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [_pod_ip(10 * index + slot)],
                "nodeName": f"node-{rng.randrange(nodes):03d}",
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "targetRef": {"kind": "Pod", "name": f"{name}-{slot}", "namespace": meta["namespace"]},
            }
            for slot in range(count)
        ],
        "ports": [
            {"name": port["name"], "port": port["port"], "protocol": "TCP"}
            for port in service["spec"]["ports"]
        ],
    }


@dataclass(frozen=True)
class Cluster:
    nodes: list[Obj]
    services: list[Obj]
    slices: list[Obj]

    @property
    def endpoints(self) -> int:
        return sum(len(piece["endpoints"]) for piece in self.slices)


def _annotations(index: int, rng: random.Random) -> dict[str, str]:
    found: dict[str, str] = {}
    roll = rng.random()
    if index % 10 in (7, 8):  # pairs 7/8, 17/18, ...: 10% share an IP by key
        found["anycastlb.io/sharing-key"] = f"pair-{index // 10}"
    elif roll < 0.10:
        found["anycastlb.io/node-selector"] = "pool=edge"
    elif roll < 0.15:
        found["anycastlb.io/ip-count"] = "2"
    return found


def _ports(index: int, rng: random.Random) -> tuple[int, ...]:
    if index % 10 == 8:  # the second of a sharing pair: ports its partner does not use
        return (8080,)
    return ((80, 443), (443,), (80, 443, 8443))[rng.choices((0, 1, 2), (6, 3, 1))[0]]


def make_cluster(services: int, nodes: int, seed: int = 6) -> Cluster:
    rng = random.Random(seed)
    node_objects = [node_object(index, version=index + 1) for index in range(nodes)]
    service_objects: list[Obj] = []
    slices: list[Obj] = []
    for index in range(services):
        namespace = f"team-{index % NAMESPACE_COUNT:02d}"
        local = rng.random() < 0.30
        ingress = f"10.64.{index // 250}.{index % 250 + 1}"
        service = service_object(
            index,
            namespace,
            _ports(index, rng),
            local=local,
            annotations=_annotations(index, rng),
            ingress_ip=ingress,
            version=10_000 + index,
        )
        service_objects.append(service)
        slices.append(_slice_object(service, index, nodes, rng, version=20_000 + index))
    return Cluster(node_objects, service_objects, slices)
