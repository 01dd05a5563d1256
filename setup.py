"""Builds the data plane's compiled modules (Cython); everything else is in pyproject.toml.

Each extension is compiled with its ``.pyx``'s SHA-256 as ``ANYCASTLB_SOURCE_SHA256``; the package
compares it with the ``.pyx`` beside the module at import (``anycastlb/dataplane/native.py``), so an
edited source can never run as a stale compiled module. There is no pure-Python fallback on purpose:
a machine that cannot compile gets an error at install that says what to install, not a slow edge.
"""

import hashlib
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = ["src/anycastlb/dataplane/_shared_limits.pyx", "src/anycastlb/dataplane/_wire_c.pyx"]
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


def extension(source: str) -> Extension:
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    name = source.removeprefix("src/").removesuffix(".pyx").replace("/", ".")
    return Extension(name, [source], define_macros=[("ANYCASTLB_SOURCE_SHA256", f'"{digest}"')])


setup(
    ext_modules=cythonize([extension(source) for source in SOURCES], language_level=3),
    cmdclass={"build_ext": BuildExtensions},
)
