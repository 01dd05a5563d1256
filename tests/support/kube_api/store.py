"""The cluster's state: objects, one resourceVersion counter, the history watches resume from.

Every write takes the next global resourceVersion, stores a new dict (stored dicts are never changed in
place, so readers may hold them without a lock) and appends a :class:`Change` to the history. A watch
(re)started from a version older than the last :meth:`ObjectStore.compact` gets a 410; open watches go
on, as they do over a real API server's watch cache when etcd compacts.

The rules of a write live in :meth:`ObjectStore._write`, as the API server applies them: the body's
resourceVersion, when given, must be the stored one (409 Conflict), else the write is unconditional;
identity fields (uid, creationTimestamp, deletionTimestamp, generation) come from the stored object;
for kinds with a status subresource a write to the object keeps the stored status and a write to
``/status`` changes only the status; ``generation`` counts changes outside metadata and status; a
write that changes nothing takes no version and makes no event; a deleting object (deletionTimestamp
set, finalizers pending) may lose finalizers but not gain them, and goes (DELETED) when the last goes.
"""

import bisect
import copy
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support.kube_api.patches import (
    APPLY,
    JSON_PATCH,
    MERGE,
    PATCH_TYPES,
    STRATEGIC,
    json_patch,
    keyed_merge,
    merge_patch,
)
from tests.support.kube_api.resources import NAMESPACE, SERVICE, ResourceKind
from tests.support.kube_api.selectors import Selector
from tests.support.kube_api.services import ServiceAllocations
from tests.support.kube_api.status import (
    ApiStatusError,
    already_exists,
    bad_request,
    conflict,
    expired,
    invalid,
    not_found,
)

Obj = dict[str, Any]
Key = tuple[ResourceKind, str, str]  # kind, namespace ("" when cluster-scoped), name

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # Service names
_LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # Namespace names
_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_PATCHERS: dict[str, Callable[[Any, Any], Any]] = {
    MERGE: merge_patch,
    STRATEGIC: keyed_merge,
    APPLY: keyed_merge,
    JSON_PATCH: json_patch,
}


