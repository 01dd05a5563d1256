"""List-then-watch caches, one per kind (Services, Nodes, EndpointSlices).

Every object is converted to a small frozen view on arrival, so reconciling reads plain data.
After any watch failure (a dropped stream, 410 Gone when our resourceVersion is too old, an API
server restart) the informer lists again and *replaces* its cache, which is the only way to learn
about deletions it missed; then it watches from the list's resourceVersion. Errors back off
0.5 s doubling to 30 s and are logged once per cause.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.core.resource import NamespacedResource

__all__ = ["Informer"]

log = logging.getLogger("anycastlb.k8s")
V = TypeVar("V")
Key = tuple[str, str]  # (namespace or "", name)


class Informer(Generic[V]):
    def __init__(
        self,
        client: AsyncClient,
        resource: Any,  # noqa: ANN401 - a lightkube resource class
        convert: Callable[[Any], V],
        on_change: Callable[[Key, V | None, V | None], None],
        *,
        kind: str,
    ) -> None:
        self.client = client
        self.resource = resource
        self.convert = convert
        self.on_change = on_change  # (key, old, new); new None = deleted
        self.kind = kind
        self.items: dict[Key, V] = {}
        self.synced = asyncio.Event()
        self.relists = 0

    @staticmethod
    def key_of(obj: Any) -> Key:  # noqa: ANN401
        return (obj.metadata.namespace or "", obj.metadata.name)

    async def _relist(self) -> str:
        fresh: dict[Key, V] = {}
        listing = (
            self.client.list(self.resource, namespace="*")
            if self._namespaced()
            else self.client.list(self.resource)
        )
        async for obj in listing:
            fresh[self.key_of(obj)] = self.convert(obj)
        old, self.items = self.items, fresh
        for key, view in fresh.items():
            if old.get(key) != view:
                self.on_change(key, old.get(key), view)
        for key, view in old.items():
            if key not in fresh:
                self.on_change(key, view, None)
        self.relists += 1
        self.synced.set()
        return str(listing.resourceVersion)

    def _namespaced(self) -> bool:
        return issubclass(self.resource, NamespacedResource)

    async def run(self) -> None:
        delay = 0.5
        last_error = ""
        while True:
            try:
                version = await self._relist()
                delay = 0.5
                watch = (
                    self.client.watch(self.resource, namespace="*", resource_version=version)
                    if self._namespaced()
                    else self.client.watch(self.resource, resource_version=version)
                )
                async for event, obj in watch:
                    self._apply(event, obj)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                cause = f"{type(error).__name__}: {_describe(error)}"
                if cause != last_error:
                    log.warning(
                        "watch_failed kind=%s error=%r action=relist in=%.1fs", self.kind, cause, delay
                    )
                    last_error = cause
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    def _apply(self, event: str, obj: Any) -> None:  # noqa: ANN401
        key = self.key_of(obj)
        old = self.items.get(key)
        if event == "DELETED":
            if old is not None:
                del self.items[key]
                self.on_change(key, old, None)
            return
        if event not in ("ADDED", "MODIFIED"):
            return
        view = self.convert(obj)
        if view != old:
            self.items[key] = view
            self.on_change(key, old, view)


def _describe(error: Exception) -> str:
    if isinstance(error, ApiError):
        return f"{error.status.code} {error.status.reason}: {error.status.message}"
    return str(error) or repr(error)
