"""lightkube objects → the pure core's views (``views.py``). Only what reconcile reads is kept, so
an unrelated change (a Service's managedFields, a Node's heartbeat) compares equal and wakes
nothing: Nodes update their status every ~10 s, and 500 Nodes must not re-reconcile 5,000
Services on every heartbeat."""

from typing import Any

from anycastlb.k8s.views import EndpointSliceView, EndpointView, NodeView, ServicePortView, ServiceView

__all__ = ["endpoint_slice_view", "node_view", "service_view"]

_SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def service_view(obj: Any) -> ServiceView:  # noqa: ANN401 - lightkube's Service
    meta, spec = obj.metadata, obj.spec
    ports = tuple(
        ServicePortView(
            name=port.name, protocol=port.protocol or "TCP", port=port.port, node_port=port.nodePort
        )
        for port in (spec.ports or ())
    )
    return ServiceView(
        namespace=meta.namespace or "default",
        name=meta.name,
        uid=meta.uid or "",
        type=spec.type or "ClusterIP",
        load_balancer_class=spec.loadBalancerClass,
        annotations=dict(meta.annotations or {}),
        ports=ports,
        external_traffic_policy=spec.externalTrafficPolicy or "Cluster",
        health_check_node_port=spec.healthCheckNodePort,
        load_balancer_ip=spec.loadBalancerIP,
        ip_families=tuple(spec.ipFamilies or ()),
        ip_family_policy=spec.ipFamilyPolicy,
        deleting=meta.deletionTimestamp is not None,
        finalizers=tuple(meta.finalizers or ()),
    )


def ingress_of(obj: Any) -> tuple[dict[str, Any], ...]:  # noqa: ANN401
    """The Service's current ``status.loadBalancer.ingress`` as plain dicts."""
    status = obj.status
    balancer = status.loadBalancer if status is not None else None
    return tuple(item.to_dict() for item in ((balancer.ingress if balancer else None) or ()))


def node_view(obj: Any) -> NodeView:  # noqa: ANN401 - lightkube's Node
    meta, spec, status = obj.metadata, obj.spec, obj.status
    addresses = tuple((item.type, item.address) for item in ((status.addresses if status else None) or ()))
    taints = tuple((taint.key, taint.effect) for taint in ((spec.taints if spec else None) or ()))
    return NodeView(
        name=meta.name,
        labels=dict(meta.labels or {}),
        addresses=addresses,
        deleting=meta.deletionTimestamp is not None,
        taints=taints,
    )


def endpoint_slice_view(obj: Any) -> EndpointSliceView:  # noqa: ANN401 - lightkube's EndpointSlice
    meta = obj.metadata
    endpoints = []
    for endpoint in obj.endpoints or ():
        conditions = endpoint.conditions
        ready = True if conditions is None or conditions.ready is None else bool(conditions.ready)
        endpoints.append(
            EndpointView(node_name=endpoint.nodeName, ready=ready, addresses=tuple(endpoint.addresses or ()))
        )
    return EndpointSliceView(
        namespace=meta.namespace or "default",
        service_name=(meta.labels or {}).get(_SERVICE_NAME_LABEL, ""),
        endpoints=tuple(endpoints),
        address_type=obj.addressType or "IPv4",
    )
