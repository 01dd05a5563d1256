"""What kube-apiserver sets and checks on a Service, so tests can create Services as users write them.

On create: ``type`` ClusterIP, ``sessionAffinity`` None, ``internalTrafficPolicy`` Cluster,
``ipFamilyPolicy`` SingleStack, ``ipFamilies`` (IPv4, or both families for a dual-stack policy on a
dual-stack cluster; RequireDualStack on a single-stack cluster is a 422), ``clusterIP``/``clusterIPs``
from 10.96.0.0/16 (and fd00:10:96::/112), ports' ``protocol`` TCP and ``targetPort`` = ``port``; for
NodePort and LoadBalancer a unique ``nodePort`` per port and ``externalTrafficPolicy`` Cluster; for
LoadBalancer ``allocateLoadBalancerNodePorts`` true and, with ``externalTrafficPolicy: Local``, a
``healthCheckNodePort``. A nodePort or clusterIP already held is a 422.

On update, as the real registry does (``patchAllocatedValues``, ``dropTypeDependentFields``): cluster IPs
stay; a port without a nodePort keeps the one its *name* had; node ports, the health check port and
``loadBalancerClass`` go when the type no longer needs them; ``loadBalancerClass`` of a LoadBalancer
cannot change and is forbidden on other types; clusterIP cannot change.
"""

import ipaddress
from collections.abc import Iterator
from typing import Any

from tests.support.kube_api.resources import SERVICE
from tests.support.kube_api.status import ApiStatusError, invalid

Obj = dict[str, Any]

SERVICE_CIDRS = {
    "IPv4": ipaddress.ip_network("10.96.0.0/16"),
    "IPv6": ipaddress.ip_network("fd00:10:96::/112"),
}
_FIRST_HOST = 10  # .1 is the kubernetes Service; leave the first few as kubeadm does


class _Pool:
    """Values held by Services, handed out in order from a rolling cursor (O(1) per allocation)."""

    def __init__(self, values: range, what: str) -> None:
        self.values, self.what = values, what
        self.held: dict[object, str] = {}  # value -> "namespace/name" of its holder
        self._cursor = 0

    def free_for(self, value: object, owner: str) -> bool:
        return self.held.get(value, owner) == owner

    def take(self, owner: str, also_taken: set[object]) -> int:
        for _ in range(len(self.values)):
            value = self.values[self._cursor]
            self._cursor = (self._cursor + 1) % len(self.values)
            if self.free_for(value, owner) and value not in also_taken:
                return value
        raise ApiStatusError(500, f"failed to allocate a {self.what}: range is full")


class ServiceAllocations:
    """Cluster IPs and node ports held by the stored Services."""

    def __init__(self, node_ports: range, dual_stack: bool) -> None:
        self.dual_stack = dual_stack
        self.node_ports = _Pool(node_ports, "nodePort")
        self.hosts = {
            family: _Pool(range(_FIRST_HOST, net.num_addresses - 1), "serviceIP")
            for family, net in SERVICE_CIDRS.items()
        }

    def hold(self, service: Obj | None, release: bool = False) -> None:
        if service is None:
            return
        owner = _owner(service)
        for pool, value in _held_values(self, service):
            if release:
                if pool.held.get(value) == owner:
                    del pool.held[value]
            else:
                pool.held[value] = owner

    def prepare(self, new: Obj, old: Obj | None) -> None:
        """Defaults and allocations on ``new`` (a Service being created, or replacing ``old``)."""
        spec = new.setdefault("spec", {})
        name = new["metadata"]["name"]
        if old is not None:
            _keep_allocated(spec, old.get("spec") or {}, name)
        kind = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        _check_load_balancer_class(spec, old, name)
        if kind == "ExternalName":
            for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(field, None)
            return
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        self._cluster_ips(spec, _owner(new), name)
        self._node_ports(spec, _owner(new), name)

    def _cluster_ips(self, spec: Obj, owner: str, name: str) -> None:
        policy = spec.setdefault("ipFamilyPolicy", "SingleStack")
        if policy == "RequireDualStack" and not self.dual_stack:
            raise invalid(
                SERVICE,
                name,
                "spec.ipFamilyPolicy",
                'Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services',
            )
        families = spec.get("ipFamilies") or (["IPv4", "IPv6"] if policy != "SingleStack" else ["IPv4"])
        if policy == "SingleStack" or not self.dual_stack:
            families = families[:1]
        if not self.dual_stack and families != ["IPv4"]:
            raise invalid(
                SERVICE,
                name,
                "spec.ipFamilies",
                f"Unsupported value: {families[0]!r}: the cluster is IPv4 only",
            )
        spec["ipFamilies"] = families
        if spec.get("clusterIP") == "None" or spec.get("clusterIPs") == ["None"]:
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        given = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
        addresses = []
        for index, family in enumerate(families):
            network, pool = SERVICE_CIDRS[family], self.hosts[family]
            if index < len(given):
                host = int(ipaddress.ip_address(given[index])) - int(network.network_address)
                if not pool.free_for(host, owner):
                    raise invalid(
                        SERVICE,
                        name,
                        f"spec.clusterIPs[{index}]",
                        f'Invalid value: "{given[index]}": provided IP is already allocated',
                    )
            else:
                host = pool.take(owner, set())
            addresses.append(str(network.network_address + host))
        spec["clusterIP"], spec["clusterIPs"] = addresses[0], addresses

    def _node_ports(self, spec: Obj, owner: str, name: str) -> None:
        load_balancer = spec["type"] == "LoadBalancer"
        if load_balancer:
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        wants_ports = spec["type"] == "NodePort" or (load_balancer and spec["allocateLoadBalancerNodePorts"])
        ports, local = spec.get("ports") or [], load_balancer and spec["externalTrafficPolicy"] == "Local"
        taken: set[object] = set()  # the ports this spec asks for, then those handed to it
        for index, port in enumerate(ports):
            if port.get("nodePort"):
                self._check_port(port["nodePort"], owner, name, f"spec.ports[{index}].nodePort", taken)
                taken.add(port["nodePort"])
        if local and spec.get("healthCheckNodePort"):
            self._check_port(spec["healthCheckNodePort"], owner, name, "spec.healthCheckNodePort", taken)
            taken.add(spec["healthCheckNodePort"])
        for port in ports:
            if wants_ports and not port.get("nodePort"):
                port["nodePort"] = self.node_ports.take(owner, taken)
                taken.add(port["nodePort"])
        if local and not spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = self.node_ports.take(owner, taken)
        if not local and spec.get("healthCheckNodePort"):
            raise invalid(
                SERVICE,
                name,
                "spec.healthCheckNodePort",
                "Forbidden: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",  # noqa: E501
            )

    def _check_port(self, port: int, owner: str, name: str, field: str, taken: set[object]) -> None:
        if port not in self.node_ports.values:
            bounds = f"{self.node_ports.values.start}-{self.node_ports.values.stop - 1}"
            raise invalid(
                SERVICE,
                name,
                field,
                f"Invalid value: {port}: provided port is not in the valid range. "
                f"The range of valid ports is {bounds}",
            )
        if not self.node_ports.free_for(port, owner) or port in taken:
            raise invalid(SERVICE, name, field, f"Invalid value: {port}: provided port is already allocated")


