"""Structured logs: one event per line, ``key=value`` pairs after the event name."""

import logging
import sys

__all__ = ["setup_logging"]

# Libraries whose INFO lines are about themselves, not about our system: alembic logs seven
# "setup plugin" lines and two "Context impl" lines per migration run, before anything useful.
# What a migration changed is logged by the store as one event of ours (schema_migrated).
_CHATTY_LIBRARIES = ("alembic",)


def setup_logging(level: str = "info") -> None:
    """Log to stderr with a timestamp, the level, the process id and the part of the system.

    The chatty libraries speak from WARNING on, unless ``debug`` was asked for (then everything)."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s.%(msecs)03d %(levelname)s pid=%(process)d %(name)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    quiet = logging.DEBUG if level.lower() == "debug" else logging.WARNING
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
