"""A load balancer spec from a file (``lb apply -f``) or from options (``lb create``), validated here
with the tier contract, so a typo is reported with its field path before any request is made."""

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from anycastlb.control.cli.errors import InputError
from anycastlb.model.addresses import parse_address
from anycastlb.model.desired import LoadBalancerSpec
from anycastlb.model.validation_errors import without_echoes

__all__ = ["load_spec_file", "request_body", "spec_from_options", "validate_spec"]

_FAMILIES = ("ipv4", "ipv6")


def _field_path(location: tuple[int | str, ...], raw: Any) -> str:  # noqa: ANN401 - decoded YAML
    """``('listeners', 0, 'backends', 1, 'port')`` → ``listeners[0] (port 443).backends[1].port``."""
    parts: list[str] = []
    node: Any = raw
    for item in location:
        if isinstance(item, int):
            label = f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if parts == ["listeners"] and isinstance(node, dict) and "port" in node:
                label += f" (port {node['port']})"
            parts.append(label)
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def validate_spec(raw: object, source: str) -> LoadBalancerSpec:
    """Raise :class:`InputError` listing every problem of the document, each with its field path."""
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a mapping at the top level (name:, listeners:, ...)")
    try:
        return LoadBalancerSpec.model_validate(raw)
    except ValidationError as error:
        lines = []
        for problem in without_echoes(error.errors(include_url=False)):
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden":
                message = "unknown field (check the spelling)"
            lines.append(f"  {_field_path(tuple(problem['loc']), raw)}: {message}")
        raise InputError(f"{source} is not a valid load balancer spec:\n" + "\n".join(lines)) from None


def load_spec_file(path: Path) -> LoadBalancerSpec:
    """A YAML or JSON file (``-``: standard input) holding one load balancer spec."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise InputError(f"{path} is not valid {kind}: {error}") from None
    return validate_spec(raw, str(path))


def _backend(text: str) -> dict[str, object]:
    """``10.0.0.11:30443`` or ``[2001:db8::11]:30443``."""
    host, _, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        parse_address(host)
        number = int(port)
    except ValueError:
        raise InputError(
            f"--backend {text!r}: write ADDRESS:PORT, e.g. 10.0.0.11:30443 or [2001:db8::11]:30443"
        ) from None
    return {"address": host, "port": number}


def spec_from_options(
    name: str,
    *,
    ports: list[int],
    backends: list[str],
    proxy_protocol: str | None = None,
    ip_count: int | None = None,
    families: list[str] | None = None,
    addresses: list[str] | None = None,
    pool: str | None = None,
    sharing_key: str | None = None,
    pops: list[str] | None = None,
) -> LoadBalancerSpec:
    """One listener per port, each forwarding to every backend."""
    for family in families or ():
        if family not in _FAMILIES:
            raise InputError(f"--family {family!r}: use ipv4 or ipv6")
    servers = [_backend(text) for text in backends]
    listener_extra = {} if proxy_protocol is None else {"proxy_protocol": proxy_protocol}
    ips: dict[str, object] = {
        key: value
        for key, value in (
            ("count", ip_count),
            ("families", families or None),
            ("addresses", addresses or None),
            ("pool", pool),
            ("sharing_key", sharing_key),
        )
        if value is not None
    }
    raw: dict[str, object] = {
        "name": name,
        "listeners": [{"port": port, "backends": servers, **listener_extra} for port in ports],
        **({"ips": ips} if ips else {}),
        **({"pops": pops} if pops else {}),
    }
    return validate_spec(raw, "the options")


def request_body(spec: LoadBalancerSpec) -> dict[str, Any]:
    """The spec as the API takes it: only the fields that were written, durations with their unit."""
    return spec.model_dump(mode="json", exclude_unset=True)
