"""Durations as people write them in config files ("500ms", "1s", "2m"), stored as float seconds."""

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Accept numbers (seconds) or strings with a unit; reject anything ambiguous."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 1s or 2m, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration: write a number with a unit, e.g. 500ms, 1s, 2m, 1h"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 500ms or 1s, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A non-negative number of seconds, written in config as ``500ms``, ``1s``, ``2m`` or a bare number."""
