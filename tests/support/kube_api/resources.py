"""The kinds the stand-in serves, as kube-apiserver names them in URLs, lists and errors."""

from dataclasses import dataclass
from typing import Literal

KindName = Literal["Service", "Node", "Event", "Namespace", "EndpointSlice", "Lease", "Secret"]


@dataclass(frozen=True)
class ResourceKind:
    kind: str
    group: str  # "" for the core group (URLs under /api/v1)
    version: str
    plural: str
    namespaced: bool
    status_subresource: bool  # writes to the object ignore .status; writes to /status change only .status
    fields: frozenset[str] = frozenset()  # field selectors beyond metadata.name and metadata.namespace

    @property
    def api_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"

    @property
    def resource(self) -> str:
        """How error messages name the kind: ``services``, ``leases.coordination.k8s.io``."""
        return self.plural if not self.group else f"{self.plural}.{self.group}"


SERVICE = ResourceKind("Service", "", "v1", "services", namespaced=True, status_subresource=True)
NODE = ResourceKind(
    "Node",
    "",
    "v1",
    "nodes",
    namespaced=False,
    status_subresource=True,
    fields=frozenset({"spec.unschedulable"}),
)
EVENT = ResourceKind(
    "Event",
    "",
    "v1",
    "events",
    namespaced=True,
    status_subresource=False,
    fields=frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "type",
        }
    ),
)
NAMESPACE = ResourceKind(
    "Namespace",
    "",
    "v1",
    "namespaces",
    namespaced=False,
    status_subresource=True,
    fields=frozenset({"status.phase"}),
)
ENDPOINT_SLICE = ResourceKind(
    "EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", namespaced=True, status_subresource=False
)
LEASE = ResourceKind(
    "Lease", "coordination.k8s.io", "v1", "leases", namespaced=True, status_subresource=False
)

SECRET = ResourceKind("Secret", "", "v1", "secrets", namespaced=True, status_subresource=False)

KINDS: tuple[ResourceKind, ...] = (SERVICE, NODE, EVENT, NAMESPACE, ENDPOINT_SLICE, LEASE, SECRET)
_BY_URL = {(kind.group, kind.version, kind.plural): kind for kind in KINDS}
_BY_NAME = {kind.kind: kind for kind in KINDS}


def kind_at(group: str, version: str, plural: str) -> ResourceKind | None:
    """The kind served under ``/api[s]/{group}/{version}/…/{plural}``, if the stand-in serves it."""
    return _BY_URL.get((group, version, plural))


def kind_named(name: str) -> ResourceKind:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"the stand-in serves no kind {name!r}; it serves {sorted(_BY_NAME)}") from None
