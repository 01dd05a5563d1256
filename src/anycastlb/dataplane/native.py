"""The compiled modules of the data plane, imported only if they match their source.

``pip install -e .`` compiles each ``.pyx`` into a module beside it (setup.py) and embeds the
source's SHA-256. An edited ``.pyx`` does not rebuild itself: without this check the old compiled
code would keep running, silently, under tests that seem to pass. So the digest is compared with
the ``.pyx`` on disk at import, and a mismatch or a missing module is an error that says the one
command that fixes it. There is no Python fallback: a slow edge that looks healthy is worse than
an edge that refuses to start (the Python versions live on as test oracles only).

A wheel installs no ``.pyx`` (nothing to compare, nothing that can go stale): then the check passes.
"""

import hashlib
from pathlib import Path
from types import ModuleType

__all__ = [
    "BUCKETS",
    "RATE_BUCKETS",
    "Admission",
    "CompiledModuleError",
    "RateWindows",
    "SharedCounters",
    "check_fresh",
    "source_key",
]

_REBUILD = "run `python3 -m pip install -e .` in the repository (needs gcc and the Python headers)"


class CompiledModuleError(ImportError):
    """A compiled data-plane module is missing or was built from another version of its source."""


def check_fresh(module: ModuleType, source: Path) -> None:
    """Raise :class:`CompiledModuleError` unless ``module`` was built from ``source`` as it is now."""
    if not source.exists():
        return
    built: str = module.SOURCE_SHA256
    if hashlib.sha256(source.read_bytes()).hexdigest() != built:
        raise CompiledModuleError(
            f"{module.__name__} is stale: {source} changed since it was compiled; {_REBUILD}"
        )


try:
    from anycastlb.dataplane import _shared_limits
except ImportError as error:
    raise CompiledModuleError(f"anycastlb.dataplane._shared_limits is not compiled: {_REBUILD}") from error
check_fresh(_shared_limits, Path(__file__).with_name("_shared_limits.pyx"))
try:  # the PROXY encoder and ClientHello peek: C functions the compiled loop cimports (_wire_c.pxd)
    from anycastlb.dataplane import _wire_c
except ImportError as error:
    raise CompiledModuleError(f"anycastlb.dataplane._wire_c is not compiled: {_REBUILD}") from error
check_fresh(_wire_c, Path(__file__).with_name("_wire_c.pyx"))

from anycastlb.dataplane._shared_limits import (  # noqa: E402 - only once the module is known fresh
    BUCKETS,
    RATE_BUCKETS,
    Admission,
    RateWindows,
    SharedCounters,
    source_key,
)
