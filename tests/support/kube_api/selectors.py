"""Label and field selectors in the API server's query syntax (``labelSelector``, ``fieldSelector``).

Labels: ``key``, ``!key``, ``key=v``, ``key==v``, ``key!=v``, ``key in (a,b)``, ``key notin (a,b)``, joined by
commas (the set-based ``>``/``<`` forms are not served). Fields: ``path=v``, ``path==v``, ``path!=v`` on
``metadata.name``, ``metadata.namespace`` and the few paths each kind allows; any other path is a 400, as
kube-apiserver answers ``field label not supported``.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.support.kube_api.resources import ResourceKind
from tests.support.kube_api.status import bad_request

Selector = Callable[[Mapping[str, Any]], bool]

_SET = re.compile(r"^(?P<key>[^\s=!(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQUALITY = re.compile(r"^(?P<key>[^\s=!(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s=!(),]*)$")
_EXISTS = re.compile(r"^(?P<not>!?)\s*(?P<key>[^\s=!(),]+)$")
_ALWAYS_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def _requirements(text: str) -> list[str]:
    """Split on the commas that are not inside ``( … )``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    if found := _SET.match(text):
        key, values = found["key"], {value.strip() for value in found["values"].split(",") if value.strip()}
        if found["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if found := _EQUALITY.match(text):
        key, value = found["key"], found["value"]
        if found["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if found := _EXISTS.match(text):
        key, negated = found["key"], bool(found["not"])
        return lambda labels: (key in labels) != negated
    raise bad_request(
        f"unable to parse requirement: {text!r} (the stand-in serves =, ==, !=, in, notin, key and !key)"
    )


def label_selector(text: str) -> Selector:
    """A predicate on an object's ``metadata.labels``; 400 for a requirement that does not parse."""
    checks = [_label_requirement(part) for part in _requirements(text)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return matches


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for step in path.split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_selector(kind: ResourceKind, text: str) -> Selector:
    """A predicate on the fields ``kind`` may be selected by; 400 for any other field."""
    checks: list[tuple[str, bool, str]] = []
    for part in _requirements(text):
        found = _EQUALITY.match(part)
        if found is None:
            raise bad_request(f"invalid selector: {text!r}; can't understand {part!r}")
        if found["key"] not in _ALWAYS_FIELDS | kind.fields:
            raise bad_request(f"field label not supported: {found['key']}")
        checks.append((found["key"], found["op"] == "!=", found["value"]))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) != negated for path, negated, value in checks)

    return matches


def everything(obj: Mapping[str, Any]) -> bool:
    return True


def both(first: Selector, second: Selector) -> Selector:
    return lambda obj: first(obj) and second(obj)
