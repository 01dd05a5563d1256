"""Token lifetimes and grace periods as people write them (``90d``, ``12h``, ``30m``, ``3600s``).

As in config files (model/duration.py), a number needs its unit; only ``0`` (``--grace 0``) may
stand alone, being zero in every unit."""

import re
from typing import Annotated

import typer

from anycastlb.control.cli.errors import InputError

__all__ = ["GraceOption", "TtlOption", "seconds"]

_LIFETIME = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}

TtlOption = Annotated[
    str | None,
    typer.Option(
        "--ttl",
        help="Lifetime, e.g. 90d, 12h, 30m or 3600s; after it the token is refused (401 'expired'). "
        "Default: never expires.",
        show_default=False,
    ),
]
GraceOption = Annotated[
    str,
    typer.Option(
        "--grace",
        help="How long the old secret keeps working after rotation (e.g. 1h, 10m; 0: stops now).",
    ),
]


def seconds(text: str | None, option: str) -> int | None:
    """``90d`` → 7776000; None stays None. Refuses other spellings with an example."""
    if text is None:
        return None
    match = _LIFETIME.match(text)
    if match is None:
        raise InputError(f"{option} {text!r} is not a duration; write e.g. 90d, 12h, 30m or 3600s")
    number, unit = int(match.group(1)), match.group(2)
    if unit is None and number != 0:
        raise InputError(f"{option} {number} has no unit; write {number}s for seconds (or m, h, d)")
    return number * _UNIT[unit or "s"]
