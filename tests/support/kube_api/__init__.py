"""A stand-in for kube-apiserver, for integration tests of the controller with lightkube's real clients.

No kube-apiserver can be installed on these machines, so :class:`KubeApiStandIn` serves the part of the
Kubernetes API the controller uses, over real HTTP on 127.0.0.1, with the API server's semantics where a
controller depends on them:

- kinds: core/v1 Services, Nodes, Events, Namespaces (namespaces are implicit: any one works);
  discovery.k8s.io/v1 EndpointSlices; coordination.k8s.io/v1 Leases (``resources.py``);
- verbs: list (label and field selectors, ``limit``/``continue``), get, create, replace, the four patch
  types, delete, watch, at the URLs lightkube builds (``api_server.py``);
- one global resourceVersion; optimistic concurrency (409 on a stale resourceVersion), no-op writes that
  take no version, the status subresource, finalizers holding a deletion, a watch history that
  :meth:`KubeApiStandIn.compact` cuts so a resume gets 410 (``store.py``);
- the patch semantics, including strategic merge of finalizers and ports (``patches.py``);
- Service defaults and allocations: clusterIP, ipFamilies, nodePorts, healthCheckNodePort (``services.py``);
- errors as ``Status`` objects (``status.py``).

Why our own server rather than kmock 0.8 plus a fix layer: kmock's Kubernetes mode lacks exactly the
semantics these tests exist for (label selectors, PUT, uid/resourceVersion, watch streams that resume
from a version, 410, finalizers, defaults), so a fix layer would replace most of what it serves while
keeping its routing DSL and aiohttp underneath. Written against lightkube's own request code, a store
with one resourceVersion counter and a Starlette app is smaller to read than kmock plus overrides, and
every rule it applies is in one place (``ObjectStore._write``). It also runs in its own thread and event
loop, so sync tests, lightkube's sync ``Client`` and any event loop of the test can use it alike.

Not modelled: authentication and authorization (any token is accepted), admission, garbage collection
(ownerReferences are kept, never acted on), namespace deletion emptying the namespace, managedFields
(server-side apply is a keyed merge that never removes fields), graceful deletion periods, and an API
server restart that cuts connections mid-stream (:meth:`KubeApiStandIn.restart_watches` ends streams
cleanly, as a graceful shutdown does).
"""

from tests.support.kube_api.api_server import RecordedRequest
from tests.support.kube_api.resources import KindName
from tests.support.kube_api.standin import KubeApiStandIn
from tests.support.kube_api.status import ApiStatusError

__all__ = ["ApiStatusError", "KindName", "KubeApiStandIn", "RecordedRequest"]
