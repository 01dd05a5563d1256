"""What the controller's pure core reads: plain views of Kubernetes objects and its own settings.

The runtime (the only code that imports a Kubernetes client) turns lightkube objects into these
frozen views, filling in what the API server defaults, and hands them to ``anycastlb.k8s.reconcile``.
Keeping the core on views means it is tested with literals and never with a fake API server.
"""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from anycastlb.k8s.selectors import Selector
from anycastlb.model.base import check_name

__all__ = [
    "DRAIN_TAINTS",
    "EXCLUDE_LABEL",
    "FINALIZER",
    "LOAD_BALANCER_CLASS",
    "NODE_ADDRESS_TYPES",
    "ControllerSettings",
    "EndpointSliceView",
    "EndpointView",
    "NodeView",
    "ServicePortView",
    "ServiceView",
    "load_balancer_name",
]

LOAD_BALANCER_CLASS = "anycastlb.io/anycast"
# Ours, not service.kubernetes.io/load-balancer-cleanup: a cloud controller may strip that one from
# Services of classes it does not own.
FINALIZER = "anycastlb.io/load-balancer-cleanup"
# A node with this label (any value) never receives load balancer traffic (the well-known label).
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
# Taint keys that mark a node on its way out: it leaves the backends so it drains (see reconcile).
DRAIN_TAINTS = frozenset({"ToBeDeletedByClusterAutoscaler"})
# Node address types that hold IP addresses (Hostname/InternalDNS/ExternalDNS do not).
NODE_ADDRESS_TYPES = ("ExternalIP", "InternalIP")

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_HASH = 8  # hex digits appended to every name: 32 bits tell the names apart


def load_balancer_name(cluster: str, namespace: str, name: str) -> str:
    """``{cluster}-{namespace}-{name}-{hash}``: unique per tenant across clusters, readable in a list.

    The hash (of ``cluster/namespace/name``) is always there because the dashes are ambiguous:
    namespace ``team-a`` with Service ``web`` and namespace ``team`` with Service ``a-web`` would
    otherwise share a name, and two Services would fight over one load balancer. A name longer than
    63 characters (or with characters a load balancer name may not have) is cut before the hash;
    the same Service always gets the same name.
    """
    digest = hashlib.sha256(f"{cluster}/{namespace}/{name}".encode()).hexdigest()[:_HASH]
    full = f"{cluster}-{namespace}-{name}"
    stem = _NOT_NAME.sub("-", full.lower())[: 63 - _HASH - 1].strip("-")
    return f"{stem}-{digest}" if stem else digest


@dataclass(frozen=True, slots=True)
class ServicePortView:
    name: str | None
    protocol: str  # "TCP", "UDP" or "SCTP", as in the Service
    port: int
    node_port: int | None  # None: allocateLoadBalancerNodePorts: false and none was set


@dataclass(frozen=True, slots=True)
class ServiceView:
    namespace: str
    name: str
    uid: str
    type: str  # "LoadBalancer", "ClusterIP", ...
    load_balancer_class: str | None
    annotations: Mapping[str, str]
    ports: tuple[ServicePortView, ...]
    external_traffic_policy: str = "Cluster"  # or "Local"
    health_check_node_port: int | None = None
    load_balancer_ip: str | None = None  # spec.loadBalancerIP (deprecated)
    ip_families: tuple[str, ...] = ("IPv4",)  # "IPv4" / "IPv6", primary first
    ip_family_policy: str | None = None  # "SingleStack", "PreferDualStack", "RequireDualStack"
    deleting: bool = False  # metadata.deletionTimestamp is set
    finalizers: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NodeView:
    name: str
    labels: Mapping[str, str]
    addresses: tuple[tuple[str, str], ...]  # (type, address) as in status.addresses, in order
    deleting: bool = False
    taints: tuple[tuple[str, str], ...] = ()  # (key, effect)


@dataclass(frozen=True, slots=True)
class EndpointView:
    node_name: str | None
    ready: bool  # conditions.ready, where unset already counts as ready (EndpointSlice API)
    addresses: tuple[str, ...] = ()  # optional: lets duplicate endpoints across slices count once


@dataclass(frozen=True, slots=True)
class EndpointSliceView:
    namespace: str
    service_name: str  # the kubernetes.io/service-name label
    endpoints: tuple[EndpointView, ...]
    # "IPv4" / "IPv6": a dual-stack Service has one slice per family listing the same pods twice
    address_type: str = "IPv4"


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """How this controller instance runs; checked once when the controller starts."""

    cluster: str  # names load balancers `{cluster}-{namespace}-{name}`: unique per tenant
    load_balancer_class: str = LOAD_BALANCER_CLASS
    default_class: bool = False  # also take LoadBalancer Services without spec.loadBalancerClass
    node_address_types: tuple[str, ...] = NODE_ADDRESS_TYPES  # which node address to use, in order
    pops: tuple[str, ...] = ()  # PoPs that serve our load balancers unless a Service pins its own
    # Nodes reach the PoPs through WireGuard tunnels: register them with the control plane, use
    # their tunnel addresses as backends, write their configs to the anycastlb-tunnel Secret.
    tunnels: bool = False
    # With tunnels, only the nodes whose labels match go through one (None: every node); the others
    # are reached at their own addresses, as without tunnels: a provider migration mixes both.
    tunnel_nodes: Selector | None = None

    def __post_init__(self) -> None:
        check_name(self.cluster, "cluster name")
        if not self.load_balancer_class:
            raise ValueError(f"load balancer class must not be empty (use {LOAD_BALANCER_CLASS!r})")
        if not self.node_address_types:
            raise ValueError(f"node address types must name at least one of {', '.join(NODE_ADDRESS_TYPES)}")
        for kind in self.node_address_types:
            if kind not in NODE_ADDRESS_TYPES:
                usable = " and/or ".join(NODE_ADDRESS_TYPES)
                raise ValueError(f"node address type {kind!r} holds no IP address; use {usable}")
        for pop in self.pops:
            check_name(pop, "pop")
        if len(set(self.pops)) != len(self.pops):
            raise ValueError("pops lists a PoP twice")
        if self.tunnel_nodes is not None and not self.tunnels:
            raise ValueError(
                "--tunnel-nodes needs --tunnels: it picks which nodes are reached through a tunnel, and "
                "without --tunnels every node is reached at its own address; add --tunnels (the chart's "
                "tunnels.enabled) or drop --tunnel-nodes"
            )

    def through_tunnel(self, labels: Mapping[str, str]) -> bool:
        """Whether the PoPs reach a node with these labels through its tunnel (and not at its own
        address): with tunnels, every node unless ``tunnel_nodes`` leaves it out."""
        return self.tunnels and (self.tunnel_nodes is None or self.tunnel_nodes.matches(labels))

    def load_balancer_name(self, service: "ServiceView") -> str:
        """The name of the Service's load balancer on the control plane (see :func:`load_balancer_name`)."""
        return load_balancer_name(self.cluster, service.namespace, service.name)
