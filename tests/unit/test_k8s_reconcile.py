"""The controller's decision for one Service, case by case: whose Service it is, which nodes take
traffic, Local against Cluster, addresses and families, names, every message, stable specs, and the
reuse that keeps a full resync cheap."""

import copy
import dataclasses
import ipaddress
import pickle
import random
import re
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycastlb.k8s.annotations import (
    IONOS_NODE_SELECTOR,
    IP_COUNT,
    IPS,
    NODE_SELECTOR,
    POPS,
    PROXY_PROTOCOL,
    SHARING_KEY,
)
from anycastlb.k8s.reconcile import (
    Decision,
    Desired,
    Invalid,
    NodeIndex,
    NotOurs,
    Release,
    SliceIndex,
    _new_backend,
    reconcile,
)
from anycastlb.k8s.views import (
    EXCLUDE_LABEL,
    FINALIZER,
    LOAD_BALANCER_CLASS,
    ControllerSettings,
    EndpointSliceView,
    EndpointView,
    NodeView,
    ServicePortView,
    ServiceView,
    load_balancer_name,
)
from anycastlb.model.config import Backend, HealthCheck
from anycastlb.model.desired import IPRequest, LoadBalancerSpec

SETTINGS = ControllerSettings(cluster="prod")
HTTP = ServicePortView("http", "TCP", 80, 30080)
HTTPS = ServicePortView("https", "TCP", 443, 30443)
WEB = ServiceView(
    namespace="shop",
    name="web",
    uid="uid-web",
    type="LoadBalancer",
    load_balancer_class=LOAD_BALANCER_CLASS,
    annotations={},
    ports=(HTTP, HTTPS),
    finalizers=(FINALIZER,),
)


def node(
    name: str,
    *addresses: tuple[str, str],
    labels: Mapping[str, str] | None = None,
    deleting: bool = False,
    taints: tuple[tuple[str, str], ...] = (),
) -> NodeView:
    return NodeView(name, labels or {}, addresses, deleting, taints)


def internal(address: str) -> tuple[str, str]:
    return ("InternalIP", address)


def external(address: str) -> tuple[str, str]:
    return ("ExternalIP", address)


N1 = node("n1", internal("10.0.0.1"), labels={"zone": "a", "role": "edge"})
N2 = node("n2", internal("10.0.0.2"), labels={"zone": "b", "role": "edge"})
N3 = node("n3", internal("10.0.0.3"), labels={"zone": "b"})
NODES = (N1, N2, N3)
DUAL_STACK_NODES = tuple(
    dataclasses.replace(item, addresses=(*item.addresses, internal(f"fd00::{index}")))
    for index, item in enumerate(NODES, start=1)
)


def service(**changes: object) -> ServiceView:
    return dataclasses.replace(WEB, **changes)  # type: ignore[arg-type]


def annotated(**annotations: str) -> ServiceView:
    return service(annotations=annotations)


def endpoints(namespace: str, name: str, *nodes: str | None, ready: bool = True) -> EndpointSliceView:
    return EndpointSliceView(namespace, name, tuple(EndpointView(item, ready) for item in nodes))


def desired(decision: Decision) -> Desired:
    assert isinstance(decision, Desired), decision
    return decision


def backends(decision: Decision, listener: int = 0) -> list[tuple[str, int, int]]:
    return [
        (str(backend.address), backend.port, backend.weight)
        for backend in desired(decision).spec.listeners[listener].backends
    ]


def addresses(decision: Decision) -> list[str]:
    return [address for address, _port, _weight in backends(decision)]


# ---- whose Service ---------------------------------------------------------------------------------

OWNERSHIP = [
    # (case, service, settings, expected decision type, words of the reason)
    (
        "a ClusterIP Service is not ours",
        service(type="ClusterIP", finalizers=()),
        SETTINGS,
        NotOurs,
        "type ClusterIP",
    ),
    (
        "another class is not ours",
        service(load_balancer_class="example.com/lb", finalizers=()),
        SETTINGS,
        NotOurs,
        "'example.com/lb', not 'anycastlb.io/anycast'",
    ),
    (
        "no class is not ours unless we are the default",
        service(load_balancer_class=None, finalizers=()),
        SETTINGS,
        NotOurs,
        "unset",
    ),
    (
        "no class is ours when we are the default",
        service(load_balancer_class=None),
        dataclasses.replace(SETTINGS, default_class=True),
        Desired,
        "",
    ),
    (
        "another class is not ours even when we are the default",
        service(load_balancer_class="example.com/lb", finalizers=()),
        dataclasses.replace(SETTINGS, default_class=True),
        NotOurs,
        "example.com/lb",
    ),
    ("our class without our finalizer yet is ours", service(finalizers=()), SETTINGS, Desired, ""),
    (
        "a Service that became NodePort is released",
        service(type="NodePort"),
        SETTINGS,
        Release,
        "no longer ours: the Service is type NodePort",
    ),
    (
        "a Service that left our class is released",
        service(load_balancer_class="example.com/lb"),
        SETTINGS,
        Release,
        "no longer ours",
    ),
    (
        "a classless Service of a default controller that stopped being default is released",
        service(load_balancer_class=None),
        SETTINGS,
        Release,
        "unset",
    ),
    ("a Service being deleted is released", service(deleting=True), SETTINGS, Release, "being deleted"),
    (
        "a Service being deleted with bad annotations is still released",
        service(deleting=True, annotations={IPS: "nonsense"}),
        SETTINGS,
        Release,
        "being deleted",
    ),
    (
        "a Service being deleted without our finalizer needs nothing",
        service(deleting=True, finalizers=("other.example/finalizer",)),
        SETTINGS,
        NotOurs,
        "no finalizer of ours",
    ),
    (
        "another controller's finalizer does not make it ours",
        service(type="ClusterIP", finalizers=("service.kubernetes.io/load-balancer-cleanup",)),
        SETTINGS,
        NotOurs,
        "ClusterIP",
    ),
]


