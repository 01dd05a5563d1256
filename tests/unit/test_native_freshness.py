"""A compiled module built from another version of its sources is refused at import, with the fix."""

import importlib
import shutil
from pathlib import Path

import pytest

from anycastlb.dataplane import native

HERE = Path(native.__file__).parent


@pytest.mark.parametrize("name", native.MODULES)
def test_every_installed_module_was_built_from_the_sources_beside_it(name: str) -> None:
    native.check_fresh(importlib.import_module(f"anycastlb.dataplane.{name}"), HERE / f"{name}.pyx")


@pytest.mark.parametrize(
    "edited",
    ["_core.pyx", "_core.pxd", "_shared_limits.pxd", "_maglev_c.pxd", "_wire_c.pxd", "_c_net.pxd"],
)
def test_an_edit_to_the_source_or_any_declaration_it_cimports_makes_it_stale(
    tmp_path: Path, edited: str
) -> None:
    """The core cimports the others' .pxd (struct layouts, enums): an edit there must rebuild it too."""
    module = importlib.import_module("anycastlb.dataplane._core")
    for source in [*HERE.glob("*.pxd"), HERE / "_core.pyx"]:
        shutil.copy(source, tmp_path / source.name)
    native.check_fresh(module, tmp_path / "_core.pyx")
    target = tmp_path / edited
    target.write_bytes((target.read_bytes() if target.exists() else b"") + b"\n# an edit nobody compiled\n")

    with pytest.raises(native.CompiledModuleError, match=r"is stale: .* changed .*pip install -e \."):
        native.check_fresh(module, tmp_path / "_core.pyx")


def test_an_unrelated_declaration_does_not_make_a_module_stale(tmp_path: Path) -> None:
    module = importlib.import_module("anycastlb.dataplane._maglev_c")
    for source in [*HERE.glob("*.pxd"), HERE / "_maglev_c.pyx"]:
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "_wire_c.pxd").write_bytes(b"# _maglev_c does not cimport this\n")
    native.check_fresh(module, tmp_path / "_maglev_c.pyx")


def test_without_a_pyx_beside_it_a_wheel_install_is_trusted(tmp_path: Path) -> None:
    native.check_fresh(importlib.import_module("anycastlb.dataplane._maglev_c"), tmp_path / "absent.pyx")
