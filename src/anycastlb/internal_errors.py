"""Unexpected exceptions that an edge process caught and survived: one log line and one counter each.

Why: a long-lived loop (the supervisor, a worker, the health, bgp and control helpers) must never
end, nor silently stop, because a bug or an odd input raised where nobody expected it. Each loop
catches ``Exception`` once per turn, keeps the state it had, and calls :func:`survived`. The counter
``anycastlb_edge_internal_errors_total{component}`` makes swallowed bugs visible (alert on any
increase); the log line names the innermost frame, so the bug can be found without a traceback
flooding the log. Repeats of the same error at the same place are logged at most every 10 s (each
is still counted), so a bug hit by every connection cannot fill the disk.

Imported only by the edge's processes, after the supervisor chose the metrics directory
(prometheus_client's multiprocess mode is fixed when it is first imported).
"""

import contextlib
import logging
import time
import traceback

from prometheus_client import Counter

__all__ = ["INTERNAL_ERRORS", "survived"]

INTERNAL_ERRORS = Counter(
    "anycastlb_edge_internal_errors",
    "Unexpected exceptions an edge process caught, logged and survived (keeping its previous "
    "state), by component: supervisor, reload, worker, health, bgp, control",
    ["component"],
)
_QUIET = 10.0
_last_logged: dict[tuple[str, str, str], tuple[float, int]] = {}  # -> (when, repeats not logged)


def survived(log: logging.Logger, component: str, action: str, error: BaseException) -> None:
    """Log and count ``error`` that ``component`` caught; ``action`` says what it did instead."""
    with contextlib.suppress(Exception):  # a full metrics disk must not turn this into a new error
        INTERNAL_ERRORS.labels(component).inc()
    frames = traceback.extract_tb(error.__traceback__)
    at = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}:{frames[-1].name}" if frames else "?"
    key = (component, at, type(error).__name__)
    now = time.monotonic()
    last, repeats = _last_logged.get(key, (-_QUIET, 0))
    if now - last < _QUIET:
        _last_logged[key] = (last, repeats + 1)
        return
    _last_logged[key] = (now, 0)
    log.error(
        "internal_error component=%s action=%s at=%s error=%r repeats_not_logged=%d",
        component,
        action,
        at,
        f"{type(error).__name__}: {error}",
        repeats,
    )
