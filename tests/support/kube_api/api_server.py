"""The HTTP face of the stand-in: kube-apiserver's REST paths and verbs over an :class:`ObjectStore`.

Paths: ``/api/v1[/namespaces/{ns}]/{plural}[/{name}[/status]]`` and the same under
``/apis/{group}/{version}``. GET on a collection lists (``labelSelector``, ``fieldSelector``, ``limit`` and
``continue``) or, with ``watch=true``, streams newline-delimited JSON events; POST creates (201), PUT
replaces, PATCH takes the four patch types (201 when server-side apply creates), DELETE deletes.
``dryRun=All`` answers without storing. Errors are ``Status`` bodies with ``Content-Type:
application/json`` exactly: lightkube turns a response into its ``ApiError`` only on that header.

A watch answers 200 at once and then, like the real one: the initial ADDED events when no
resourceVersion (or "0") was given, the changes after the given version, one ERROR event with a 410
Status when that version was compacted (then the stream ends; lightkube raises it as ``ApiError``), a
BOOKMARK before ending at ``timeoutSeconds`` when ``allowWatchBookmarks=true``. Streams stay open
otherwise, until :meth:`ApiServer.restart_watches` ends them cleanly (a finished chunked body) or the
client leaves.
"""

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.kube_api.patches import APPLY
from tests.support.kube_api.resources import ResourceKind, kind_at
from tests.support.kube_api.selectors import Selector, both, everything, field_selector, label_selector
from tests.support.kube_api.status import ApiStatusError, bad_request, injected
from tests.support.kube_api.store import Obj, ObjectStore

_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-standin", "platform": "linux/amd64"}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    content_type: str


class Target(NamedTuple):
    kind: ResourceKind
    namespace: str | None  # None: cluster-scoped kind, or all namespaces
    name: str | None
    subresource: str | None


@dataclass
class _Fault:
    remaining: int
    code: int
    method: str | None
    path: str | None


