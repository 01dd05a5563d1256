"""Bad config files of every kind, each with what the error about it must say."""

import os
from collections.abc import Callable
from pathlib import Path

from anycastlb.model.config_file import MAX_ALIAS_EXPANSION, MAX_BYTES, MAX_DEPTH

__all__ = ["BAD_FILES", "GOOD", "replace_with"]

GOOD = "pop: fra\nlisteners: []\n"


def billion_laughs(levels: int = 9) -> str:
    """Each level is a list of nine aliases of the level below: 9**levels values once expanded."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def write(text: str | bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return make


def make_directory(path: Path) -> None:
    path.mkdir()


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_nothing(path: Path) -> None:
    del path


BAD_FILES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "not UTF-8": (
        write(GOOD.encode() + b"# caf\xe9\n"),
        ["is not UTF-8", "byte 28 (line 3, column 6)", "0xe9"],
    ),
    "not YAML": (
        write("pop: fra\nlisteners: [\n"),
        ["is not valid YAML at line 3, column 1", "fix the syntax"],
    ),
    "a list, not a mapping": (write("- pop: fra\n"), ["expected a mapping at the top level", "found a list"]),
    "a scalar, not a mapping": (write("fra\n"), ["expected a mapping", "found a str"]),
    "empty": (write(""), ["expected a mapping", "found an empty file"]),
    "an alias bomb": (write(billion_laughs()), [f"expand the document by more than {MAX_ALIAS_EXPANSION}"]),
    "an alias cycle": (write("pop: &x [1, *x]\n"), ["alias *x refers to a node that contains it"]),
    "too large": (write(b"#" * (MAX_BYTES + 1)), [f"larger than the limit of {MAX_BYTES} bytes (16 MiB)"]),
    "nested too deeply": (write("pop: " + "[" * 10_000 + "]" * 10_000), [f"nested deeper than {MAX_DEPTH}"]),
    "a NUL byte": (write("pop: f\x00ra\n"), ["is not valid YAML", "remove that character"]),
    "a Python tag": (write("pop: !!python/object/apply:os.system [true]\n"), ["tags such as !!python"]),
    "two documents": (write("pop: a\n---\npop: b\n"), ["expected a single document", "keep one document"]),
    "a directory": (make_directory, ["it is a directory"]),
    "a FIFO": (make_fifo, ["not a regular file"]),
    "missing": (make_nothing, ["no such file", "check the path"]),
}


def replace_with(path: Path, kind: str) -> None:
    """Whatever is at ``path`` (a file, a directory, a FIFO) gives way to a bad file of ``kind``."""
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:
        path.unlink(missing_ok=True)
    BAD_FILES[kind][0](path)
