"""``--log-format json``: each log line as one JSON object with the fields of the text line.

Our log calls write ``event key=value key=value (a note)`` messages (about a hundred call sites,
``log.info("worker_died worker=%d pid=%d code=%d", ...)``). Rather than rewrite them, this
formatter splits the formatted message back into its parts, following the spellings the code uses:

- ``event``: the first word when it is a ``snake_case`` name; a line from a library (uvicorn,
  alembic) that is not one gets ``event: "log"`` and its text in ``message``;
- ``key=value``: the value ends at the next space, unless it starts with a quote (``%r`` of a
  string: ``error='no route to host'``, decoded as Python reads it) or a bracket (``%r`` of a
  tuple or list: ``problems=('a b', 'c')``, kept as written, up to its closing bracket);
- anything else (``(the other listeners serve)``, ``action=...`` aside) is joined into ``note``.

Values are strings, except an unquoted value that is a plain integer or decimal (``pid=123``,
``after=12.5``): a JSON number. ``1.5s`` or ``'42'`` stay strings: a unit or quotes say the writer
meant text. A key that would overwrite one of the line's own fields (``pid`` of a child process
next to our own ``pid``) is written ``event_<key>``. A traceback goes in ``exc_info``.
"""

import ast
import json
import logging
import re
import time
from typing import Any

__all__ = ["JsonFormatter", "split_message"]

_EVENT = re.compile(r"[a-z][a-z0-9_]*(?=\s|$)")
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
RESERVED = frozenset({"ts", "level", "pid", "logger", "event", "message", "note", "exc_info", "stack_info"})


def _quoted_end(text: str, start: int) -> int:
    """Index after the string literal opening at ``start`` (or the end of the text)."""
    quote, index = text[start], start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    return len(text)


def _bracketed_end(text: str, start: int) -> int:
    """Index after the bracket opening at ``start`` closes (quotes inside respected)."""
    depth, index = [], start
    while index < len(text):
        char = text[index]
        if char in "'\"":
            index = _quoted_end(text, index)
            continue
        if char in _CLOSERS:
            depth.append(_CLOSERS[char])
        elif depth and char == depth[-1]:
            depth.pop()
            if not depth:
                return index + 1
        index += 1
    return len(text)


def _value(raw: str) -> Any:  # noqa: ANN401 - a JSON value: str, int or float
    if raw.startswith(("'", '"')):
        try:
            decoded = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
        return decoded if isinstance(decoded, str) else raw
    if _INT.fullmatch(raw):
        return int(raw)
    if _DECIMAL.fullmatch(raw):
        return float(raw)
    return raw


def _token_end(text: str, start: int) -> int:
    """Index after the value or word at ``start``: a string literal, a bracketed group, or up to
    the next space."""
    if start < len(text) and text[start] in "'\"":
        return _quoted_end(text, start)
    if start < len(text) and text[start] in _CLOSERS:
        return _bracketed_end(text, start)
    stop = start
    while stop < len(text) and not text[stop].isspace():
        stop += 1
    return stop


def split_message(message: str) -> dict[str, Any]:
    """``event key=value … (note)`` as a dict: event, each key, and note when there is free text."""
    found = _EVENT.match(message)
    if found is None:
        return {"event": "log", "message": message}
    fields: dict[str, Any] = {"event": found.group()}
    notes: list[str] = []
    index = found.end()
    while index < len(message):
        if message[index].isspace():
            index += 1
            continue
        key = _KEY.match(message, index)
        if key is None:
            stop = _token_end(message, index)
            notes.append(message[index:stop])
            index = stop
            continue
        stop = _token_end(message, key.end())
        name = key.group(1)
        if name in RESERVED:
            name = f"event_{name}"
        while name in fields:
            name += "_"
        fields[name] = _value(message[key.end() : stop])
        index = stop
    if notes:
        fields["note"] = " ".join(notes)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, milliseconds), level, pid, logger, then the message's
    fields (:func:`split_message`)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
        }
        line.update(split_message(record.getMessage()))
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)
