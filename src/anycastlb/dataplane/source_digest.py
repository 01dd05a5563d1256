"""What a compiled module's staleness digest covers: its ``.pyx``, ``.pxd`` and every ``.pxd`` it cimports.

A module compiled against a declaration (a struct layout, an enum value) that changed since must not
run: its C would read the wrong fields. Cython regenerates a module's C when a ``.pxd`` it cimports
changes, so the digest follows exactly those files, transitively, and nothing else (a digest over
files that do not trigger a rebuild would stay stale forever).

Standalone on purpose: setup.py loads this file by path before the package can be imported.
"""

import hashlib
import re
from pathlib import Path

__all__ = ["source_digest"]

_CIMPORT = re.compile(r"^\s*from\s+anycastlb\.dataplane\.(\w+)\s+cimport\b", re.MULTILINE)


def _declarations(source: Path, seen: set[str]) -> None:
    for name in _CIMPORT.findall(source.read_text(encoding="utf-8")):
        pxd = source.with_name(f"{name}.pxd")
        if name not in seen and pxd.exists():
            seen.add(name)
            _declarations(pxd, seen)


def source_digest(pyx: Path) -> str:
    """SHA-256 over the ``.pyx``, its own ``.pxd`` and the ``.pxd`` files it cimports (by name order)."""
    digest = hashlib.sha256(pyx.read_bytes())
    names: set[str] = set()
    own = pyx.with_suffix(".pxd")
    if own.exists():
        names.add(pyx.stem)
        _declarations(own, names)
    _declarations(pyx, names)
    for name in sorted(names):
        digest.update(name.encode() + b"\0" + pyx.with_name(f"{name}.pxd").read_bytes())
    return digest.hexdigest()