@dataclass(frozen=True)
class Change:
    version: int
    type: str  # ADDED, MODIFIED, DELETED
    kind: ResourceKind
    namespace: str
    obj: Obj
    previous: Obj | None

    def seen_by(
        self, kind: ResourceKind, namespace: str | None, selector: Selector
    ) -> tuple[str, Obj] | None:
        """How a watch with this filter sees the change: an object moving out of a selector is
        DELETED for it, one moving in is ADDED (as the API server's watch cache reports them)."""
        if self.kind is not kind or (namespace is not None and self.namespace != namespace):
            return None
        if self.type != "MODIFIED" or self.previous is None:
            return (self.type, self.obj) if selector(self.obj) else None
        was, now = selector(self.previous), selector(self.obj)
        if was or now:
            return ("MODIFIED" if was and now else "ADDED" if now else "DELETED"), self.obj
        return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectStore:
    """Thread-safe: the API server's handlers and the test's own calls share it."""

    def __init__(self, node_ports: range, dual_stack: bool, ip_mode_supported: bool) -> None:
        self.changed = threading.Condition(threading.RLock())  # notified after every write
        self.ip_mode_supported = ip_mode_supported
        self._objects: dict[Key, Obj] = {}
        self._version = 100
        self._oldest = self._version  # the oldest version a watch may resume from
        self._history: list[Change] = []
        self._allocations = ServiceAllocations(node_ports, dual_stack)
        self._listeners: list[Callable[[], None]] = []

    @property
    def version(self) -> int:
        return self._version

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (under the store's lock; it must not block) after every write."""
        self._listeners.append(listener)

    # ---- reads ------------------------------------------------------------------------------------

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj:
        with self.changed:
            found = self._objects.get(self._key(kind, namespace, name))
        if found is None:
            raise not_found(kind, name)
        return found

    def find(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None:
        return self._objects.get(self._key(kind, namespace, name))

    def select(self, kind: ResourceKind, namespace: str | None, selector: Selector) -> tuple[int, list[Obj]]:
        """The version the list was taken at and the matching objects, by namespace and name."""
        with self.changed:
            found = [
                obj
                for (k, ns, _), obj in sorted(self._objects.items(), key=lambda item: item[0][1:])
                if k is kind and (namespace is None or ns == namespace) and selector(obj)
            ]
            return self._version, found

    def watch_start(
        self, kind: ResourceKind, namespace: str | None, selector: Selector, since: str | None
    ) -> tuple[int, list[Obj]]:
        """Where a watch starts and what it sends first: with no resourceVersion (or "0"), every
        matching object as ADDED, then changes; with N, the changes after N (410 when N is compacted)."""
        if since in (None, "", "0"):
            version, objects = self.select(kind, namespace, selector)
            return version, objects
        try:
            version = int(since)
        except ValueError:
            raise bad_request(f"invalid resource version {since!r}") from None
        with self.changed:
            if version < self._oldest:
                raise expired(version, self._oldest)
        return version, []

    def changes_after(
        self, cursor: int, kind: ResourceKind, namespace: str | None, selector: Selector
    ) -> tuple[int, list[tuple[str, Obj]]]:
        """The newest version and how a watch filtered so sees the changes after ``cursor``."""
        with self.changed:
            start = bisect.bisect_right(self._history, cursor, key=lambda change: change.version)
            seen = [change.seen_by(kind, namespace, selector) for change in self._history[start:]]
            return self._version, [event for event in seen if event is not None]

    def compact(self) -> None:
        """Compact as etcd does: a watch (re)started from any version seen so far gets 410; lists
        answer a version after the compaction, so a client that re-lists can watch again. (The
        history itself is kept for the watches already open.)"""
        with self.changed:
            self._version += 1
            self._oldest = self._version

    # ---- writes -----------------------------------------------------------------------------------

    def create(self, kind: ResourceKind, namespace: str | None, body: Any, dry_run: bool = False) -> Obj:
        with self.changed:
            obj = self._checked_body(kind, body)
            meta = obj["metadata"]
            namespace = self._namespace(kind, namespace, meta)
            if meta.get("resourceVersion"):
                raise bad_request("resourceVersion should not be set on objects to be created")
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(
                    random.choices("bcdfghjklmnpqrstvwxz2456789", k=5)
                )
            name = meta.get("name") or ""
            self._check_name(kind, name)
            key = self._key(kind, namespace, name)
            if key in self._objects:
                raise already_exists(kind, name)
            for field in _SERVER_OWNED:
                meta.pop(field, None)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
            _drop_empty(meta)
            if kind is SERVICE:
                obj["status"] = {"loadBalancer": {}}
                self._allocations.prepare(obj, None)
            elif kind is NAMESPACE:
                obj.setdefault("status", {"phase": "Active"})
            return self._commit(key, obj, None, dry_run)

    def replace(
        self,
        kind: ResourceKind,
        namespace: str,
        name: str,
        body: Any,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        return self._update(kind, namespace, name, lambda old: copy.deepcopy(body), subresource, dry_run)

    def patch(
        self,
        kind: ResourceKind,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """The patched object and whether it was created (server-side apply creates what is missing)."""
        if content_type not in PATCH_TYPES:
            accepted = ", ".join(PATCH_TYPES)
            raise ApiStatusError(
                415,
                f"the body of the request was in an unknown format - accepted media types: {accepted}",
            )
        with self.changed:
            if content_type == APPLY and subresource is None and self.find(kind, namespace, name) is None:
                obj = self._checked_body(kind, body)
                obj["metadata"].setdefault("name", name)
                return self.create(kind, namespace, obj, dry_run), True
            patcher = _PATCHERS[content_type]
            return self._update(
                kind, namespace, name, lambda old: patcher(old, body), subresource, dry_run
            ), False

    def delete(self, kind: ResourceKind, namespace: str, name: str, dry_run: bool = False) -> Obj | None:
        """The object still there, marked for deletion, while finalizers are pending; None once gone."""
        with self.changed:
            key = self._key(kind, namespace, name)
            old = self._objects.get(key)
            if old is None:
                raise not_found(kind, name)
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old
                new = copy.deepcopy(old)
                new["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
                return self._commit(key, new, old, dry_run)
            if not dry_run:
                self._remove(key, old)
            return None

    # ---- the rules of a write ---------------------------------------------------------------------

    def _update(
        self,
        kind: ResourceKind,
        namespace: str,
        name: str,
        change: Callable[[Obj], Any],
        subresource: str | None,
        dry_run: bool,
    ) -> Obj:
        with self.changed:
            key = self._key(kind, namespace, name)
            old = self._objects.get(key)
            if old is None:
                raise not_found(kind, name)
            return self._write(
                key, old, self._checked_body(kind, change(copy.deepcopy(old))), subresource, dry_run
            )

    def _write(self, key: Key, old: Obj, new: Obj, subresource: str | None, dry_run: bool) -> Obj:
        self._check_identity(key, old, new)
        new = self._admitted(key[0], old, new, subresource)
        meta = new["metadata"]
        if _spec_of(new) != _spec_of(old):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        if new == old:
            return old  # a no-op takes no version and makes no event
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if not dry_run:
                self._remove(key, old)
            return new
        return self._commit(key, new, old, dry_run)

    def _check_identity(self, key: Key, old: Obj, new: Obj) -> None:
        """The body names the stored object (and its version, when given); server-owned fields stay."""
        kind, namespace, name = key
        meta, old_meta = new["metadata"], old["metadata"]
        if meta.get("name", name) != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL")
        self._namespace(kind, namespace or None, meta)
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
            raise conflict(kind, name)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise ApiStatusError(
                409,
                f"Precondition failed: UID in precondition: {meta['uid']}, in the object: {old_meta['uid']}",
            )
        for field in (*_SERVER_OWNED, "resourceVersion", "name", "namespace"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)

    def _admitted(self, kind: ResourceKind, old: Obj, new: Obj, subresource: str | None) -> Obj:
        """What is stored of ``new``: only its status through /status, all but its status otherwise."""
        if subresource == "status":
            status, new = new.get("status"), copy.deepcopy(old)
            new["status"] = status
            if kind is SERVICE:
                self._service_status(new)
        else:
            if kind.status_subresource:
                new["status"] = copy.deepcopy(old.get("status"))
            self._check_finalizers(kind, old, new)
            if kind is SERVICE:
                self._allocations.prepare(new, old)
        if new.get("status") is None:
            new.pop("status", None)
        _drop_empty(new["metadata"])
        return new

    def _check_finalizers(self, kind: ResourceKind, old: Obj, new: Obj) -> None:
        if not old["metadata"].get("deletionTimestamp"):
            return
        added = set(new["metadata"].get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
        if added:
            problem = (
                "Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers {sorted(added)}"
            )
            raise invalid(kind, old["metadata"]["name"], "metadata.finalizers", problem)

    def _service_status(self, service: Obj) -> None:
        """1.30+ defaults ``ipMode`` to VIP for an ingress IP; older servers drop the field."""
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if not self.ip_mode_supported:
                ingress.pop("ipMode", None)
            elif ingress.get("ip"):
                ingress.setdefault("ipMode", "VIP")
                if ingress["ipMode"] not in ("VIP", "Proxy"):
                    problem = f'Unsupported value: "{ingress["ipMode"]}": supported values: "Proxy", "VIP"'
                    raise invalid(
                        SERVICE, service["metadata"]["name"], "status.loadBalancer.ingress[].ipMode", problem
                    )

    def _commit(self, key: Key, new: Obj, old: Obj | None, dry_run: bool) -> Obj:
        kind, namespace, _ = key
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        if dry_run:
            return new
        self._version += 1
        new["metadata"]["resourceVersion"] = str(self._version)
        if kind is SERVICE:
            self._allocations.hold(old, release=True)
            self._allocations.hold(new)
        self._objects[key] = new
        self._record(Change(self._version, "ADDED" if old is None else "MODIFIED", kind, namespace, new, old))
        return new

    def _remove(self, key: Key, old: Obj) -> None:
        kind, namespace, _ = key
        self._version += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self._version)
        if kind is SERVICE:
            self._allocations.hold(old, release=True)
        del self._objects[key]
        self._record(Change(self._version, "DELETED", kind, namespace, gone, None))

    def _record(self, change: Change) -> None:
        self._history.append(change)
        for listener in self._listeners:
            listener()
        self.changed.notify_all()

    # ---- identity ---------------------------------------------------------------------------------

    @staticmethod
    def _key(kind: ResourceKind, namespace: str | None, name: str) -> Key:
        return kind, (namespace or "") if kind.namespaced else "", name

    @staticmethod
    def _checked_body(kind: ResourceKind, body: Any) -> Obj:
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise bad_request(f"the body is not a {kind.kind} object")
        obj = copy.deepcopy(body)
        obj.setdefault("metadata", {})
        for field, expected in (("kind", kind.kind), ("apiVersion", kind.api_version)):
            if obj.get(field) not in (None, expected):
                raise bad_request(
                    f"{field} {obj[field]!r} in the body does not match {expected!r} of the URL"
                )
        return obj

    @staticmethod
    def _namespace(kind: ResourceKind, namespace: str | None, meta: Obj) -> str:
        if not kind.namespaced:
            meta.pop("namespace", None)
            return ""
        if namespace and meta.get("namespace", namespace) != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        namespace = namespace or meta.get("namespace")
        if not namespace:
            raise bad_request(f"a {kind.kind} needs a namespace")
        meta["namespace"] = namespace
        return namespace

    @staticmethod
    def _check_name(kind: ResourceKind, name: str) -> None:
        if not name:
            raise invalid(kind, name, "metadata.name", "Required value: name or generateName is required")
        rule, limit, what = (
            (_LABEL_1035, 63, "a DNS-1035 label")
            if kind is SERVICE
            else (_LABEL_1123, 63, "a DNS-1123 label")
            if kind is NAMESPACE
            else (_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain")
        )
        if len(name) > limit or not rule.match(name):
            raise invalid(kind, name, "metadata.name", f'Invalid value: "{name}": must be {what}')


def _drop_empty(meta: Obj) -> None:
    """Empty lists and maps are not stored (Go's ``omitempty``): ``finalizers: []`` reads back as absent."""
    for field in ("finalizers", "labels", "annotations", "ownerReferences"):
        if field in meta and not meta[field]:
            del meta[field]


def _spec_of(obj: Obj) -> Obj:
    return {
        key: value for key, value in obj.items() if key not in ("metadata", "status", "apiVersion", "kind")
    }
