"""Structured logs: one event per line, ``key=value`` pairs after the event name; or, with
``--log-format json``, one JSON object per line with the same fields (log_json.py)."""

import logging
import os
import sys
from enum import StrEnum

__all__ = ["LOG_FORMAT_VARIABLE", "LogFormat", "json_logs", "setup_logging"]

# Libraries whose INFO lines are about themselves, not about our system: alembic logs seven
# "setup plugin" lines and two "Context impl" lines per migration run, before anything useful.
# What a migration changed is logged by the store as one event of ours (schema_migrated).
_CHATTY_LIBRARIES = ("alembic",)
# Set by setup_logging: processes this one starts (the lab's and the demo's edges) log alike.
# Forked children (edge workers, helpers, the follower) inherit the handler itself.
LOG_FORMAT_VARIABLE = "ANYCASTLB_LOG_FORMAT"


class LogFormat(StrEnum):
    TEXT = "text"  # 2026-12-03T20:18:16.123 INFO pid=7 anycastlb.edge event key=value
    JSON = "json"  # {"ts": "2026-12-03T20:18:16.123Z", "level": "INFO", "pid": 7, ..., "event": ...}


def json_logs() -> bool:
    """Whether this process logs JSON (for parts that configure a library's logging themselves)."""
    return os.environ.get(LOG_FORMAT_VARIABLE) == LogFormat.JSON


def setup_logging(level: str = "info", log_format: LogFormat | str = LogFormat.TEXT) -> None:
    """Log to stderr with a timestamp, the level, the process id and the part of the system.

    The chatty libraries speak from WARNING on, unless ``debug`` was asked for (then everything)."""
    chosen = LogFormat(log_format)
    os.environ[LOG_FORMAT_VARIABLE] = chosen.value
    handler = logging.StreamHandler(sys.stderr)
    if chosen is LogFormat.JSON:
        from anycastlb.log_json import JsonFormatter  # noqa: PLC0415 - only when asked for

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s.%(msecs)03d %(levelname)s pid=%(process)d %(name)s %(message)s",
                datefmt="%Y-%m-%dT%H:%M:%S",
            )
        )
    logging.basicConfig(level=level.upper(), handlers=[handler])
    quiet = logging.DEBUG if level.lower() == "debug" else logging.WARNING
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
