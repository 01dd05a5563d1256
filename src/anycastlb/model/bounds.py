"""How large one load balancer spec may be, checked on the raw JSON before pydantic builds it.

Why before: validating a backend costs ~4 us and pydantic holds the GIL for the whole spec, so a
spec of 200,000 backends stalled every thread of the control plane for most of a second before any
length check ran. Counting list lengths of the decoded JSON costs microseconds. The bounds are the
control plane's process-level setting; it sets :data:`spec_bounds` for the request being parsed,
and :class:`~anycastlb.model.desired.LoadBalancerSpec` checks them first. Unset (the edge, the CLI,
the Kubernetes controller): no bound beyond the schema's own.
"""

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["SpecBounds", "SpecTooLargeError", "check_spec_size", "spec_bounds"]


@dataclass(frozen=True, slots=True)
class SpecBounds:
    """The largest spec accepted; each field's ``hint`` names the setting that raises it."""

    listeners: int
    backends_per_listener: int
    backends_per_load_balancer: int
    hint: Mapping[str, str]  # field name -> the option that raises it, for the error message


class SpecTooLargeError(ValueError):
    """A spec exceeds one of its bounds; the message names the limit, its value and its option."""


spec_bounds: ContextVar[SpecBounds | None] = ContextVar("spec_bounds", default=None)


_LABELS = {
    "listeners": "listeners per load balancer",
    "backends_per_listener": "backends per listener",
    "backends_per_load_balancer": "backends per load balancer",
}


def _refuse(bounds: SpecBounds, field: str, what: str) -> SpecTooLargeError:
    value = getattr(bounds, field)
    return SpecTooLargeError(f"{what}; the limit is {value:,} {_LABELS[field]} ({bounds.hint[field]})")


def check_spec_size(data: Any, bounds: SpecBounds) -> None:  # noqa: ANN401 - raw, unvalidated input
    """Raise :class:`SpecTooLargeError` if ``data`` (a decoded spec) has more listeners or backends than
    ``bounds`` allow. Anything malformed is left to the schema's own validation."""
    if not isinstance(data, Mapping):
        return
    listeners = data.get("listeners")
    if not isinstance(listeners, list | tuple):
        return
    if len(listeners) > bounds.listeners:
        raise _refuse(bounds, "listeners", f"the spec has {len(listeners):,} listeners")
    total = 0
    for index, listener in enumerate(listeners):
        backends = listener.get("backends") if isinstance(listener, Mapping) else None
        if not isinstance(backends, list | tuple):
            continue
        if len(backends) > bounds.backends_per_listener:
            port = listener.get("port", f"#{index}")
            raise _refuse(bounds, "backends_per_listener", f"listener {port} has {len(backends):,} backends")
        total += len(backends)
    if total > bounds.backends_per_load_balancer:
        raise _refuse(bounds, "backends_per_load_balancer", f"the spec has {total:,} backends in all")