@pytest.mark.parametrize(
    ("svc", "config", "kind", "reason"), [c[1:] for c in OWNERSHIP], ids=[c[0] for c in OWNERSHIP]
)
def test_whose_service(svc: ServiceView, config: ControllerSettings, kind: type, reason: str) -> None:
    decision = reconcile(svc, NODES, (), config)
    assert type(decision) is kind
    if isinstance(decision, NotOurs | Release):
        assert reason in decision.reason


# ---- which nodes -----------------------------------------------------------------------------------

ELIGIBILITY = [
    # (case, nodes, annotations, settings, backend addresses)
    ("every node, ordered by name", (N3, N1, N2), {}, SETTINGS, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    (
        "a node being deleted leaves",
        (N1, dataclasses.replace(N2, deleting=True), N3),
        {},
        SETTINGS,
        ["10.0.0.1", "10.0.0.3"],
    ),
    (
        "a node labelled to be excluded leaves, whatever the value",
        (N1, node("n2", internal("10.0.0.2"), labels={EXCLUDE_LABEL: "false"}), N3),
        {},
        SETTINGS,
        ["10.0.0.1", "10.0.0.3"],
    ),
    (
        "a node the autoscaler is removing leaves (drains)",
        (
            N1,
            node("n2", internal("10.0.0.2"), taints=(("ToBeDeletedByClusterAutoscaler", "NoSchedule"),)),
            N3,
        ),
        {},
        SETTINGS,
        ["10.0.0.1", "10.0.0.3"],
    ),
    (
        "a NotReady or unreachable node stays: the PoPs' health checks decide",
        (
            N1,
            node("n2", internal("10.0.0.2"), taints=(("node.kubernetes.io/not-ready", "NoExecute"),)),
            node("n3", internal("10.0.0.3"), taints=(("node.kubernetes.io/unreachable", "NoSchedule"),)),
        ),
        {},
        SETTINGS,
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
    ),
    (
        "a cordoned node stays",
        (N1, node("n2", internal("10.0.0.2"), taints=(("node.kubernetes.io/unschedulable", "NoSchedule"),))),
        {},
        SETTINGS,
        ["10.0.0.1", "10.0.0.2"],
    ),
    ("the node selector picks nodes", NODES, {NODE_SELECTOR: "zone=b"}, SETTINGS, ["10.0.0.2", "10.0.0.3"]),
    ("a set-based node selector", NODES, {NODE_SELECTOR: "role,zone notin (b)"}, SETTINGS, ["10.0.0.1"]),
    (
        "the IONOS node selector picks nodes",
        NODES,
        {IONOS_NODE_SELECTOR: "role=edge"},
        SETTINGS,
        ["10.0.0.1", "10.0.0.2"],
    ),
    (
        "ours wins over the IONOS node selector",
        NODES,
        {NODE_SELECTOR: "zone=a", IONOS_NODE_SELECTOR: "zone=b"},
        SETTINGS,
        ["10.0.0.1"],
    ),
    (
        "an empty node selector means every node",
        NODES,
        {NODE_SELECTOR: ""},
        SETTINGS,
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
    ),
    (
        "the selected nodes still have to be eligible",
        (N1, dataclasses.replace(N2, deleting=True), N3),
        {NODE_SELECTOR: "zone=b"},
        SETTINGS,
        ["10.0.0.3"],
    ),
    (
        "ExternalIP comes before InternalIP by default",
        (node("n1", internal("10.0.0.1"), external("192.0.2.1")),),
        {},
        SETTINGS,
        ["192.0.2.1"],
    ),
    (
        "the configured order of address types wins",
        (node("n1", external("192.0.2.1"), internal("10.0.0.1")),),
        {},
        dataclasses.replace(SETTINGS, node_address_types=("InternalIP", "ExternalIP")),
        ["10.0.0.1"],
    ),
    (
        "only the configured address types count",
        (node("n1", external("192.0.2.1"), internal("10.0.0.1")), node("n2", internal("10.0.0.2"))),
        {},
        dataclasses.replace(SETTINGS, node_address_types=("ExternalIP",)),
        ["192.0.2.1"],
    ),
    (
        "the first address of the type in the Service's family",
        (node("n1", external("2001:db8::1"), internal("10.0.0.1"), internal("10.0.0.9")),),
        {},
        SETTINGS,
        ["10.0.0.1"],
    ),
    (
        "an address that does not parse is skipped",
        (node("n1", external("not-an-ip"), internal("10.0.0.1")),),
        {},
        SETTINGS,
        ["10.0.0.1"],
    ),
    (
        "a node without an address of the types takes no traffic",
        (N1, node("n2", ("Hostname", "n2.example"))),
        {},
        SETTINGS,
        ["10.0.0.1"],
    ),
    (
        "two nodes with one address: the first by name keeps it",
        (node("n2", external("192.0.2.1")), node("n1", external("192.0.2.1")), N3),
        {},
        SETTINGS,
        ["192.0.2.1", "10.0.0.3"],
    ),
]


@pytest.mark.parametrize(
    ("nodes", "notes", "config", "expected"), [c[1:] for c in ELIGIBILITY], ids=[c[0] for c in ELIGIBILITY]
)
def test_which_nodes_take_traffic(
    nodes: Sequence[NodeView], notes: dict[str, str], config: ControllerSettings, expected: list[str]
) -> None:
    decision = reconcile(annotated(**notes), nodes, (), config)
    assert addresses(decision) == expected
    assert addresses(decision) == [address for address, _, _ in backends(decision, 1)]


def test_an_ipv6_service_reaches_nodes_on_their_ipv6_addresses() -> None:
    nodes = (node("n1", internal("10.0.0.1"), internal("fd00::1")), node("n2", internal("fd00::2")))
    decision = reconcile(service(ip_families=("IPv6",)), nodes, (), SETTINGS)
    assert addresses(decision) == ["fd00::1", "fd00::2"]


def test_a_dual_stack_service_reaches_nodes_in_its_primary_family() -> None:
    nodes = (node("n1", internal("10.0.0.1"), internal("fd00::1")),)
    v6_first = service(ip_families=("IPv6", "IPv4"), ip_family_policy="RequireDualStack")
    assert addresses(reconcile(v6_first, nodes, (), SETTINGS)) == ["fd00::1"]


NODE_WARNINGS = [
    # (case, nodes, words of the one warning)
    (
        "a node without an address is named",
        (N1, node("n2", ("Hostname", "n2.example"))),
        ["nodes n2 have no IPv4 address of type ExternalIP or InternalIP", "kubectl get nodes -o wide"],
    ),
    (
        "many nodes without an address are counted",
        (N1, *(node(f"m{i}") for i in range(8))),
        ["m0, m1, m2, m3, m4 and 3 more"],
    ),
    (
        "a shared address names both nodes",
        (node("n2", external("192.0.2.1")), node("n1", external("192.0.2.1"))),
        ["nodes n1 and n2 both report the address 192.0.2.1; only n1 takes traffic", "InternalIP first"],
    ),
]


@pytest.mark.parametrize(
    ("nodes", "words"), [c[1:] for c in NODE_WARNINGS], ids=[c[0] for c in NODE_WARNINGS]
)
def test_node_warning(nodes: Sequence[NodeView], words: list[str]) -> None:
    decision = desired(reconcile(WEB, nodes, (), SETTINGS))
    assert len(decision.warnings) == 1, decision.warnings
    for word in words:
        assert word in decision.warnings[0]


# ---- what is invalid -------------------------------------------------------------------------------

INVALID = [
    # (case, service, nodes, words of the one problem)
    (
        "a bad IP in the annotation",
        annotated(**{IPS: "203.0.113.999"}),
        NODES,
        ["anycastlb.io/ips='203.0.113.999'"],
    ),
    ("a bad spec.loadBalancerIP", service(load_balancer_ip="nope"), NODES, ["spec.loadBalancerIP 'nope'"]),
    ("ip-count zero", annotated(**{IP_COUNT: "0"}), NODES, ["anycastlb.io/ip-count='0'", "between 1 and 16"]),
    ("ip-count 1000", annotated(**{IP_COUNT: "1000"}), NODES, ["anycastlb.io/ip-count='1000'"]),
    (
        "ip-count 9 on a dual-stack Service is 18 IPs",
        service(
            annotations={IP_COUNT: "9"}, ip_families=("IPv4", "IPv6"), ip_family_policy="PreferDualStack"
        ),
        NODES,
        ["(18 in all)"],
    ),
    (
        "an unknown PROXY version",
        annotated(**{PROXY_PROTOCOL: "v3"}),
        NODES,
        ["anycastlb.io/proxy-protocol='v3'"],
    ),
    (
        "a bad sharing key",
        annotated(**{SHARING_KEY: "Shared Key"}),
        NODES,
        ["anycastlb.io/sharing-key='Shared Key'"],
    ),
    ("a bad PoP", annotated(**{POPS: "FRA"}), NODES, ["anycastlb.io/pops='FRA'"]),
    (
        "a node selector that does not parse",
        annotated(**{NODE_SELECTOR: "zone in (a"}),
        NODES,
        ["is not a label selector"],
    ),
    (
        "a node selector that matches no node",
        annotated(**{NODE_SELECTOR: "zone=c"}),
        NODES,
        [
            "anycastlb.io/node-selector='zone=c' matches none of the 3 nodes",
            "check the labels with `kubectl get nodes --show-labels`",
        ],
    ),
    (
        "an IONOS node selector that matches no node",
        annotated(**{IONOS_NODE_SELECTOR: "zone=c"}),
        NODES,
        ["cloud.ionos.com/node-selector='zone=c' matches none of the 3 nodes"],
    ),
    (
        "a node selector that matches only excluded nodes",
        annotated(**{NODE_SELECTOR: "zone=a"}),
        (node("n1", internal("10.0.0.1"), labels={"zone": "a", EXCLUDE_LABEL: ""}), N2),
        [
            "none of the 1 nodes matching anycastlb.io/node-selector='zone=a' can take traffic",
            f"n1: labelled {EXCLUDE_LABEL}",
            "widen the selector",
        ],
    ),
    ("a cluster without nodes", WEB, (), ["the cluster has no nodes"]),
    (
        "every node draining",
        WEB,
        (
            dataclasses.replace(N1, deleting=True),
            node("n2", internal("10.0.0.2"), taints=(("ToBeDeletedByClusterAutoscaler", "NoSchedule"),)),
        ),
        [
            "none of the 2 nodes can take traffic",
            "n1: being deleted",
            "n2: tainted ToBeDeletedByClusterAutoscaler (draining)",
        ],
    ),
    (
        "no eligible node with an address of the configured types",
        WEB,
        (node("n1", ("Hostname", "n1")), node("n2", external("2001:db8::2"))),
        [
            "none of the 2 eligible nodes has an IPv4 address of type ExternalIP or InternalIP",
            "node address types",
        ],
    ),
    ("a Service without ports", service(ports=()), NODES, ["the Service has no ports", "spec.ports"]),
    (
        "an SCTP port",
        service(ports=(HTTP, ServicePortView("sig", "SCTP", 3868, 31868))),
        NODES,
        ["port 'sig' (3868/SCTP): the PoPs forward TCP and UDP only", "remove the SCTP port"],
    ),
    (
        "a port without a nodePort",
        service(ports=(HTTP, ServicePortView(None, "TCP", 8443, None))),
        NODES,
        ["port 8443/TCP has no nodePort", "allocateLoadBalancerNodePorts"],
    ),
    (
        "a nodePort out of range",
        service(ports=(ServicePortView("http", "TCP", 80, 70000),)),
        NODES,
        ["nodePort 70000 must be between 1 and 65535"],
    ),
    ("a port listed twice", service(ports=(HTTP, HTTP)), NODES, ["port 'http' (80/TCP) is listed twice"]),
    (
        "more ports than a load balancer has",
        service(ports=tuple(ServicePortView(None, "TCP", 1000 + i, 31000 + i) for i in range(257))),
        NODES,
        ["257 ports", "at most 256", "sharing-key"],
    ),
    (
        "Local without a healthCheckNodePort",
        service(external_traffic_policy="Local"),
        NODES,
        [
            "externalTrafficPolicy is Local but spec.healthCheckNodePort is unset",
            "externalTrafficPolicy: Cluster",
        ],
    ),
    ("an IP family Kubernetes does not know", service(ip_families=("IPv5",)), NODES, ["'IPv5'"]),
]


@pytest.mark.parametrize(("svc", "nodes", "words"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_service_says_what_and_how(
    svc: ServiceView, nodes: Sequence[NodeView], words: list[str]
) -> None:
    decision = reconcile(svc, nodes, (), SETTINGS)
    assert isinstance(decision, Invalid), decision
    assert len(decision.problems) == 1, decision.problems
    for word in words:
        assert word in decision.problems[0]


def test_every_problem_is_reported_at_once() -> None:
    svc = service(
        annotations={IPS: "x", NODE_SELECTOR: "zone=nowhere"},
        ports=(ServicePortView("sig", "SCTP", 1, 31001),),
    )
    decision = reconcile(svc, NODES, (), SETTINGS)
    assert isinstance(decision, Invalid)
    assert len(decision.problems) == 3
    assert "anycastlb.io/ips" in decision.problems[0]
    assert "SCTP" in decision.problems[1]
    assert "matches none of the 3 nodes" in decision.problems[2]


def test_a_broken_selector_is_not_also_reported_as_matching_nothing() -> None:
    decision = reconcile(annotated(**{NODE_SELECTOR: "("}), NODES, (), SETTINGS)
    assert isinstance(decision, Invalid)
    assert len(decision.problems) == 1


# ---- Local against Cluster -------------------------------------------------------------------------

LOCAL = service(external_traffic_policy="Local", health_check_node_port=32100)


def test_cluster_checks_the_node_port_over_tcp_with_equal_weights() -> None:
    spec = desired(reconcile(WEB, NODES, [endpoints("shop", "web", "n1", "n1")], SETTINGS)).spec
    assert spec.listeners[0].health == HealthCheck(type="tcp")
    assert spec.listeners[0].health.port is None
    assert backends(reconcile(WEB, NODES, (), SETTINGS)) == [
        ("10.0.0.1", 30080, 1),
        ("10.0.0.2", 30080, 1),
        ("10.0.0.3", 30080, 1),
    ]


def test_local_checks_the_health_check_node_port() -> None:
    spec = desired(reconcile(LOCAL, NODES, (), SETTINGS)).spec
    assert all(
        listener.health == HealthCheck(type="k8s", port=32100, path="/healthz") for listener in spec.listeners
    )


WEIGHTS = [
    # (case, endpoint slices, weights of n1, n2, n3)
    # weight 1, not 0 (drained, never probed): kube-proxy's check keeps a node without pods out, and
    # brings it in when a pod starts there without waiting for the controller (reconcile.py)
    ("no endpoints: every node listed with weight 1 for its check to decide", [], [1, 1, 1]),
    ("ready endpoints per node", [endpoints("shop", "web", "n1", "n1", "n1", "n2")], [3, 1, 1]),
    (
        "endpoints across slices add up",
        [endpoints("shop", "web", "n1"), endpoints("shop", "web", "n1")],
        [2, 1, 1],
    ),
    (
        "endpoints that are not ready do not count",
        [endpoints("shop", "web", "n2", "n2", ready=False)],
        [1, 1, 1],
    ),
    ("endpoints without a node do not count", [endpoints("shop", "web", None, "n3", "n3")], [1, 1, 2]),
    ("another Service's endpoints do not count", [endpoints("shop", "api", "n1", "n1")], [1, 1, 1]),
    ("another namespace's endpoints do not count", [endpoints("blog", "web", "n1", "n1")], [1, 1, 1]),
    ("endpoints on a node that takes no traffic are ignored", [endpoints("shop", "web", "n9")], [1, 1, 1]),
    (
        "a dual-stack Service's two slices count each pod once",
        [
            endpoints("shop", "web", "n1", "n1"),
            dataclasses.replace(endpoints("shop", "web", "n1", "n1"), address_type="IPv6"),
        ],
        [2, 1, 1],
    ),
    (
        "an endpoint in two slices mid-update counts once when addresses are known",
        [
            EndpointSliceView("shop", "web", (EndpointView("n1", True, ("10.1.0.5",)),)),
            EndpointSliceView(
                "shop",
                "web",
                (EndpointView("n1", True, ("10.1.0.5",)), EndpointView("n1", True, ("10.1.0.6",))),
            ),
        ],
        [2, 1, 1],
    ),
    ("weights stop at 1000", [endpoints("shop", "web", *["n2"] * 1200)], [1, 1000, 1]),
]


@pytest.mark.parametrize(("slices", "weights"), [c[1:] for c in WEIGHTS], ids=[c[0] for c in WEIGHTS])
def test_local_weighs_nodes_by_ready_endpoints(slices: list[EndpointSliceView], weights: list[int]) -> None:
    decision = reconcile(LOCAL, NODES, slices, SETTINGS)
    for listener in (0, 1):
        assert [weight for _address, _port, weight in backends(decision, listener)] == weights


# ---- listeners -------------------------------------------------------------------------------------


def test_a_listener_per_port_ordered_by_port_with_backends_on_its_node_port() -> None:
    svc = service(ports=(HTTPS, ServicePortView("dns", "UDP", 53, 30053), HTTP))
    spec = desired(reconcile(svc, NODES, (), SETTINGS)).spec
    assert [(listener.port, listener.protocol) for listener in spec.listeners] == [
        (53, "udp"),
        (80, "tcp"),
        (443, "tcp"),
    ]
    assert [{backend.port for backend in listener.backends} for listener in spec.listeners] == [
        {30053},
        {30080},
        {30443},
    ]


def test_a_udp_port_is_accepted_with_a_warning() -> None:
    decision = desired(
        reconcile(service(ports=(ServicePortView("dns", "UDP", 53, 30053),)), NODES, (), SETTINGS)
    )
    assert decision.spec.listeners[0].protocol == "udp"
    assert decision.warnings == (
        "port 'dns' (53/UDP): the PoPs do not forward UDP yet; they report this listener as unsupported",
    )


def test_one_port_number_over_tcp_and_udp_is_two_listeners() -> None:
    svc = service(
        ports=(ServicePortView("dns", "UDP", 53, 30053), ServicePortView("dns-tcp", "TCP", 53, 30053))
    )
    spec = desired(reconcile(svc, NODES, (), SETTINGS)).spec
    assert [(listener.port, listener.protocol) for listener in spec.listeners] == [(53, "tcp"), (53, "udp")]


@pytest.mark.parametrize(("value", "expected"), [(None, "v2"), ("v1", "v1"), ("v2", "v2"), ("none", "none")])
def test_proxy_protocol_applies_to_every_listener(value: str | None, expected: str) -> None:
    svc = annotated(**({} if value is None else {PROXY_PROTOCOL: value}))
    spec = desired(reconcile(svc, NODES, (), SETTINGS)).spec
    assert {listener.proxy_protocol for listener in spec.listeners} == {expected}


# ---- addresses, families, sharing, PoPs ------------------------------------------------------------

IPS_CASES = [
    # (case, service, settings, expected IPRequest, expected pops)
    ("one dynamic IPv4 address by default", WEB, SETTINGS, IPRequest(), ()),
    ("no ipFamilies means IPv4", service(ip_families=()), SETTINGS, IPRequest(), ()),
    (
        "an IPv6 Service gets an IPv6 address",
        service(ip_families=("IPv6",)),
        SETTINGS,
        IPRequest(families=("ipv6",)),
        (),
    ),
    (
        "SingleStack takes the first family",
        service(ip_families=("IPv6", "IPv4"), ip_family_policy="SingleStack"),
        SETTINGS,
        IPRequest(families=("ipv6",)),
        (),
    ),
    (
        "PreferDualStack with two families gets both",
        service(ip_families=("IPv4", "IPv6"), ip_family_policy="PreferDualStack"),
        SETTINGS,
        IPRequest(families=("ipv4", "ipv6")),
        (),
    ),
    (
        "RequireDualStack keeps the Service's primary family first",
        service(ip_families=("IPv6", "IPv4"), ip_family_policy="RequireDualStack"),
        SETTINGS,
        IPRequest(families=("ipv6", "ipv4")),
        (),
    ),
    (
        "PreferDualStack on a single-stack cluster gets one",
        service(ip_families=("IPv4",), ip_family_policy="PreferDualStack"),
        SETTINGS,
        IPRequest(),
        (),
    ),
    ("ip-count asks for several", annotated(**{IP_COUNT: "3"}), SETTINGS, IPRequest(count=3), ()),
    (
        "ip-count applies per family",
        service(
            annotations={IP_COUNT: "2"}, ip_families=("IPv4", "IPv6"), ip_family_policy="PreferDualStack"
        ),
        SETTINGS,
        IPRequest(count=2, families=("ipv4", "ipv6")),
        (),
    ),
    (
        "named addresses",
        annotated(**{IPS: "203.0.113.10,2001:db8::10"}),
        SETTINGS,
        IPRequest(addresses=(ipaddress.ip_address("203.0.113.10"), ipaddress.ip_address("2001:db8::10"))),
        (),
    ),
    (
        "spec.loadBalancerIP still works",
        service(load_balancer_ip="203.0.113.10"),
        SETTINGS,
        IPRequest(addresses=(ipaddress.ip_address("203.0.113.10"),)),
        (),
    ),
    ("a sharing key", annotated(**{SHARING_KEY: "shared"}), SETTINGS, IPRequest(sharing_key="shared"), ()),
    (
        "a sharing key with named addresses",
        annotated(**{SHARING_KEY: "shared", IPS: "203.0.113.10"}),
        SETTINGS,
        IPRequest(addresses=(ipaddress.ip_address("203.0.113.10"),), sharing_key="shared"),
        (),
    ),
    (
        "the controller's PoPs, sorted",
        WEB,
        dataclasses.replace(SETTINGS, pops=("fra", "ams")),
        IPRequest(),
        ("ams", "fra"),
    ),
    (
        "the Service pins its PoPs",
        annotated(**{POPS: "par"}),
        dataclasses.replace(SETTINGS, pops=("fra", "ams")),
        IPRequest(),
        ("par",),
    ),
]


@pytest.mark.parametrize(
    ("svc", "config", "ips", "pops"), [c[1:] for c in IPS_CASES], ids=[c[0] for c in IPS_CASES]
)
def test_addresses_and_pops(
    svc: ServiceView, config: ControllerSettings, ips: IPRequest, pops: tuple[str, ...]
) -> None:
    spec = desired(reconcile(svc, DUAL_STACK_NODES, (), config)).spec
    assert spec.ips == ips
    assert spec.pops == pops


def test_load_balancer_ip_is_deprecated() -> None:
    decision = desired(reconcile(service(load_balancer_ip="203.0.113.10"), NODES, (), SETTINGS))
    assert len(decision.warnings) == 1
    assert "move '203.0.113.10' to the annotation anycastlb.io/ips" in decision.warnings[0]


# ---- names -----------------------------------------------------------------------------------------

LONG = "n" * 63

NAMES = [
    # (case, cluster, namespace, name, expected: the name, or its length and beginning)
    ("cluster, namespace and name, then a hash", "prod", "shop", "web", ("prod-shop-web", 22)),
    (
        "64 characters are cut before the hash",
        "c",
        "n" * 30,
        "s" * 31,
        ("c-" + "n" * 30 + "-" + "s" * 21, 63),
    ),
    ("longest names are cut and hashed", "prod", LONG, LONG, ("prod-" + "n" * 49, 63)),
    (
        "a cut never leaves a dash before the hash",
        "prod",
        "n" * 48 + "-x",
        "w" * 20,
        ("prod-" + "n" * 48, 62),
    ),
]


@pytest.mark.parametrize(
    ("cluster", "namespace", "name", "expected"), [c[1:] for c in NAMES], ids=[c[0] for c in NAMES]
)
def test_load_balancer_name(cluster: str, namespace: str, name: str, expected: str | tuple[str, int]) -> None:
    result = load_balancer_name(cluster, namespace, name)
    if isinstance(expected, str):
        assert result == expected
    else:
        stem, length = expected
        assert result.startswith(stem + "-")
        assert len(result) == length
        assert result[len(stem) + 1 :].isalnum()
    LoadBalancerSpec(name=result, listeners=({"port": 80},))


def test_long_names_that_share_a_beginning_differ() -> None:
    first = load_balancer_name("prod", LONG, "web-1-" + "x" * 50)
    second = load_balancer_name("prod", LONG, "web-2-" + "x" * 50)
    assert first != second
    assert first == load_balancer_name("prod", LONG, "web-1-" + "x" * 50)


def test_names_that_the_dashes_would_make_equal_differ() -> None:
    assert load_balancer_name("prod", "team-a", "web") != load_balancer_name("prod", "team", "a-web")
    assert load_balancer_name("prod-a", "web", "x") != load_balancer_name("prod", "a-web", "x")


def test_the_same_service_in_two_clusters_gets_two_names() -> None:
    assert load_balancer_name("prod", LONG, LONG) != load_balancer_name("stage", LONG, LONG)


def test_characters_a_name_may_not_have_are_replaced_and_hashed() -> None:
    name = load_balancer_name("prod", "Shop", "web.v2")
    assert name.startswith("prod-shop-web-v2-")
    LoadBalancerSpec(name=name, listeners=({"port": 80},))


def test_the_decision_carries_the_settings_name() -> None:
    decision = desired(reconcile(WEB, NODES, (), SETTINGS))
    assert decision.name == decision.spec.name == SETTINGS.load_balancer_name(WEB)
    assert decision.name.startswith("prod-shop-web-")


# ---- settings --------------------------------------------------------------------------------------

BAD_SETTINGS = [
    ("a cluster name with capitals", {"cluster": "Prod"}, "cluster name 'Prod'"),
    ("an empty class", {"load_balancer_class": ""}, "must not be empty"),
    ("no address types", {"node_address_types": ()}, "at least one"),
    ("an address type without IPs", {"node_address_types": ("Hostname",)}, "'Hostname' holds no IP address"),
    ("a bad PoP", {"pops": ("FRA",)}, "pop 'FRA'"),
    ("a PoP twice", {"pops": ("fra", "fra")}, "twice"),
]


@pytest.mark.parametrize(
    ("changes", "words"), [c[1:] for c in BAD_SETTINGS], ids=[c[0] for c in BAD_SETTINGS]
)
def test_bad_settings_fail_at_start(changes: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        ControllerSettings(**{"cluster": "prod", **changes})  # type: ignore[arg-type]


def test_an_index_built_for_other_settings_is_refused() -> None:
    index = NodeIndex.build(NODES, dataclasses.replace(SETTINGS, node_address_types=("InternalIP",)))
    with pytest.raises(ValueError, match="other node address types"):
        reconcile(WEB, index, (), SETTINGS)


# ---- stable, valid specs ---------------------------------------------------------------------------

SAMPLES = [
    WEB,
    LOCAL,
    annotated(
        **{NODE_SELECTOR: "zone=b", PROXY_PROTOCOL: "v1", SHARING_KEY: "s", POPS: "fra,ams", IP_COUNT: "2"}
    ),
    service(ip_families=("IPv4", "IPv6"), ip_family_policy="PreferDualStack", ports=(HTTP,)),
    service(load_balancer_ip="203.0.113.10", ports=(ServicePortView("dns", "UDP", 53, 30053), HTTP)),
]
SLICES = [endpoints("shop", "web", "n1", "n2", "n2"), endpoints("shop", "web", "n3", ready=False)]


@pytest.mark.parametrize("svc", SAMPLES)
def test_equal_inputs_in_any_order_give_an_equal_spec(svc: ServiceView) -> None:
    first = desired(reconcile(svc, NODES, SLICES, SETTINGS))
    shuffled = dataclasses.replace(svc, ports=tuple(reversed(svc.ports)))
    second = desired(reconcile(shuffled, tuple(reversed(NODES)), list(reversed(SLICES)), SETTINGS))
    assert first == second
    assert first.spec.model_dump_json() == second.spec.model_dump_json()


@pytest.mark.parametrize("svc", SAMPLES)
def test_every_spec_validates_again_to_itself(svc: ServiceView) -> None:
    spec = desired(reconcile(svc, NODES, SLICES, SETTINGS)).spec
    assert LoadBalancerSpec.model_validate(spec.model_dump()) == spec
    assert LoadBalancerSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize("svc", SAMPLES)
def test_indexes_give_what_plain_lists_give(svc: ServiceView) -> None:
    nodes, slices = NodeIndex.build(NODES, SETTINGS), SliceIndex.build(SLICES)
    expected = reconcile(svc, NODES, SLICES, SETTINGS)
    assert reconcile(svc, nodes, slices, SETTINGS) == expected
    assert reconcile(svc, nodes, slices, SETTINGS) == expected  # again, from what the index kept
    assert reconcile(svc, NodeIndex.build(NODES, SETTINGS, previous=nodes), slices, SETTINGS) == expected


def test_a_backend_made_fast_is_a_backend() -> None:
    address = ipaddress.ip_address("10.0.0.1")
    fast, slow = _new_backend(address, 30080, 3), Backend(address=address, port=30080, weight=3)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_fields_set == slow.model_fields_set
    assert repr(fast) == repr(slow)
    assert copy.copy(fast) == pickle.loads(pickle.dumps(fast)) == slow  # noqa: S301 - our own bytes
    assert fast.model_copy(update={"weight": 1}) == Backend(address=address, port=30080)
    assert fast.model_fields_set == {"address", "port", "weight"}  # the copy did not touch the original's


def test_a_listener_kept_by_the_index_changes_with_its_settings() -> None:
    nodes = NodeIndex.build(NODES, SETTINGS)
    reconcile(WEB, nodes, (), SETTINGS)
    changed = desired(reconcile(annotated(**{PROXY_PROTOCOL: "v1"}), nodes, (), SETTINGS)).spec
    assert {listener.proxy_protocol for listener in changed.listeners} == {"v1"}
    local = desired(reconcile(LOCAL, nodes, SliceIndex.build(SLICES), SETTINGS)).spec
    assert local.listeners[0].health.type == "k8s"
    assert [backend.weight for backend in local.listeners[0].backends] == [1, 2, 1]


# ---- properties: the kept and patched listeners equal fresh ones -----------------------------------

_names = st.sampled_from([f"n{i}" for i in range(8)])
_node = st.builds(
    lambda name, host, zone, excluded, deleting, v6: node(
        name,
        internal(f"10.0.0.{host}"),
        *([internal(f"fd00::{host}")] if v6 else []),
        labels={"zone": zone, **({EXCLUDE_LABEL: ""} if excluded else {})},
        deleting=deleting,
    ),
    _names,
    st.integers(1, 9),
    st.sampled_from(["a", "b"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
_nodes = st.lists(_node, max_size=8, unique_by=lambda item: item.name)
_service = st.builds(
    lambda local, selector, v6, proxy, node_port: service(
        name=f"svc-{node_port}",
        ports=(ServicePortView("p", "TCP", 80, node_port), ServicePortView("q", "TCP", 81, node_port + 1)),
        external_traffic_policy="Local" if local else "Cluster",
        health_check_node_port=32000 if local else None,
        annotations={**({NODE_SELECTOR: selector} if selector else {}), PROXY_PROTOCOL: proxy},
        ip_families=("IPv6",) if v6 else ("IPv4",),
    ),
    st.booleans(),
    st.sampled_from(["", "zone=a", "zone=b", "zone notin (a)"]),
    st.booleans(),
    st.sampled_from(["v1", "v2"]),
    st.sampled_from([30000, 30010, 30020]),
)
_slices = st.lists(
    st.builds(
        lambda port, nodes: endpoints("shop", f"svc-{port}", *nodes),
        st.sampled_from([30000, 30010, 30020]),
        st.lists(_names, max_size=4),
    ),
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_nodes, _slices), min_size=1, max_size=4), st.lists(_service, min_size=1, max_size=4)
)
def test_indexes_kept_across_changes_decide_as_fresh_ones(
    generations: list[tuple[list[NodeView], list[EndpointSliceView]]], services: list[ServiceView]
) -> None:
    index: NodeIndex | None = None
    for nodes, slices in generations:
        index = NodeIndex.build(nodes, SETTINGS, previous=index)
        endpoint_index = SliceIndex.build(slices)
        for svc in services * 2:
            decision = reconcile(svc, index, endpoint_index, SETTINGS)
            assert decision == reconcile(svc, nodes, slices, SETTINGS)
            if isinstance(decision, Desired):
                assert LoadBalancerSpec.model_validate(decision.spec.model_dump()) == decision.spec


_junk_text = st.text(max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                IPS,
                IP_COUNT,
                SHARING_KEY,
                PROXY_PROTOCOL,
                NODE_SELECTOR,
                IONOS_NODE_SELECTOR,
                POPS,
                "anycastlb.io/x",
            ]
        ),
        _junk_text,
    ),
    st.none() | _junk_text,
    st.lists(
        st.builds(
            ServicePortView,
            st.none() | _junk_text,
            st.sampled_from(["TCP", "UDP", "SCTP", "tcp"]),
            st.integers(0, 70000),
            st.none() | st.integers(0, 70000),
        ),
        max_size=3,
    ),
    st.sampled_from(["Cluster", "Local"]),
    st.none() | st.integers(0, 70000),
    st.lists(st.sampled_from(["IPv4", "IPv6", "IPvX"]), max_size=2),
    st.sampled_from([None, "SingleStack", "PreferDualStack", "RequireDualStack"]),
    _nodes,
)
def test_any_service_gets_a_decision_and_never_an_exception(
    annotations: dict[str, str],
    legacy: str | None,
    ports: list[ServicePortView],
    policy: str,
    health_port: int | None,
    families: list[str],
    family_policy: str | None,
    nodes: list[NodeView],
) -> None:
    svc = service(
        annotations=annotations,
        load_balancer_ip=legacy,
        ports=tuple(ports),
        external_traffic_policy=policy,
        health_check_node_port=health_port,
        ip_families=tuple(families),
        ip_family_policy=family_policy,
    )
    decision = reconcile(svc, nodes, (), SETTINGS)
    assert isinstance(decision, Desired | Invalid)
    if isinstance(decision, Desired):
        assert LoadBalancerSpec.model_validate(decision.spec.model_dump()) == decision.spec
    else:
        assert decision.problems
        assert all(problem.strip() for problem in decision.problems)


# ---- a full resync: every Service over the same nodes ----------------------------------------


def _cluster(services: int, nodes: int) -> tuple[list[ServiceView], list[NodeView], list[EndpointSliceView]]:
    rng = random.Random(6)
    node_views = [
        node(
            f"node-{i:03d}",
            internal(f"10.{i // 250}.{i % 250}.1"),
            labels={"pool": "edge" if i % 4 else "core"},
        )
        for i in range(nodes)
    ]
    service_views, slices = [], []
    for i in range(services):
        local = i % 2 == 0
        namespace, name = f"team-{i % 50}", f"svc-{i}"
        service_views.append(
            service(
                namespace=namespace,
                name=name,
                uid=f"uid-{i}",
                ports=(ServicePortView("https", "TCP", 443, 30000 + i),),
                external_traffic_policy="Local" if local else "Cluster",
                health_check_node_port=40000 + i if local else None,
                annotations={NODE_SELECTOR: "pool=edge"} if i % 10 == 0 else {},
            )
        )
        if local:
            pods = [f"node-{rng.randrange(nodes):03d}" for _ in range(3)]
            slices.append(endpoints(namespace, name, *pods))
    return service_views, node_views, slices


def test_a_resync_reuses_every_listener_and_a_node_change_splices_the_backends() -> None:
    """What keeps a resync cheap, checked as behaviour (the time is bench/controller.py's to
    measure): a resync with nothing changed hands back the very listener objects, and a leaving
    node is cut from listeners built before, which equal a build from scratch."""
    services, nodes, slices = _cluster(1000, 200)
    node_index, slice_index = NodeIndex.build(nodes, SETTINGS), SliceIndex.build(slices)
    first = [reconcile(svc, node_index, slice_index, SETTINGS) for svc in services]
    again = [reconcile(svc, node_index, slice_index, SETTINGS) for svc in services]
    assert all(isinstance(decision, Desired) for decision in first)
    assert again == first
    assert all(
        new.spec.listeners[0] is old.spec.listeners[0]
        for new, old in zip(again, first, strict=True)
        if isinstance(new, Desired) and isinstance(old, Desired)
    )

    nodes[7] = dataclasses.replace(nodes[7], deleting=True)
    spliced_index = NodeIndex.build(nodes, SETTINGS, previous=node_index)
    changed = [reconcile(svc, spliced_index, SliceIndex.build(slices), SETTINGS) for svc in services]
    rebuilt = [reconcile(svc, NodeIndex.build(nodes, SETTINGS), slice_index, SETTINGS) for svc in services]
    assert changed == rebuilt
    assert len(backends(changed[1])) == 199
    assert "10.0.7.1" not in {address for address, _, _ in backends(changed[1])}
