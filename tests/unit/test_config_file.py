"""Every way an edge.yaml can be bad is one ConfigError that says what, where and how to fix it."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from anycastlb.model.config import ConfigError, load_config
from anycastlb.model.config_file import MAX_ALIAS_EXPANSION, MAX_BYTES, MAX_DEPTH

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


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_bad_file_is_one_config_error_naming_what_and_where(tmp_path: Path, kind: str) -> None:
    make, expected = BAD_FILES[kind]
    path = tmp_path / "edge.yaml"
    make(path)

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    message = str(raised.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_a_file_that_cannot_be_opened_for_permission_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(GOOD)

    def refuse(*_: object) -> int:  # root reads any file, so the kernel's answer is simulated
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ConfigError, match=r"permission denied; make it readable by uid \d+"):
        load_config(path)


def test_a_file_removed_between_open_and_read_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(GOOD)
    real_fstat = os.fstat

    def remove_then_stat(fd: int) -> os.stat_result:
        path.unlink()  # an editor or a config manager replacing the file right now
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", remove_then_stat)

    assert load_config(path).pop == "fra"


def test_a_few_aliases_as_people_write_them_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "pop: fra\nlisteners:\n"
        "  - {name: a, address: 203.0.113.10, port: 80, backends: &nodes [{address: 10.0.0.1, port: 30080}]}\n"
        "  - {name: b, address: 203.0.113.10, port: 81, backends: *nodes}\n"
    )

    config = load_config(path)

    assert [len(listener.backends) for listener in config.listeners] == [1, 1]


def test_a_file_just_under_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_bytes(GOOD.encode() + b"#" * (MAX_BYTES - len(GOOD)))

    assert load_config(path).pop == "fra"
