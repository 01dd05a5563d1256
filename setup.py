"""Builds the data plane's compiled modules (Cython); everything else is in pyproject.toml.

Each extension is compiled with the SHA-256 of its ``.pyx`` followed by its ``.pxd`` (if it has one: the
C API other modules compile against) as ``ANYCASTLB_SOURCE_SHA256``; the package computes the same
digest from the files beside the module at import (``anycastlb/dataplane/native.py``), so an edited
source can never run as a stale compiled module. There is no pure-Python fallback on purpose:
a machine that cannot compile gets an error at install that says what to install, not a slow edge.
"""

import hashlib
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = ["src/anycastlb/dataplane/_shared_limits.pyx"]
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


def source_digest(pyx: Path) -> str:
    """SHA-256 of the .pyx, then of its .pxd if there is one (native.source_digest, the same rule)."""
    digest = hashlib.sha256(pyx.read_bytes())
    declarations = pyx.with_suffix(".pxd")
    if declarations.exists():
        digest.update(declarations.read_bytes())
    return digest.hexdigest()


def extension(source: str) -> Extension:
    digest = source_digest(Path(source))
    name = source.removeprefix("src/").removesuffix(".pyx").replace("/", ".")
    return Extension(name, [source], define_macros=[("ANYCASTLB_SOURCE_SHA256", f'"{digest}"')])


setup(
    ext_modules=cythonize([extension(source) for source in SOURCES], language_level=3),
    cmdclass={"build_ext": BuildExtensions},
)
