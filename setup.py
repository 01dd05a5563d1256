"""Builds the data plane's compiled modules (Cython); everything else is in pyproject.toml.

Each extension is compiled with the SHA-256 of its sources (``.pyx``, ``.pxd`` and the ``.pxd`` files
it cimports: ``source_digest.py``) as ``ANYCASTLB_SOURCE_SHA256``; the package compares it with the
sources beside the module at import (``anycastlb/dataplane/native.py``), so an edited source can
never run as a stale compiled module. There is no pure-Python fallback on purpose:
a machine that cannot compile gets an error at install that says what to install, not a slow edge.
"""

import importlib.util
from collections.abc import Callable
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = [
    "src/anycastlb/dataplane/_shared_limits.pyx",
    "src/anycastlb/dataplane/_wire_c.pyx",
    "src/anycastlb/dataplane/_maglev_c.pyx",
    "src/anycastlb/dataplane/_core.pyx",
]
NEEDS = (
    "anycastlb's data plane is compiled (Cython) and needs a C compiler and the Python headers:"
    " on Debian/Ubuntu `apt-get install gcc python3-dev`, then re-run `pip install -e .`"
)


class BuildExtensions(build_ext):
    """setuptools' build_ext, with a failure that says what the machine is missing."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:
            raise SystemExit(f"error: {NEEDS}\n(the compiler said: {error})") from error

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            raise SystemExit(f"error: {NEEDS}\n(building {ext.name}: {error})") from error


def _load_source_digest() -> Callable[[Path], str]:
    """anycastlb.dataplane.source_digest, loaded by path: the package is not importable before it is built."""
    path = Path(__file__).parent / "src/anycastlb/dataplane/source_digest.py"
    spec = importlib.util.spec_from_file_location("_anycastlb_source_digest", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot load {path}: is the repository complete?")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    digest: Callable[[Path], str] = module.source_digest
    return digest


source_digest = _load_source_digest()


DIGESTS = Path(__file__).parent / "build" / "source-digests"


def extension(source: str) -> Extension:
    """The extension, compiled with its digest from a generated header listed as a dependency.

    Not a ``define_macros`` entry: setuptools rebuilds a module only when a file it depends on is
    newer, never when a macro changed, so a new digest (a cimported .pxd edited) would otherwise
    leave the old module in place and every import would fail as stale. The header is rewritten only
    when its digest changes, so an unchanged module is not recompiled.
    """
    digest = source_digest(Path(source))
    name = source.removeprefix("src/").removesuffix(".pyx").replace("/", ".")
    header = DIGESTS / f"{name}.h"
    text = f'#define ANYCASTLB_SOURCE_SHA256 "{digest}"\n'
    if not header.exists() or header.read_text() != text:
        header.parent.mkdir(parents=True, exist_ok=True)
        header.write_text(text)
    return Extension(name, [source], depends=[str(header)], extra_compile_args=["-include", str(header)])


setup(
    ext_modules=cythonize([extension(source) for source in SOURCES], language_level=3),
    cmdclass={"build_ext": BuildExtensions},
)