def _owner(service: Obj) -> str:
    return f"{service['metadata'].get('namespace')}/{service['metadata']['name']}"


def _held_values(allocations: ServiceAllocations, service: Obj) -> Iterator[tuple[_Pool, object]]:
    spec = service.get("spec") or {}
    for port in spec.get("ports") or []:
        if port.get("nodePort"):
            yield allocations.node_ports, port["nodePort"]
    if spec.get("healthCheckNodePort"):
        yield allocations.node_ports, spec["healthCheckNodePort"]
    for address in spec.get("clusterIPs") or []:
        if address != "None":
            parsed = ipaddress.ip_address(address)
            family = "IPv4" if parsed.version == 4 else "IPv6"
            yield allocations.hosts[family], int(parsed) - int(SERVICE_CIDRS[family].network_address)


def _keep_allocated(spec: Obj, old: Obj, name: str) -> None:
    """The registry's ``patchAllocatedValues`` and ``dropTypeDependentFields`` on an update."""
    old_ip, new_ip = old.get("clusterIP"), spec.get("clusterIP")
    if old_ip and new_ip and new_ip != old_ip and spec.get("type", "ClusterIP") != "ExternalName":
        raise invalid(
            SERVICE, name, "spec.clusterIPs[0]", f"Invalid value: {new_ip!r}: may not change once set"
        )
    for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if field in old and not spec.get(field):
            spec[field] = old[field]
    needs_ports = spec.get("type") in ("NodePort", "LoadBalancer")
    old_by_name = {port.get("name"): port.get("nodePort") for port in old.get("ports") or []}
    for port in spec.get("ports") or []:
        if not needs_ports and port.get("nodePort") == old_by_name.get(port.get("name")):
            port.pop("nodePort", None)
        elif needs_ports and not port.get("nodePort") and old_by_name.get(port.get("name")):
            port["nodePort"] = old_by_name[port.get("name")]
    local = spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
    if not local and spec.get("healthCheckNodePort") == old.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    elif local and not spec.get("healthCheckNodePort") and old.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old["healthCheckNodePort"]
    if spec.get("type") != "LoadBalancer" and spec.get("loadBalancerClass") == old.get("loadBalancerClass"):
        spec.pop("loadBalancerClass", None)
        spec.pop("allocateLoadBalancerNodePorts", None)
    if spec.get("type") not in ("NodePort", "LoadBalancer") and spec.get("externalTrafficPolicy") == old.get(
        "externalTrafficPolicy"
    ):
        spec.pop("externalTrafficPolicy", None)


def _check_load_balancer_class(spec: Obj, old: Obj | None, name: str) -> None:
    wanted = spec.get("loadBalancerClass")
    if spec["type"] != "LoadBalancer":
        if wanted is not None:
            raise invalid(
                SERVICE,
                name,
                "spec.loadBalancerClass",
                "Forbidden: may only be used when `type` is 'LoadBalancer'",
            )
        return
    old_spec = (old or {}).get("spec") or {}
    if (
        old is not None
        and old_spec.get("type") == "LoadBalancer"
        and old_spec.get("loadBalancerClass") != wanted
    ):
        raise invalid(
            SERVICE, name, "spec.loadBalancerClass", f"Invalid value: {wanted!r}: may not change once set"
        )
