"""The four patch bodies kube-apiserver accepts, applied to a JSON object (pure functions).

- ``application/merge-patch+json``: RFC 7386; a list in the patch replaces the list.
- ``application/strategic-merge-patch+json``: like a merge patch, except the lists Kubernetes declares
  with a merge strategy are merged: ``metadata.finalizers`` as a set (with
  ``$deleteFromPrimitiveList/finalizers``), ``metadata.ownerReferences`` by ``uid``, ``spec.ports`` by
  ``port``, ``status.conditions`` by ``type``; ``$patch: delete|replace`` is understood. Every other list
  (``status.loadBalancer.ingress`` among them) is replaced, as the real one does.
- ``application/apply-patch+yaml`` (server-side apply): the same keyed merge. Not modelled: field
  ownership, so a field a manager stops applying is NOT removed (the real server removes it); remove
  finalizers with a merge or JSON patch.
- ``application/json-patch+json``: RFC 6902 ``add``, ``remove``, ``replace`` and ``test``.
"""

import copy
from typing import Any

from tests.support.kube_api.status import ApiStatusError, bad_request

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (MERGE, STRATEGIC, APPLY, JSON_PATCH)

# The lists merged by key rather than replaced; None: a list of strings merged as a set.
_KEYED_LISTS: dict[tuple[str, ...], str | None] = {
    ("metadata", "finalizers"): None,
    ("metadata", "ownerReferences"): "uid",
    ("spec", "ports"): "port",
    ("status", "conditions"): "type",
}
_DELETE_FROM = "$deleteFromPrimitiveList/"
_IGNORED_DIRECTIVES = ("$setElementOrder/", "$retainKeys")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def keyed_merge(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """A strategic merge patch (and our model of server-side apply): see the module docstring."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith(_IGNORED_DIRECTIVES):
            continue
        if key.startswith(_DELETE_FROM):
            field = key.removeprefix(_DELETE_FROM)
            result[field] = [item for item in result.get(field) or [] if item not in value]
        elif value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif (*path, key) in _KEYED_LISTS and isinstance(value, list):
            result[key] = _merge_list(result.get(key) or [], value, _KEYED_LISTS[(*path, key)], (*path, key))
        else:
            result[key] = keyed_merge(result.get(key), value, (*path, key))
    return result


def _merge_list(old: list[Any], patch: list[Any], key: str | None, path: tuple[str, ...]) -> list[Any]:
    if key is None:
        return [*old, *(item for item in patch if item not in old)]
    merged = {item.get(key): item for item in old if isinstance(item, dict)}
    order = list(merged)
    for item in patch:
        name = item.get(key)
        if item.get("$patch") == "delete":
            merged.pop(name, None)
        else:
            merged[name] = keyed_merge(merged.get(name), item, path)
            order += [] if name in order else [name]
    return [merged[name] for name in order if name in merged]


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise bad_request(f"json patch path {path!r} must start with /")
    return [step.replace("~1", "/").replace("~0", "~") for step in path[1:].split("/")]


def _parent(document: Any, steps: list[str], path: str) -> Any:
    node = document
    for step in steps[:-1]:
        try:
            node = node[int(step)] if isinstance(node, list) else node[step]
        except (KeyError, IndexError, ValueError):
            raise ApiStatusError(422, f"json patch: {path} does not exist") from None
    return node


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 ``add``, ``remove``, ``replace``, ``test`` (a failed ``test`` is a 422, as on the server)."""
    if not isinstance(operations, list):
        raise bad_request("a json patch is a list of operations")
    document = copy.deepcopy(target)
    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        steps = _pointer(path)
        parent, last = _parent(document, steps, path), steps[-1]
        if op == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != operation.get("value"):
                raise ApiStatusError(422, f"json patch test failed at {path}: {current!r}")
        elif op == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            elif parent.pop(last, _MISSING) is _MISSING:
                raise ApiStatusError(422, f"json patch: cannot remove {path}, it does not exist")
        elif op in ("add", "replace"):
            value = copy.deepcopy(operation.get("value"))
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                parent[index : index + (op == "replace")] = [value]
            else:
                parent[last] = value
        else:
            raise bad_request(
                f"json patch op {op!r} is not served by the stand-in (add, remove, replace, test)"
            )
    return document


_MISSING = object()
