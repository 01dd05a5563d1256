"""Reading a YAML config file (``edge.yaml``, ``base.yaml``) from disk, whatever the file holds.

Why a module of its own: the supervisor re-reads the file on every SIGHUP while it serves traffic,
so every way a file can be bad must end as one :class:`ConfigError` that names what and where
(byte, line, column, limit) and how to fix it, never as an exception that unwinds the supervisor.

The checks, in the order they run:

1. open without following into a FIFO's wait (``O_NONBLOCK``), then ``fstat`` the open descriptor:
   a directory, a FIFO or a device is refused, and a file renamed or removed after the open is still
   read whole (the descriptor holds the inode), so there is no window between stat and read;
2. at most :data:`MAX_BYTES` are read; a longer file is refused before it is decoded;
3. the bytes must be UTF-8 (YAML 1.2's default); the first bad byte is named by offset and line;
4. one pass over the parser's events (an iterative state machine in PyYAML and libyaml, so no
   document can exhaust the stack) bounds nesting (:data:`MAX_DEPTH`), refuses an alias that
   contains itself, and bounds how much aliases expand the document
   (:data:`MAX_ALIAS_EXPANSION`): PyYAML shares an aliased node instead of copying it, but the
   validation and the JSON sent to every child walk it once per reference, so ten nested aliases
   of ten ("billion laughs") would cost 10^9 values there;
5. only then is the document built, with the safe loader (no Python tags).
"""

import os
import stat
from pathlib import Path

import yaml

__all__ = ["MAX_ALIAS_EXPANSION", "MAX_BYTES", "MAX_DEPTH", "ConfigError", "read_yaml_file"]

MAX_BYTES = 16 * 1024 * 1024  # a PoP with thousands of listeners is ~2 MiB of YAML
MAX_DEPTH = 64  # edge.yaml needs 6 levels (listeners, a listener, backends, a backend, ...)
MAX_ALIAS_EXPANSION = 100_000  # values that aliases may add beyond what the file spells out

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class ConfigError(ValueError):
    """The configuration cannot be used; the message lists every problem with its field path."""


def read_yaml_file(path: Path) -> object:
    """The document in ``path``; raises :class:`ConfigError` saying what is wrong and how to fix it."""
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        start = error.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise ConfigError(
            f"{path} is not UTF-8: byte {start} (line {line}, column {column}) is 0x{data[start]:02x}; "
            "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    try:
        _check_shape(path, text)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        if "maximum nesting depth" in (error.problem or ""):  # libyaml's own bound (PyYAML >= 6.0.4)
            at = f"line {mark.line + 1}" if mark is not None else "a line"
            raise ConfigError(_too_deep(path, at)) from None
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError(f"{path} is not valid YAML{where}: {what}; {_hint(error)}") from None
    except yaml.YAMLError as error:  # the reader's: a control character (a binary file?)
        raise ConfigError(
            f"{path} is not valid YAML: {' '.join(str(error).split())}; remove that character"
        ) from None


def _too_deep(path: Path, where: str) -> str:
    return (
        f"{path}: {where} is nested deeper than {MAX_DEPTH} levels; "
        "an edge config needs fewer than 10 (a generated file gone wrong?)"
    )


def _hint(error: yaml.MarkedYAMLError) -> str:
    if isinstance(error, yaml.constructor.ConstructorError):
        return "use plain values (tags such as !!python/... are not accepted)"
    if isinstance(error, yaml.composer.ComposerError):
        return "keep one document (no '---' in the middle) and define each &anchor before its *alias"
    return "fix the syntax there (indentation, a missing ':' or an unclosed quote or bracket)"


def _read_bytes(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"cannot read {path}: no such file; check the path (--config)") from None
    except PermissionError:
        raise ConfigError(
            f"cannot read {path}: permission denied; make it readable by uid {os.getuid()} "
            f"(chmod o+r {path}, or chown)"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"cannot read {path}: it is a directory; give the path of the YAML file")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"cannot read {path}: not a regular file (a FIFO, socket or device)")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_BYTES:
        raise ConfigError(
            f"{path} is larger than the limit of {MAX_BYTES} bytes ({MAX_BYTES // (1024 * 1024)} MiB); "
            "is it the right file? An edge config is a few KiB to a few MiB"
        )
    return b"".join(chunks)


def _check_shape(path: Path, text: str) -> None:
    """Bound nesting and alias expansion before any object is built (see the module docstring)."""
    open_sizes: list[int] = []  # per open collection: its expanded size so far
    open_anchors: list[str | None] = []
    sizes: dict[str, int] = {}  # anchor -> expanded size of its finished node
    added = 0  # values aliases add beyond the file's own
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, _OPENS):
            if len(open_sizes) >= MAX_DEPTH:
                raise ConfigError(_too_deep(path, f"line {_line(event)}"))
            open_sizes.append(1)
            open_anchors.append(event.anchor)
            continue
        if isinstance(event, _CLOSES):
            size, anchor = open_sizes.pop(), open_anchors.pop()
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise ConfigError(
                    f"{path}: line {_line(event)}: alias *{event.anchor} refers to a node "
                    "that contains it (a cycle); write the value out instead"
                )
            size, anchor = sizes.get(event.anchor or "", 0), None  # undefined: the loader names it next
            added += size
            if added > MAX_ALIAS_EXPANSION:
                raise ConfigError(
                    f"{path}: aliases (*name) expand the document by more than {MAX_ALIAS_EXPANSION} "
                    f"values (at line {_line(event)}: a 'billion laughs' document?); "
                    "write the values out, or use fewer aliases of aliases"
                )
        else:
            continue  # stream and document start/end
        if anchor is not None:
            sizes[anchor] = size
        if open_sizes:
            open_sizes[-1] += size


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 0
