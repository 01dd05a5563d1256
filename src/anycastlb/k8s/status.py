"""A Service's ``status.loadBalancer.ingress``: what we write, and whether it already says that.

We publish ``ip`` only, never ``hostname``: external-dns would publish a hostname as a CNAME, and
the VIPs are what clients must reach. ``ipMode: Proxy`` tells kube-proxy not to short-cut traffic
from inside the cluster to the VIP straight to the pods (it must pass the PoPs, which add the PROXY
header the ingress controller expects).

:func:`same_ingress` ignores ``ipMode``: API servers without the field (before Kubernetes 1.29, or
with the LoadBalancerIPMode gate off) drop it, so comparing it would rewrite the status forever.
"""

from collections.abc import Mapping, Sequence
from typing import TypedDict

from anycastlb.k8s.views import ServiceView

__all__ = ["IngressEntry", "PortStatus", "ingress_for", "same_ingress"]


class PortStatus(TypedDict):
    port: int
    protocol: str  # "TCP" / "UDP", as in the Service


class IngressEntry(TypedDict):
    ip: str
    ipMode: str  # the Kubernetes field name
    ports: list[PortStatus]


_Entry = tuple[object, object, frozenset[tuple[object, object, object]]]


def ingress_for(addresses: Sequence[str], service: ServiceView) -> tuple[IngressEntry, ...]:
    """One entry per VIP, in the order given, each listing the Service's ports."""
    return tuple(
        {
            "ip": address,
            "ipMode": "Proxy",
            "ports": [{"port": port.port, "protocol": port.protocol} for port in service.ports],
        }
        for address in addresses
    )


def _entry(item: Mapping[str, object]) -> _Entry:
    ports = item.get("ports") or ()
    listed = ports if isinstance(ports, Sequence) else ()
    return (
        item.get("ip"),
        item.get("hostname"),
        frozenset(
            (port.get("port"), port.get("protocol") or "TCP", port.get("error"))
            for port in listed
            if isinstance(port, Mapping)
        ),
    )


def same_ingress(current: Sequence[Mapping[str, object]], desired: Sequence[Mapping[str, object]]) -> bool:
    """Whether the status already says what we would write, ignoring ``ipMode`` and the order of
    entries and ports (neither carries meaning). A ``hostname`` or port ``error`` someone else
    wrote counts as a difference, so our write replaces it."""
    if len(current) != len(desired):
        return False
    return sorted(map(_entry, current), key=repr) == sorted(map(_entry, desired), key=repr)
