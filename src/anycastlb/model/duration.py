"""Durations as people write them ("500ms", "1s", "2m"), stored as float seconds.

A number needs its unit: ``interval: 5`` could be meant as 5 s or 5 ms, and a health check that
probes a thousand times faster (or slower) than intended is a bad way to find out. Only ``0`` may
stand alone: it is zero in every unit (as in Go's ``time.ParseDuration``).

Written out (JSON, YAML, the API's answers, the store) a duration carries its unit too, so what the
tools print can be applied again as it is. Earlier releases wrote seconds as bare numbers into data
that programs read back: specs stored by the control plane, an edge's last-known-good state, the
desired state an older control plane sends. Their readers validate with ``context=STORED_SECONDS``,
which reads a bare number as seconds, as those releases meant it; nothing a person writes is read
that way. (Rewriting the stored specs in a migration would not cover the edges' files, nor a
control plane older than its edges during an upgrade; reading them is all it takes.)
"""

import math
import re
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo, WithJsonSchema

__all__ = ["STORED_SECONDS", "Duration", "duration_text", "parse_duration", "schema_defaults_with_units"]

STORED_SECONDS: Final = {"durations": "bare numbers are seconds"}
"""Validation context for data that an earlier release wrote (see the module docstring)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_DIGITS = 400  # characters of the number: enough for any float duration_text writes (5e-324 too)
_PATTERN = r"^\s*(0|\d+(\.\d+)?\s*(ms|s|m|h))\s*$"


def _no_unit(text: str) -> ValueError:
    return ValueError(f"{text} has no unit; write {text}s for seconds or {text}ms for milliseconds (or m, h)")


def _seconds(number: str, unit: str) -> float:
    # ms divides (correctly rounded: "100ms" is exactly the float 0.1); the others multiply exactly
    return float(number) / 1000 if unit == "ms" else float(number) * _UNIT_SECONDS[unit]


def parse_duration(value: object, *, stored: bool = False) -> float:
    """A string with a unit (or ``0``) → seconds; with ``stored``, a bare number too (as seconds)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 1s or 2m, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value} is not a duration: write a non-negative number with a unit, e.g. 1s")
        if not (stored or value == 0):
            raise _no_unit(_plain(float(value)))
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration: write a number with a unit, e.g. 500ms, 1s, 2m, 1h"
            )
        number, unit = match.groups()
        if len(number) > _MAX_DIGITS:
            raise ValueError(
                f"{value[:20]!r}... is too long for a duration (at most {_MAX_DIGITS} characters)"
            )
        if unit is None and float(number) != 0:
            raise _no_unit(number)
        seconds = _seconds(number, unit or "s")
        if not math.isfinite(seconds):
            raise ValueError(f"{value[:20]!r}... is too long for a duration")
    else:
        raise ValueError(f"expected a duration such as 500ms or 1s, got {type(value).__name__}")
    return seconds


def _plain(number: float) -> str:
    """The shortest decimal that reads back as ``number``, without an exponent or a trailing ``.0``."""
    text = format(Decimal(repr(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration_text(seconds: float) -> str:
    """Seconds as a duration that parses back to exactly the same float: ``500ms``, ``2s``, ``12.5ms``."""
    if 0 < seconds < 1:
        millis = f"{_plain(round(seconds * 1000, 6))}ms"
        if parse_duration(millis) == seconds:
            return millis
    return f"{_plain(seconds)}s"


def _validate(value: object, info: ValidationInfo) -> float:
    return parse_duration(value, stored=info.context == STORED_SECONDS)


Duration = Annotated[
    float,
    BeforeValidator(_validate),
    PlainSerializer(duration_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _PATTERN, "examples": ["500ms", "1s", "2m"]}),
]
"""A non-negative number of seconds, written ``500ms``, ``1s``, ``2m`` or ``1h`` (or ``0``)."""


def schema_defaults_with_units(schema: dict[str, Any]) -> None:
    """A model's JSON schema (``json_schema_extra``): a duration's default as it is written (``500ms``).

    pydantic encodes a default by the type of its value (a float), not by the field's serializer,
    so /docs would show ``interval`` as a string defaulting to ``0.5``."""
    for field in schema.get("properties", {}).values():
        if field.get("pattern") == _PATTERN and isinstance(field.get("default"), int | float):
            field["default"] = duration_text(float(field["default"]))
