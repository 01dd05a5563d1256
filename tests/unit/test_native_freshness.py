"""A compiled module built from another version of its .pyx (or .pxd) is refused at import, with the fix."""

from pathlib import Path

import pytest

from anycastlb.dataplane import _shared_limits, native

SOURCE = Path(native.__file__).with_name("_shared_limits.pyx")


def test_the_installed_module_was_built_from_the_pyx_beside_it() -> None:
    native.check_fresh(_shared_limits, SOURCE)


def test_an_edited_pyx_makes_the_import_fail_and_say_which_command_rebuilds(tmp_path: Path) -> None:
    edited = tmp_path / "_shared_limits.pyx"
    edited.write_bytes(SOURCE.read_bytes() + b"\n# an edit nobody compiled\n")

    with pytest.raises(native.CompiledModuleError, match=r"is stale: .* changed .*pip install -e \."):
        native.check_fresh(_shared_limits, edited)


def test_an_edited_pxd_beside_an_unchanged_pyx_is_stale_too(tmp_path: Path) -> None:
    # The .pxd is the C API the compiled loop is built against: an enum value or a struct field
    # changed there must not run against a module built from the old one.
    (tmp_path / "_shared_limits.pyx").write_bytes(SOURCE.read_bytes())
    declarations = SOURCE.with_suffix(".pxd").read_bytes()
    (tmp_path / "_shared_limits.pxd").write_bytes(declarations)
    native.check_fresh(_shared_limits, tmp_path / "_shared_limits.pyx")

    (tmp_path / "_shared_limits.pxd").write_bytes(declarations + b"\n# an edit nobody compiled\n")

    with pytest.raises(native.CompiledModuleError, match="is stale"):
        native.check_fresh(_shared_limits, tmp_path / "_shared_limits.pyx")


def test_without_a_pyx_beside_it_a_wheel_install_is_trusted(tmp_path: Path) -> None:
    native.check_fresh(_shared_limits, tmp_path / "absent.pyx")
