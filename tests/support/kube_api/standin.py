"""The stand-in's lifecycle (uvicorn in a background thread on 127.0.0.1) and the test's side of it."""

import builtins
import copy
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn
import yaml

from tests.support.kube_api.api_server import ApiServer, RecordedRequest
from tests.support.kube_api.patches import APPLY, JSON_PATCH, MERGE, STRATEGIC
from tests.support.kube_api.resources import EVENT, KindName, kind_named
from tests.support.kube_api.selectors import everything, label_selector
from tests.support.kube_api.store import Obj, ObjectStore

PatchName = Literal["merge", "strategic", "apply", "json"]
_PATCH_TYPES = {"merge": MERGE, "strategic": STRATEGIC, "apply": APPLY, "json": JSON_PATCH}


class KubeApiStandIn:
    """A kube-apiserver for lightkube's clients over real HTTP, and "the cluster" for the test.

    ``dual_stack`` makes the cluster allocate IPv6 cluster IPs too; ``ip_mode_supported=False`` plays an
    API server older than 1.30, which drops ``status.loadBalancer.ingress[].ipMode``; ``node_ports`` is
    ``--service-node-port-range``. Every method is thread-safe and returns copies.
    """

    def __init__(
        self,
        *,
        dual_stack: bool = False,
        ip_mode_supported: bool = True,
        node_ports: range = range(30000, 32768),
    ) -> None:
        self.store = ObjectStore(node_ports, dual_stack, ip_mode_supported)
        self._api = ApiServer(self.store)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        config = uvicorn.Config(
            self._api.app,
            loop="asyncio",
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="kube-api-standin", daemon=True
        )
        self._thread.start()
        if not self._api.ready.wait(10):
            raise TimeoutError("the Kubernetes API stand-in did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._api.close()  # open watches would hold the graceful shutdown
        self._server.should_exit = True
        self._thread.join(10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the stand-in is not started")
        host, port = self._socket.getsockname()
        return f"http://{host}:{port}"

    def kubeconfig(self, path: Path, namespace: str = "default", token: str | None = "stand-in") -> Path:  # noqa: S107
        """Write a kubeconfig for the stand-in (``KUBECONFIG=path`` or ``KubeConfig.from_file``); the token,
        when given, is sent and ignored. Without one the user entry is a bare username: lightkube insists on
        a user entry being present."""
        user: dict[str, Any] = {"token": token} if token else {"username": "stand-in"}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "stand-in", "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}
            ],
            "users": [{"name": "stand-in", "user": user}],
            "contexts": [
                {
                    "name": "stand-in",
                    "context": {"cluster": "stand-in", "user": "stand-in", "namespace": namespace},
                }
            ],
            "current-context": "stand-in",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # ---- the cluster's side: the same rules as over HTTP ------------------------------------------

    def create(self, obj: Obj) -> Obj:
        """Create ``obj`` (its ``kind`` says which); defaults and allocations as the API server sets them."""
        kind = kind_named(obj.get("kind", ""))
        return copy.deepcopy(self.store.create(kind, (obj.get("metadata") or {}).get("namespace"), obj))

    def get(self, kind: KindName, namespace: str | None, name: str) -> Obj:
        """The object; :class:`ApiStatusError` (404) when there is none."""
        return copy.deepcopy(self.store.get(kind_named(kind), namespace or "", name))

    def find(self, kind: KindName, namespace: str | None, name: str) -> Obj | None:
        return copy.deepcopy(self.store.find(kind_named(kind), namespace or "", name))

    def list(self, kind: KindName, namespace: str | None = None, labels: str | None = None) -> list[Obj]:
        """Objects of ``kind`` (in ``namespace``, or all) matching a label selector in the API's syntax."""
        selector = label_selector(labels) if labels else everything
        return copy.deepcopy(self.store.select(kind_named(kind), namespace, selector)[1])

    def replace(self, obj: Obj, *, subresource: Literal["status"] | None = None) -> Obj:
        kind, meta = kind_named(obj.get("kind", "")), obj.get("metadata") or {}
        return copy.deepcopy(
            self.store.replace(kind, meta.get("namespace", ""), meta["name"], obj, subresource)
        )

    def patch(
        self,
        kind: KindName,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: Literal["status"] | None = None,
        patch_type: PatchName = "merge",
    ) -> Obj:
        found = self.store.patch(
            kind_named(kind), namespace or "", name, _PATCH_TYPES[patch_type], patch, subresource
        )
        return copy.deepcopy(found[0])

    def delete(self, kind: KindName, namespace: str | None, name: str) -> Obj | None:
        """Delete as ``kubectl delete`` does: with finalizers pending the object stays (returned) with a
        deletionTimestamp; None once it is gone."""
        return copy.deepcopy(self.store.delete(kind_named(kind), namespace or "", name))

    def events_for(self, namespace: str, name: str) -> builtins.list[Obj]:
        """Core Events about the object ``namespace/name``, oldest write first."""
        events = [
            event
            for event in self.store.select(EVENT, namespace, everything)[1]
            if (event.get("involvedObject") or {}).get("name") == name
        ]
        return copy.deepcopy(sorted(events, key=lambda event: int(event["metadata"]["resourceVersion"])))

    @property
    def resource_version(self) -> str:
        return str(self.store.version)

    def wait_for(
        self,
        kind: KindName,
        namespace: str | None,
        name: str,
        predicate: Callable[[Obj | None], bool],
        timeout: float = 10.0,
    ) -> Obj | None:
        """Block until ``predicate`` holds for the object (None while it does not exist); a readiness
        wait woken by every write, not a poll."""
        deadline = time.monotonic() + timeout
        with self.store.changed:
            while True:
                found = self.store.find(kind_named(kind), namespace or "", name)
                if predicate(found):
                    return copy.deepcopy(found)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{kind} {namespace}/{name} not as expected within {timeout} s; now: {found}"
                    )
                self.store.changed.wait(left)

    # ---- faults -----------------------------------------------------------------------------------

    def compact(self) -> None:
        """Compact the history: a watch resuming from any version seen so far gets a 410 ERROR event
        (e.g. after :meth:`restart_watches`); open watches go on."""
        self.store.compact()

    def restart_watches(self) -> None:
        """End every open watch stream cleanly, as an API server restart does; clients resume from their
        last resourceVersion."""
        self._api.restart_watches()

    def wait_for_watches(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least ``count`` watch streams are open (e.g. the controller's, after a restart)."""
        with self._api.watches:
            if not self._api.watches.wait_for(lambda: self._api.open_watches >= count, timeout):
                raise TimeoutError(f"{self._api.open_watches} watches open after {timeout} s, wanted {count}")

    def fail_next(
        self, count: int, status: int = 500, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer the next ``count`` requests (only those with ``method``, and ``path`` in the URL path,
        when given) with a ``Status`` of that code: 500 InternalError, 503, 429 (with Retry-After), 409…"""
        self._api.fail_next(count, status, method, path)

    @property
    def requests(self) -> builtins.list[RecordedRequest]:
        """Every request served so far (method, path, query, content type), oldest first."""
        with self._api.watches:
            return list(self._api.requests)
