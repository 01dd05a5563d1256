"""Structured logs: one event per line, ``key=value`` pairs after the event name."""

import logging
import sys

__all__ = ["setup_logging"]


def setup_logging(level: str = "info") -> None:
    """Log to stderr with a timestamp, the level, the process id and the part of the system."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s.%(msecs)03d %(levelname)s pid=%(process)d %(name)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
