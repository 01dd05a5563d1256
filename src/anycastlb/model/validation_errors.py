"""Pydantic's validation errors as people should read them: one per real problem.

Pydantic (2.x, a tuple with ``min_length``) counts a tuple's length *after* its items were
validated, so one bad listener also yields ``listeners: Tuple should have at least 1 item after
validation, not 0``: an error that only echoes the item's own. Every place that shows validation
errors (the edge's config file, the CLI's spec check, the control plane's 422) drops it here, so
the user sees the field they got wrong and nothing they did not write.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["without_echoes"]

_Problem = TypeVar("_Problem", bound=Mapping[str, Any])


def _is_echo(problem: Mapping[str, Any], locations: Sequence[tuple[Any, ...]]) -> bool:
    """A length error of a sequence that was long enough as written, one of whose items failed
    (so it was counted short). A sequence too short as written keeps its error."""
    if problem.get("type") != "too_short":
        return False
    written, context = problem.get("input"), problem.get("ctx") or {}
    minimum = context.get("min_length")
    if not isinstance(written, Sequence) or not isinstance(minimum, int) or len(written) < minimum:
        return False
    where = tuple(problem.get("loc", ()))
    return any(len(other) > len(where) and other[: len(where)] == where for other in locations)


def without_echoes(problems: Iterable[_Problem]) -> list[_Problem]:
    """``problems`` (``ValidationError.errors()``) without the length errors their items caused."""
    listed = list(problems)
    locations = [tuple(problem.get("loc", ())) for problem in listed]
    return [problem for problem in listed if not _is_echo(problem, locations)]
