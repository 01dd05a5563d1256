"""A compiled module built from another version of its .pyx or .pxd is refused at import, with the fix."""

import importlib
import shutil
from pathlib import Path

import pytest

from anycastlb.dataplane import native

HERE = Path(native.__file__).parent


@pytest.mark.parametrize("name", native.MODULES)
def test_every_installed_module_was_built_from_the_sources_beside_it(name: str) -> None:
    native.check_fresh(importlib.import_module(f"anycastlb.dataplane.{name}"), HERE / f"{name}.pyx")


@pytest.mark.parametrize("suffix", [".pyx", ".pxd"])
def test_an_edited_source_makes_the_import_fail_and_say_which_command_rebuilds(
    tmp_path: Path, suffix: str
) -> None:
    module = importlib.import_module("anycastlb.dataplane._maglev_c")
    for source in (".pyx", ".pxd"):
        shutil.copy(HERE / f"_maglev_c{source}", tmp_path / f"_maglev_c{source}")
    edited = tmp_path / f"_maglev_c{suffix}"
    edited.write_bytes(edited.read_bytes() + b"\n# an edit nobody compiled\n")

    with pytest.raises(native.CompiledModuleError, match=r"is stale: .* changed .*pip install -e \."):
        native.check_fresh(module, tmp_path / "_maglev_c.pyx")


def test_without_a_pyx_beside_it_a_wheel_install_is_trusted(tmp_path: Path) -> None:
    native.check_fresh(importlib.import_module("anycastlb.dataplane._maglev_c"), tmp_path / "absent.pyx")