def parse_path(path: str) -> Target | None:
    """The kind, namespace, name and subresource a URL path addresses; None when nothing is served there."""
    parts = [part for part in path.split("/") if part]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and (inner := kind_at(group, version, rest[2]))
        and inner.namespaced
    ):
        namespace, rest = rest[1], rest[2:]
    kind = kind_at(group, version, rest[0]) if 1 <= len(rest) <= 3 else None
    if kind is None or (namespace is not None and not kind.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if (subresource is not None and (subresource != "status" or not kind.status_subresource)) or (
        name is not None and kind.namespaced and namespace is None
    ):
        return None
    return Target(kind, namespace, name, subresource)


def _json(body: Any, code: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, separators=(",", ":")).encode()
    return Response(content, status_code=code, media_type="application/json", headers=headers)


def _error(error: ApiStatusError) -> Response:
    return _json(error.status(), error.code, {"Retry-After": "1"} if error.code == 429 else None)


def _line(event_type: str, obj: Obj) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _list_key(obj: Obj) -> list[str]:
    return [obj["metadata"].get("namespace", ""), obj["metadata"]["name"]]


class ApiServer:
    """The Starlette app (``.app``); fault injection and a log of the requests it saw, both thread-safe."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.ready = threading.Event()
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        self.app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=methods)], lifespan=self._lifespan
        )
        self.watches = threading.Condition()  # guards the fields below; notified when watches open or end
        self.open_watches = 0
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._generation = 0  # restart_watches ends every stream opened under an older generation
        self._closing = False  # set by close(): every stream ends, new ones end at once
        self._wakers: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        self.store.subscribe(self._wake_soon)
        self.ready.set()
        yield

    # ---- from any thread --------------------------------------------------------------------------

    def fail_next(self, count: int, code: int, method: str | None, path: str | None) -> None:
        with self.watches:
            self._faults.append(_Fault(count, code, method, path))

    def restart_watches(self) -> None:
        with self.watches:
            self._generation += 1
        self._wake_soon()

    def close(self) -> None:
        self._closing = True
        self.restart_watches()

    def _wake_soon(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed: nobody is left to wake
                self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for wake in self._wakers:
            wake.set()

    # ---- requests ---------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        with self.watches:
            self.requests.append(
                RecordedRequest(method, path, request.url.query, request.headers.get("content-type", ""))
            )
            fault = next(
                (
                    f
                    for f in self._faults
                    if f.remaining and f.method in (None, method) and (f.path or "") in path
                ),
                None,
            )
            if fault is not None:
                fault.remaining -= 1
        if fault is not None:
            return _error(injected(fault.code))
        if path == "/version":
            return _json(_VERSION)
        if path in ("/healthz", "/readyz", "/livez"):
            return Response(b"ok", media_type="text/plain")
        try:
            return await self._serve(request)
        except ApiStatusError as error:
            return _error(error)

    async def _serve(self, request: Request) -> Response:
        target = parse_path(request.url.path)
        if target is None:
            raise ApiStatusError(404, "the server could not find the requested resource")
        if target.name is not None:
            return await self._serve_object(request, target)
        kind, namespace = target.kind, target.namespace
        query = request.query_params
        if request.method == "GET":
            selector = self._selector(kind, query)
            if query.get("watch") in ("true", "1"):
                return self._watch(kind, namespace, selector, query)
            return self._list(kind, namespace, selector, query)
        if request.method == "POST" and (namespace is not None or not kind.namespaced):
            created = self.store.create(kind, namespace, await _body(request), query.get("dryRun") == "All")
            return _json(created, 201)
        raise ApiStatusError(405, f"the server does not allow {request.method} on {request.url.path}")

    async def _serve_object(self, request: Request, target: Target) -> Response:
        kind, namespace, name, subresource = (
            target.kind,
            target.namespace or "",
            target.name or "",
            target.subresource,
        )
        query, method = request.query_params, request.method
        dry_run = query.get("dryRun") == "All"
        if method == "GET":
            return _json(self.store.get(kind, namespace, name))
        if method == "PUT":
            return _json(
                self.store.replace(kind, namespace, name, await _body(request), subresource, dry_run)
            )
        if method == "PATCH":
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type == APPLY and not query.get("fieldManager"):
                raise bad_request("PATCH, application/apply-patch+yaml, requires fieldManager")
            body = await _body(request, as_yaml=content_type == APPLY)
            obj, created = self.store.patch(kind, namespace, name, content_type, body, subresource, dry_run)
            return _json(obj, 201 if created else 200)
        if method == "DELETE" and subresource is None:
            left = self.store.delete(kind, namespace, name, dry_run)
            if left is not None:
                return _json(left)
            details = {"name": name, "group": kind.group, "kind": kind.plural}
            return _json(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        raise ApiStatusError(405, f"the server does not allow {method} on {request.url.path}")

    @staticmethod
    def _selector(kind: ResourceKind, query: QueryParams) -> Selector:
        selector: Selector = everything
        if query.get("labelSelector"):
            selector = label_selector(query["labelSelector"])
        if query.get("fieldSelector"):
            selector = both(selector, field_selector(kind, query["fieldSelector"]))
        return selector

    def _list(
        self, kind: ResourceKind, namespace: str | None, selector: Selector, query: QueryParams
    ) -> Response:
        version, items = self.store.select(kind, namespace, selector)
        if query.get("continue"):
            try:
                after = json.loads(base64.urlsafe_b64decode(query["continue"]))
            except ValueError:
                raise ApiStatusError(410, "the provided continue parameter is too old or malformed") from None
            items = [item for item in items if _list_key(item) > after]
        metadata: dict[str, Any] = {"resourceVersion": str(version)}
        limit = int(query.get("limit") or 0)
        if 0 < limit < len(items):
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
            metadata["continue"] = base64.urlsafe_b64encode(
                json.dumps(_list_key(items[-1])).encode()
            ).decode()
        # As the real server does, list items carry no kind and apiVersion (watch events and GETs do).
        stripped = [
            {key: value for key, value in item.items() if key not in ("kind", "apiVersion")} for item in items
        ]
        return _json(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": metadata,
                "items": stripped,
            }
        )

    # ---- watches ----------------------------------------------------------------------------------

    def _watch(
        self, kind: ResourceKind, namespace: str | None, selector: Selector, query: QueryParams
    ) -> Response:
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        try:
            cursor, initial = self.store.watch_start(kind, namespace, selector, query.get("resourceVersion"))
        except ApiStatusError as error:
            if error.code != 410:
                raise
            return StreamingResponse(iter([_line("ERROR", error.status())]), media_type="application/json")
        events = self._stream(kind, namespace, selector, cursor, initial, timeout, bookmarks)
        return StreamingResponse(events, media_type="application/json")

    async def _stream(
        self,
        kind: ResourceKind,
        namespace: str | None,
        selector: Selector,
        cursor: int,
        initial: list[Obj],
        timeout: float | None,
        bookmarks: bool,
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        wake = asyncio.Event()
        with self.watches:
            generation = self._generation
            self.open_watches += 1
            self.watches.notify_all()
        self._wakers.add(wake)
        try:
            if initial:
                yield b"".join(_line("ADDED", obj) for obj in initial)
            while self._generation == generation and not self._closing:
                wake.clear()
                cursor, events = self.store.changes_after(cursor, kind, namespace, selector)
                if events:
                    yield b"".join(_line(event_type, obj) for event_type, obj in events)
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    if bookmarks:
                        mark = {
                            "kind": kind.kind,
                            "apiVersion": kind.api_version,
                            "metadata": {"resourceVersion": str(cursor)},
                        }
                        yield _line("BOOKMARK", mark)
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), left)
        finally:
            self._wakers.discard(wake)
            with self.watches:
                self.open_watches -= 1
                self.watches.notify_all()


async def _body(request: Request, as_yaml: bool = False) -> Any:
    raw = await request.body()
    try:
        return yaml.safe_load(raw) if as_yaml else json.loads(raw)
    except (ValueError, yaml.YAMLError) as error:
        raise bad_request(f"the request body is not valid {'YAML' if as_yaml else 'JSON'}: {error}") from None
