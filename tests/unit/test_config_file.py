"""Every way an edge.yaml can be bad is one ConfigError that says what, where and how to fix it."""

import os
from pathlib import Path

import pytest

from anycastlb.model.config import ConfigError, load_config
from anycastlb.model.config_file import MAX_BYTES
from tests.support.bad_files import BAD_FILES, GOOD


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
        path.unlink(missing_ok=True)  # an editor or a config manager replacing the file right now
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", remove_then_stat)

    assert load_config(path).pop == "fra"


def test_a_few_aliases_as_people_write_them_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "pop: fra\nlisteners:\n"
        "  - {name: a, address: 203.0.113.10, port: 80,\n"
        "     backends: &nodes [{address: 10.0.0.1, port: 30080}]}\n"
        "  - {name: b, address: 203.0.113.10, port: 81, backends: *nodes}\n"
    )

    config = load_config(path)

    assert [len(listener.backends) for listener in config.listeners] == [1, 1]


def test_a_file_just_under_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_bytes(GOOD.encode() + b"#" * (MAX_BYTES - len(GOOD)))

    assert load_config(path).pop == "fra"
