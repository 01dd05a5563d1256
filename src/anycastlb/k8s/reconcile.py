"""The controller's decision for one Service: not ours, release, invalid, or this load balancer spec.

Theory of operation
-------------------
:func:`reconcile` is a pure function of a :class:`~anycastlb.k8s.views.ServiceView`, the cluster's
Nodes and EndpointSlices and the controller's settings. The runtime acts on the :data:`Decision`:

- :class:`NotOurs`: nothing to do (another type or class, and none of our finalizer on it).
- :class:`Release`: delete our load balancer and remove our finalizer. A Service that is being
  deleted, changed its type, or left our class (the finalizer shows it was ours).
- :class:`Invalid`: one Warning Event per problem; the existing load balancer keeps serving as it is.
- :class:`Desired`: ensure this :class:`~anycastlb.model.desired.LoadBalancerSpec` (after adding our
  finalizer). Equal inputs give an equal spec, in a stable order, so the control plane's idempotent
  PUT keeps the version and no PoP re-syncs for nothing.

Which address a node is reached at: its own (the first of ``node_address_types``), or with
tunnels its tunnel address from the control plane; ``tunnel_nodes`` (``--tunnel-nodes``) limits the
tunnels to the nodes it matches, and the others keep their own address (a provider migration).

Which nodes receive traffic. Eligible: not being deleted, not labelled
``node.kubernetes.io/exclude-from-external-load-balancers``, not tainted
``ToBeDeletedByClusterAutoscaler``, and matching the Service's node selector. A node the autoscaler is
about to remove leaves the backends: the PoPs send it no new connections while the ones it holds
finish (drain, not cut). Node readiness is deliberately not a filter (KEP-3458): a NotReady kubelet
often still forwards fine, and the PoPs' health checks see what actually works, within a second.

``externalTrafficPolicy: Local``: only nodes with a ready pod of the Service may take traffic, and
each should get a share per pod, not per node. The backends are still every eligible node: the
health check on the Service's ``healthCheckNodePort`` answers 503 on nodes without a ready pod, so
the PoPs skip them, and the PoPs read live weights from kube-proxy's
``X-Load-Balancing-Endpoint-Weight``. Listing only nodes with pods would change the spec (a new
version at every PoP) on every pod move, and a pod that starts on a new node would wait for the
controller instead of the next health check. The weights in the spec (ready endpoints on the node,
from the EndpointSlices) are the starting point until the first check.

A node with no ready endpoint still gets weight 1, not 0, and that is deliberate. Its check
answers 503, so the PoPs send it nothing once they have probed it. Weight 0 would mean "drained by
configuration": never picked, and never probed either, so only the controller could bring the node
back, after it has seen the EndpointSlice change and sent a new spec. The data path must not wait
for the controller. If the controller is down or slow while a Deployment rolls its pods onto other
nodes, weight 0 on those nodes would leave no backend at all; with weight 1 the health checks
find the new pods within an interval. What is left: without tunnels, a node the PoP has not
probed yet starts up (``initial: up``) and can be picked before its first probe. That lasts at most
one interval (0.5 s) after the PoP learns of the node, and the first failed connect ejects it
(passive check), retried on the next node. ``Cluster``: a TCP check on the nodePort, weight 1
(kube-proxy spreads over all pods anyway).

With tunnels (``settings.tunnels``) every listener's check starts ``initial: down``: a new backend
serves after its first successful probe. A tunnel address is only reachable once the node's agent
(from the Secret) and the PoP (from its desired state) have both applied the tunnel's config, and
nothing orders that before the PoP learns of the backend, so "up until probed" could send new
connections into a tunnel that is not there yet, on every node that joins and at every key
rotation. A node the PoP already probes keeps its state when the check changes only in
``initial`` (health/monitor.py), so turning tunnels on takes no serving backend down. Nodes
reached at their own address (``--tunnel-nodes`` leaves them out) share the listener and its
check, so a new one of them waits for its first probe too: one interval at most.

Speed. A resync reconciles every Service against the same Nodes, so the node side is prepared once
(:class:`NodeIndex`: eligibility, addresses per family, each distinct selector's matches) and so
are the ready endpoints (:class:`SliceIndex`). The index also keeps the listeners it built: a
resync that finds a Service unchanged gets its listeners back whole (5,000 Services x 500 nodes in
a fraction of a second), and after a Node change the next index splices the joining or leaving
node into the previous listeners instead of rebuilding them. What no cache avoids is the first
pass: one Backend per node and port, millions at that scale. They are assembled without re-running
pydantic's validation, whose checks (an address, a port and a weight in range, no duplicate) hold
by construction here; the tests check that every spec validates again to itself.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from pydantic import BaseModel

from anycastlb.k8s.annotations import HOSTNAMES, SNI_PORTS, Address, Options, read_options
from anycastlb.k8s.selectors import Selector
from anycastlb.k8s.views import (
    DRAIN_TAINTS,
    EXCLUDE_LABEL,
    FINALIZER,
    ControllerSettings,
    EndpointSliceView,
    NodeView,
    ServicePortView,
    ServiceView,
)
from anycastlb.model.addresses import parse_address
from anycastlb.model.config import Backend, HealthCheck, ListenerSettings, ProxyProtocolVersion
from anycastlb.model.desired import IPFamily, IPRequest, LoadBalancerSpec

__all__ = [
    "MAX_WEIGHT",
    "Decision",
    "Desired",
    "Invalid",
    "NodeIndex",
    "NotOurs",
    "Release",
    "SliceIndex",
    "reconcile",
]

MAX_WEIGHT: Final = 1000  # Backend.weight's bound; a node with more ready pods is capped
MAX_LISTENERS: Final = 256  # LoadBalancerSpec.listeners' bound
_FAMILIES: Final[dict[str, IPFamily]] = {"IPv4": "ipv4", "IPv6": "ipv6"}
_PROTOCOLS: Final[dict[str, Literal["tcp", "udp"]]] = {"TCP": "tcp", "UDP": "udp", "tcp": "tcp", "udp": "udp"}
_DUAL_STACK: Final = frozenset({"PreferDualStack", "RequireDualStack"})
_LISTED: Final = 5  # node names quoted in one message before "and N more"


@dataclass(frozen=True, slots=True)
class NotOurs:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Release:
    reason: str


@dataclass(frozen=True, slots=True)
class Invalid:
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Desired:
    spec: LoadBalancerSpec
    name: str
    warnings: tuple[str, ...] = ()


Decision = NotOurs | Release | Invalid | Desired


# ---- backends --------------------------------------------------------------------------------------

# Backends are made the way pydantic's own ``__copy__`` makes a model: the instance's slots set
# directly, about a third of the cost of ``Backend(address=..., port=..., weight=...)``, which
# matters at 500 nodes x 10,000 ports. Safe because the values are valid by construction (a parsed
# address, a port checked to be in 1..65535, a weight in 1..1000); tests re-validate every spec.
_BACKEND_FIELDS: Final = {"address", "port", "weight"}  # shared: frozen models never add to it
_new_model = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _new_backend(address: Address, port: int, weight: int) -> Backend:
    backend = _new_model(Backend)
    _set_dict(backend, {"address": address, "port": port, "weight": weight})
    _set_fields(backend, _BACKEND_FIELDS)
    _set_extra(backend, None)
    _set_private(backend, None)
    return backend


@dataclass(frozen=True, slots=True)
class _Target:
    """An eligible node and its address in one IP family."""

    name: str
    address: Address


def _weight(ready: Mapping[str, int] | None, node: str) -> int:
    return 1 if ready is None else min(max(ready.get(node, 0), 1), MAX_WEIGHT)


def _fresh(targets: tuple[_Target, ...], port: int, ready: Mapping[str, int] | None) -> tuple[Backend, ...]:
    """A Backend per target; :func:`_new_backend` inlined (this loop makes millions in a cold start)."""
    backends = []
    for target in targets:
        weight = 1 if ready is None else min(max(ready.get(target.name, 0), 1), MAX_WEIGHT)
        backend = _new_model(Backend)
        _set_dict(backend, {"address": target.address, "port": port, "weight": weight})
        _set_fields(backend, _BACKEND_FIELDS)
        _set_extra(backend, None)
        _set_private(backend, None)
        backends.append(backend)
    return tuple(backends)


# A way from an older target list to a newer one: (start, stop) runs of the older list, kept in
# order, and the targets that are new. One node joining or leaving is three runs or two.
_Recipe = tuple[tuple[int, int] | _Target, ...]


def _recipe(old: tuple[_Target, ...], new: tuple[_Target, ...]) -> _Recipe:
    position = {target: index for index, target in enumerate(old)}
    runs: list[tuple[int, int] | _Target] = []
    for target in new:
        index = position.get(target)
        last = runs[-1] if runs else None
        if index is None:
            runs.append(target)
        elif isinstance(last, tuple) and last[1] == index:
            runs[-1] = (last[0], index + 1)
        else:
            runs.append((index, index + 1))
    return tuple(runs)


# Per nodePort and protocol: (the listener without backends, the weights it was built for, itself).
_Built = tuple[ListenerSettings, tuple[tuple[str, int], ...] | None, ListenerSettings]
# What a selection leaves its successor: its targets and the listeners built on them.
_Earlier = tuple[tuple["_Target", ...], dict[tuple[int, str], _Built]]


class _Selection:
    """The nodes one node selector picks in one IP family, or why there are none to pick; and the
    listeners built on them, so a resync that finds nothing changed reuses them whole.

    Memory stays bounded: one listener per nodePort and protocol (a changed Service replaces its
    entry), and a selection of the next NodeIndex takes over only the listeners still asked for.
    """

    __slots__ = ("_built", "_earlier", "_recipe", "problem", "targets", "warnings")

    def __init__(
        self, targets: tuple[_Target, ...] = (), problem: str | None = None, warnings: tuple[str, ...] = ()
    ) -> None:
        self.targets = targets
        self.problem = problem
        self.warnings = warnings
        self._built: dict[tuple[int, str], _Built] = {}
        self._earlier: dict[tuple[int, str], _Built] = {}  # the same selection's, one NodeIndex ago
        self._recipe: _Recipe | None = None  # None: the earlier targets were these

    def follow(self, earlier: "_Earlier") -> None:
        """Reuse what the same selection in the NodeIndex before this one built."""
        targets, self._earlier = earlier
        self._recipe = None if targets == self.targets else _recipe(targets, self.targets)

    @property
    def earlier(self) -> "_Earlier":
        return self.targets, self._built

    def listener(
        self, template: ListenerSettings, node_port: int, ready: Mapping[str, int] | None
    ) -> ListenerSettings:
        """``template`` with a backend per target on ``node_port`` (``ready``: Local's weights)."""
        key = (node_port, template.protocol)
        weights = None if ready is None else tuple(sorted(ready.items()))
        built = self._built.get(key)
        if built is not None and built[1] == weights:
            if built[0] == template:
                return built[2]
            backends = built[2].backends  # same nodes and weights, other settings (PROXY version...)
        else:
            earlier = self._earlier.get(key)
            if earlier is not None and earlier[1] == weights:
                if self._recipe is None and earlier[0] == template:
                    self._built[key] = earlier
                    return earlier[2]
                backends = self._rebuild(earlier[2].backends, node_port, ready)
            else:
                backends = _fresh(self.targets, node_port, ready)
        listener = template.model_copy(update={"backends": backends})
        self._built[key] = (template, weights, listener)
        return listener

    def _rebuild(
        self, backends: tuple[Backend, ...], port: int, ready: Mapping[str, int] | None
    ) -> tuple[Backend, ...]:
        """These targets' backends from those built on the earlier targets (same port and weights)."""
        if self._recipe is None:
            return backends
        rebuilt: list[Backend] = []
        for run in self._recipe:
            if isinstance(run, _Target):
                rebuilt.append(_new_backend(run.address, port, _weight(ready, run.name)))
            else:
                rebuilt.extend(backends[run[0] : run[1]])
        return tuple(rebuilt)


# ---- nodes -----------------------------------------------------------------------------------------


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _ineligible(node: NodeView) -> str | None:
    if node.deleting:
        return "being deleted"
    if EXCLUDE_LABEL in node.labels:
        return f"labelled {EXCLUDE_LABEL}"
    for key, _effect in node.taints:
        if key in DRAIN_TAINTS:
            return f"tainted {key} (draining)"
    return None


def _address(node: NodeView, types: tuple[str, ...], version: int) -> Address | None:
    """The node's first address of the configured types, in their order, of this IP version."""
    for kind in types:
        for address_type, text in node.addresses:
            if address_type != kind:
                continue
            try:
                address = parse_address(text.strip())  # the API server may pad; nothing else may
            except ValueError:
                continue
            if address.version == version:
                return address
    return None


class NodeIndex:
    """The cluster's Nodes prepared once for many :func:`reconcile` calls.

    Keep it while no Node changes (a periodic resync then reuses every listener it built). When a
    Node changes, build the next one with ``previous=`` the current one: listeners whose nodes did
    not change are reused, and the others are patched (a node joining or leaving splices one
    Backend into each listener) instead of rebuilt.
    """

    __slots__ = (
        "_addresses",
        "_ineligible",
        "_labels",
        "_previous",
        "_selections",
        "_tunnelled",
        "address_types",
        "tunnel_nodes",
        "tunnels",
    )

    def __init__(
        self, address_types: tuple[str, ...], tunnels: bool = False, tunnel_nodes: Selector | None = None
    ) -> None:
        self.address_types = address_types
        self.tunnels = tunnels  # some or all addresses are tunnel addresses from the control plane
        self.tunnel_nodes = tunnel_nodes  # with tunnels: which nodes have them (None: every node)
        self._tunnelled: set[str] = set()  # eligible nodes reached through their tunnel
        self._labels: dict[str, Mapping[str, str]] = {}  # every node by name, in name order
        self._ineligible: dict[str, str] = {}  # node -> why it takes no traffic
        # eligible nodes' addresses per IP version: one, or with tunnels two during a key rotation
        self._addresses: dict[int, dict[str, tuple[Address, ...]]] = {4: {}, 6: {}}
        self._selections: dict[tuple[str, int], _Selection] = {}
        self._previous: dict[tuple[str, int], _Earlier] = {}

    @classmethod
    def build(
        cls,
        nodes: Iterable[NodeView],
        settings: ControllerSettings,
        previous: "NodeIndex | None" = None,
        tunnel_addresses: Mapping[str, tuple[str, ...]] | None = None,
    ) -> "NodeIndex":
        """``tunnel_addresses`` (node → its backend addresses from the control plane, the current
        first): with tunnels, the backends of a node reached through its tunnel (every node, or
        those ``settings.tunnel_nodes`` matches) are these and never its own addresses, and such a
        node the control plane has not given one yet takes no traffic. A node the selector leaves
        out is reached at its own address, as without tunnels."""
        tunnel_nodes = settings.tunnel_nodes if tunnel_addresses is not None else None
        index = cls(settings.node_address_types, tunnel_addresses is not None, tunnel_nodes)
        for node in sorted(nodes, key=lambda node: node.name):
            index._labels[node.name] = node.labels
            reason = _ineligible(node)
            if reason is not None:
                index._ineligible[node.name] = reason
                continue
            tunnelled = tunnel_addresses is not None and (
                tunnel_nodes is None or tunnel_nodes.matches(node.labels)
            )
            if tunnelled:
                index._tunnelled.add(node.name)
            for version, addresses in index._addresses.items():
                if tunnel_addresses is not None and tunnelled:
                    found = tuple(parse_address(text) for text in tunnel_addresses.get(node.name, ()))
                    addresses[node.name] = tuple(address for address in found if address.version == version)
                else:
                    own = _address(node, settings.node_address_types, version)
                    addresses[node.name] = () if own is None else (own,)
        if (
            previous is not None
            and previous.address_types == index.address_types
            and previous.tunnels == index.tunnels
            and previous.tunnel_nodes == index.tunnel_nodes
        ):
            # what its selections built, not the selections: no chain of older indexes stays alive
            index._previous = {key: selection.earlier for key, selection in previous._selections.items()}
        return index

    def select(self, selector: Selector | None, source: str, version: int) -> _Selection:
        """The nodes for a Service with this node selector (``source``: the annotation, for messages)
        whose nodePorts are reached in IP ``version`` (4 or 6)."""
        key = (source if selector is not None else "", version)
        found = self._selections.get(key)
        if found is None:
            found = self._select(selector, source, version)
            earlier = self._previous.get(key)
            if earlier is not None:
                found.follow(earlier)
            self._selections[key] = found
        return found

    def _select(self, selector: Selector | None, source: str, version: int) -> _Selection:
        names = [
            name for name, labels in self._labels.items() if selector is None or selector.matches(labels)
        ]
        if not names:
            if selector is None:
                return _Selection(problem="the cluster has no nodes; a load balancer needs at least one")
            return _Selection(
                problem=f"{source} matches none of the {len(self._labels)} nodes; check the labels with "
                "`kubectl get nodes --show-labels` and fix the selector, or remove it to use every node"
            )
        which = "" if selector is None else f" matching {source}"
        eligible = [name for name in names if name not in self._ineligible]
        if not eligible:
            reasons = "; ".join(f"{name}: {self._ineligible[name]}" for name in names[:_LISTED])
            more = f"; and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
            return _Selection(
                problem=f"none of the {len(names)} nodes{which} can take traffic ({reasons}{more}); remove "
                f"the {EXCLUDE_LABEL} label from a node, wait for new nodes, or widen the selector"
            )
        family = f"IPv{version}"
        addresses = self._addresses[version]
        targets: list[_Target] = []
        missing: list[str] = []
        owners: dict[Address, str] = {}
        warnings: list[str] = []
        for name in eligible:
            if not addresses[name]:
                missing.append(name)
            for address in addresses[name]:
                if address in owners:  # a spec lists an address once (nodes behind one NAT address?)
                    warnings.append(
                        f"nodes {owners[address]} and {name} both report the address {address}; only "
                        f"{owners[address]} takes traffic (if they share a NAT address, start the "
                        "controller with the node address type InternalIP first)"
                    )
                else:
                    owners[address] = name
                    targets.append(_Target(name, address))
        if not targets:
            types, check = self._address_kinds(eligible)
            return _Selection(
                problem=f"none of the {len(eligible)} eligible nodes{which} has an {family} address of type "
                f"{types}; {check}"
                + (
                    ", or start the controller with the node address types the nodes have"
                    if any(name not in self._tunnelled for name in eligible)
                    else ""
                )
            )
        # one warning per way of reaching a node, so each says what that node lacks and what to do
        tunnelled = [name for name in missing if name in self._tunnelled]
        direct = [name for name in missing if name not in self._tunnelled]
        lacking = []
        for group in (tunnelled, direct):
            if group:
                types, check = self._address_kinds(group)
                lacking.append(
                    f"nodes {_listed(group)} have no {family} address of type {types} and take no "
                    f"traffic; {check}"
                )
        warnings[:0] = lacking  # before the shared-address warnings, as the more common
        return _Selection(tuple(targets), None, tuple(warnings))

    def _address_kinds(self, names: Iterable[str]) -> tuple[str, str]:
        """The address type these nodes' backends use, and where to look when one has none: a
        tunnel address, the node's own, or (``--tunnel-nodes`` picked some of them) either."""
        own = " or ".join(self.address_types)
        check_own = "check `kubectl get nodes -o wide`"
        check_tunnel = "the control plane gives nodes tunnel addresses once they are registered (IPv4 only)"
        reached = {name in self._tunnelled for name in names}
        if reached == {True}:
            return "tunnel", check_tunnel
        if reached != {True, False}:
            return own, check_own
        matching = f"nodes matching --tunnel-nodes {str(self.tunnel_nodes)!r}"
        return f"tunnel ({matching}) or {own} (the others)", f"{check_tunnel}; for the others, {check_own}"


# ---- endpoints -------------------------------------------------------------------------------------

_NONE_READY: Final[Mapping[str, int]] = {}


class SliceIndex:
    """Ready endpoints per Service and node, from the EndpointSlices, counted once for many calls."""

    __slots__ = ("_ready",)

    def __init__(self, ready: dict[tuple[str, str], dict[str, int]]) -> None:
        self._ready = ready

    @classmethod
    def build(cls, slices: Iterable[EndpointSliceView]) -> "SliceIndex":
        # (namespace, service) -> address type -> node -> ready endpoints. A dual-stack Service has
        # one slice per family listing the same pods, so families are merged by max, not summed.
        counts: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
        seen: dict[tuple[str, str, str], set[str]] = {}
        for piece in slices:
            if not piece.service_name:
                continue
            service = (piece.namespace, piece.service_name)
            per_node = counts.setdefault(service, {}).setdefault(piece.address_type, {})
            addresses = seen.setdefault((*service, piece.address_type), set())
            for endpoint in piece.endpoints:
                if not endpoint.ready or endpoint.node_name is None:
                    continue
                if endpoint.addresses:  # the same endpoint in two slices (mid-update) counts once
                    if endpoint.addresses[0] in addresses:
                        continue
                    addresses.add(endpoint.addresses[0])
                per_node[endpoint.node_name] = per_node.get(endpoint.node_name, 0) + 1
        ready: dict[tuple[str, str], dict[str, int]] = {}
        for service, families in counts.items():
            merged: dict[str, int] = {}
            for per_node in families.values():
                for node, count in per_node.items():
                    merged[node] = max(merged.get(node, 0), count)
            ready[service] = merged
        return cls(ready)

    def ready(self, namespace: str, name: str) -> Mapping[str, int]:
        """Node name -> ready endpoints of the Service there (absent: none)."""
        return self._ready.get((namespace, name), _NONE_READY)


# ---- the Service -----------------------------------------------------------------------------------


def _not_ours(service: ServiceView, settings: ControllerSettings) -> str | None:
    if service.type != "LoadBalancer":
        return f"the Service is type {service.type}, not LoadBalancer"
    if service.load_balancer_class is None:
        if settings.default_class:
            return None
        return f"spec.loadBalancerClass is unset and this controller serves {settings.load_balancer_class!r}"
    if service.load_balancer_class != settings.load_balancer_class:
        return (
            f"spec.loadBalancerClass is {service.load_balancer_class!r}, not {settings.load_balancer_class!r}"
        )
    return None


def _families(service: ServiceView, problems: list[str]) -> tuple[IPFamily, ...]:
    """The VIP families: the Service's first ipFamily, or both for a dual-stack policy."""
    families: list[IPFamily] = []
    for name in service.ip_families or ("IPv4",):
        family = _FAMILIES.get(name)
        if family is None:
            problems.append(f"spec.ipFamilies lists {name!r}; Kubernetes knows only IPv4 and IPv6")
        elif family not in families:
            families.append(family)
    if not families:
        return ("ipv4",)
    if service.ip_family_policy in _DUAL_STACK:
        return tuple(families[:2])
    return (families[0],)


def _port_label(port: ServicePortView) -> str:
    return (
        f"port {port.name!r} ({port.port}/{port.protocol})"
        if port.name
        else f"port {port.port}/{port.protocol}"
    )


def _check_ports(service: ServiceView, problems: list[str], warnings: list[str]) -> None:
    if not service.ports:
        problems.append("the Service has no ports; list at least one under spec.ports")
    if len(service.ports) > MAX_LISTENERS:
        problems.append(
            f"the Service has {len(service.ports)} ports; a load balancer serves at most {MAX_LISTENERS}, "
            "so split them over several Services (with an anycastlb.io/sharing-key to share the IP)"
        )
    seen: set[tuple[int, str]] = set()
    for port in service.ports:
        label = _port_label(port)
        protocol = _PROTOCOLS.get(port.protocol)
        if protocol is None:
            problems.append(
                f"{label}: the PoPs forward TCP and UDP only; remove the {port.protocol} port or serve it "
                "through a Service of another spec.loadBalancerClass"
            )
        elif protocol == "udp":
            warnings.append(
                f"{label}: the PoPs do not forward UDP yet; they report this listener as unsupported"
            )
        if (port.port, port.protocol) in seen:
            problems.append(f"{label} is listed twice; list each port and protocol once")
        seen.add((port.port, port.protocol))
        if not 1 <= port.port <= 65535:
            problems.append(f"{label}: the port must be between 1 and 65535")
        if port.node_port is None:
            problems.append(
                f"{label} has no nodePort, and the PoPs forward to the nodes' nodePorts; remove "
                "spec.allocateLoadBalancerNodePorts: false (or set it to true) so Kubernetes allocates one"
            )
        elif not 1 <= port.node_port <= 65535:
            problems.append(f"{label}: nodePort {port.node_port} must be between 1 and 65535")
    if service.external_traffic_policy == "Local":
        hc_port = service.health_check_node_port
        if hc_port is None:
            problems.append(
                "externalTrafficPolicy is Local but spec.healthCheckNodePort is unset, and the PoPs need it "
                "to find the nodes with ready pods; set it to a free node port (Kubernetes allocates one "
                "for type LoadBalancer) or use externalTrafficPolicy: Cluster"
            )
        elif not 1 <= hc_port <= 65535:
            problems.append(f"spec.healthCheckNodePort {hc_port} must be between 1 and 65535")


@lru_cache(maxsize=8192)
def _listener_template(
    port: int,
    protocol: Literal["tcp", "udp"],
    proxy: ProxyProtocolVersion,
    health_port: int | None,
    hostnames: tuple[str, ...] = (),
    sni_default: bool = False,
    initial: Literal["up", "down"] = "up",
) -> ListenerSettings:
    """A validated listener without backends; health_port set means Local (kube-proxy's check);
    hostnames (and sni_default) on the SNI ports of a Service that shares one by SNI; ``initial``:
    the state of a backend the PoP has not probed yet ("down" with tunnels, see the top)."""
    health = (
        HealthCheck(type="tcp", initial=initial)
        if health_port is None
        else HealthCheck(type="k8s", port=health_port, initial=initial)
    )
    return ListenerSettings(
        port=port,
        protocol=protocol,
        proxy_protocol=proxy,
        health=health,
        hostnames=hostnames,
        sni_default=sni_default,
    )


def _check_sni_ports(service: ServiceView, options: Options, problems: list[str]) -> None:
    """The hostnames apply to the Service's TCP ports named by anycastlb.io/sni-ports (443 unless
    set): each named port must be one of them, and at least one must exist."""
    if not options.hostnames:
        return
    tcp = {port.port for port in service.ports if _PROTOCOLS.get(port.protocol) == "tcp"}
    missing = [port for port in options.sni_ports if port not in tcp]
    if SNI_PORTS in service.annotations and missing:
        has = _listed(map(str, sorted(tcp))) or "none"
        problems.append(
            f"{SNI_PORTS}={service.annotations[SNI_PORTS]!r} names {', '.join(map(str, missing))}, which "
            f"the Service has no TCP port for; list only its TLS ports (its TCP ports: {has})"
        )
    elif not set(options.sni_ports) & tcp:
        problems.append(
            f"{HOSTNAMES} applies to TCP port 443 unless {SNI_PORTS} names others, and the Service has no "
            f"TCP port 443; set {SNI_PORTS} to its TLS port(s), e.g. '{min(tcp, default=8443)}'"
        )


@lru_cache(maxsize=8192)
def _ip_request(
    addresses: tuple[Address, ...],
    families: tuple[IPFamily, ...],
    count: int,
    sharing_key: str | None,
    pool: str | None = None,
) -> IPRequest:
    if addresses:
        return IPRequest(addresses=addresses, sharing_key=sharing_key, pool=pool)
    return IPRequest(families=families, count=count, sharing_key=sharing_key, pool=pool)


def _desired(
    service: ServiceView, nodes: NodeIndex, slices: SliceIndex, settings: ControllerSettings
) -> Decision:
    problems: list[str] = []
    warnings: list[str] = []
    families = _families(service, problems)
    options = read_options(service.annotations, service.load_balancer_ip, len(families))
    problems.extend(options.problems)
    warnings.extend(options.warnings)
    _check_ports(service, problems, warnings)
    _check_sni_ports(service, options, problems)
    selection = _Selection()
    if options.node_selector_valid:
        # Backends are reached on the Service's primary family: kube-proxy serves its nodePorts there.
        version = 6 if families[0] == "ipv6" else 4
        selection = nodes.select(options.node_selector, options.node_selector_source, version)
        if selection.problem is not None:
            problems.append(selection.problem)
        warnings.extend(selection.warnings)
    if problems:
        return Invalid(tuple(problems))

    local = service.external_traffic_policy == "Local"
    ready = slices.ready(service.namespace, service.name) if local else None
    health_port = service.health_check_node_port if local else None
    initial: Literal["up", "down"] = "down" if settings.tunnels else "up"
    listeners = []
    for port in sorted(service.ports, key=lambda item: (item.port, _PROTOCOLS[item.protocol])):
        node_port = port.node_port or 0  # checked above: never None here
        protocol = _PROTOCOLS[port.protocol]
        sni = protocol == "tcp" and port.port in options.sni_ports and bool(options.hostnames)
        template = _listener_template(
            port.port,
            protocol,
            options.proxy_protocol,
            health_port,
            options.hostnames if sni else (),
            options.sni_default and sni,
            initial,
        )
        listeners.append(selection.listener(template, node_port, ready))
    name = settings.load_balancer_name(service)
    spec = LoadBalancerSpec(
        name=name,
        ips=_ip_request(options.addresses, families, options.ip_count, options.sharing_key, options.pool),
        listeners=tuple(listeners),
        pops=options.pops if options.pops is not None else tuple(sorted(settings.pops)),
    )
    return Desired(spec, name, tuple(warnings))


def reconcile(
    service: ServiceView,
    nodes: NodeIndex | Iterable[NodeView],
    slices: SliceIndex | Iterable[EndpointSliceView],
    settings: ControllerSettings,
) -> Decision:
    """Decide what to do with ``service``. Pass a :class:`NodeIndex` and :class:`SliceIndex` built
    once when reconciling many Services; plain lists are indexed on each call."""
    reason = _not_ours(service, settings)
    has_finalizer = FINALIZER in service.finalizers
    if reason is not None:
        return Release(f"no longer ours: {reason}") if has_finalizer else NotOurs(reason)
    if service.deleting:
        if has_finalizer:
            return Release("the Service is being deleted")
        return NotOurs("the Service is being deleted and carries no finalizer of ours")
    if not isinstance(nodes, NodeIndex):
        nodes = NodeIndex.build(nodes, settings)
    elif nodes.address_types != settings.node_address_types:
        raise ValueError("the NodeIndex was built with other node address types than these settings")
    if not isinstance(slices, SliceIndex):
        slices = SliceIndex.build(slices)
    return _desired(service, nodes, slices, settings)
