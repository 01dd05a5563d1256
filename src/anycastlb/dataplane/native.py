"""The compiled modules of the data plane, imported only if they match their source.

``pip install -e .`` compiles each ``.pyx`` into a module beside it (setup.py) and embeds the
SHA-256 of the source it was built from: the ``.pyx``, its ``.pxd`` and the ``.pxd`` files it
cimports (``source_digest.py`` says why exactly those). An edited source does not rebuild itself: without
this check the old compiled code would keep running, silently, under tests that seem to pass. So
the digest is compared with the files on disk at import, and a mismatch or a missing module is an
error that says the one command that fixes it. There is no Python fallback: a slow edge that looks
healthy is worse than an edge that refuses to start (the Python versions live on as test oracles).

A wheel installs no sources (nothing to compare, nothing that can go stale): then the check passes.
"""

import importlib
from pathlib import Path
from types import ModuleType

from anycastlb.dataplane.source_digest import source_digest

__all__ = [
    "BUCKETS",
    "KEY_BYTES",
    "MODULES",
    "RATE_BUCKETS",
    "REFUSAL_REASONS",
    "Admission",
    "CompiledMaglev",
    "CompiledModuleError",
    "Core",
    "RateWindows",
    "SharedCounters",
    "check_fresh",
    "core_module",
    "listener_key",
    "listener_rate_key",
    "source_digest",
    "source_key",
]

MODULES = ("_shared_limits", "_wire_c", "_maglev_c", "_core")
"""The compiled modules, in the order they depend on each other (setup.py builds the same list)."""

_REBUILD = "run `python3 -m pip install -e .` in the repository (needs gcc and the Python headers)"


class CompiledModuleError(ImportError):
    """A compiled data-plane module is missing or was built from another version of its source."""


def check_fresh(module: ModuleType, source: Path) -> None:
    """Raise :class:`CompiledModuleError` unless ``module`` was built from ``source`` as it is now."""
    if not source.exists():
        return
    built: str = module.SOURCE_SHA256
    if source_digest(source) != built:
        raise CompiledModuleError(
            f"{module.__name__} is stale: {source} (or its .pxd) changed since it was compiled; {_REBUILD}"
        )


def _require(name: str) -> ModuleType:
    """Import ``anycastlb.dataplane.<name>`` and check it against its sources, or raise."""
    try:
        module = importlib.import_module(f"anycastlb.dataplane.{name}")
    except ImportError as error:
        raise CompiledModuleError(f"anycastlb.dataplane.{name} is not compiled: {_REBUILD}") from error
    check_fresh(module, Path(__file__).with_name(f"{name}.pyx"))
    return module


for _name in MODULES:
    _require(_name)

core_module = _require("_core")
"""The compiled core's module: its constants (``LAYOUT``, ``REJECT_REASONS``...) describe its counter rows."""

# Imported only once the modules are known fresh (hence E402).
from anycastlb.dataplane._core import Core  # noqa: E402
from anycastlb.dataplane._maglev_c import CompiledMaglev  # noqa: E402
from anycastlb.dataplane._shared_limits import (  # noqa: E402
    BUCKETS,
    KEY_BYTES,
    RATE_BUCKETS,
    REFUSAL_REASONS,
    Admission,
    RateWindows,
    SharedCounters,
    listener_key,
    listener_rate_key,
    source_key,
)
