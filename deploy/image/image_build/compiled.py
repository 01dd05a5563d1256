"""The compiled data plane of the last build, reused while its sources are byte for byte the same.

Compiling the Cython modules is most of a warm build (one to two minutes of a loaded machine),
and the .pyx files change far less often than the rest. After a build, the generated C files, the
digest headers (setup.py) and the built extension modules are kept under a key that hashes the
sources they come from and the build root that compiled them. A build with the same key restores
them, newer than the sources, before pip builds the wheel, and setuptools skips the compile.

Only those files are restored: never build/lib's .py copies, which setuptools would then take for
up to date. A changed .pyx, .pxd, setup.py or build root is a different key, so nothing stale is
ever reused; the package's import-time digest check (anycastlb/dataplane/native.py) would also
refuse a module compiled from other sources.
"""

import hashlib
import os
import shutil
import time
from pathlib import Path

__all__ = ["compiled_key", "restore", "save"]

_UNUSED_DAYS = 14

_INPUTS = (
    "setup.py",
    "src/anycastlb/dataplane/*.pyx",
    "src/anycastlb/dataplane/*.pxd",
    "src/anycastlb/dataplane/source_digest.py",
)
_OUTPUTS = (
    "src/anycastlb/dataplane/*.c",
    "build/source-digests/*.h",
    "build/lib.*/anycastlb/dataplane/*.so",
)


def compiled_key(source: Path, build_root: str) -> str:
    """A hash of the files the compiled modules are made from, and of the root that compiles them."""
    digest = hashlib.sha256(build_root.encode())
    for pattern in _INPUTS:
        for path in sorted(source.glob(pattern)):
            digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"compiled-{digest.hexdigest()[:16]}"


def restore(cache_dir: Path | None, key: str, source: Path) -> bool:
    """Put the kept outputs in ``source`` with the current time as mtime; False if there are none."""
    if cache_dir is None or not (cache_dir / key).is_dir():
        return False
    kept = cache_dir / key
    now = time.time()
    for pattern in _OUTPUTS:
        for path in kept.glob(pattern):
            target = source / path.relative_to(kept)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            shutil.copymode(path, target)
            os.utime(target, (now, now))
    os.utime(kept)  # in use: see roots._cached's pruning
    print(f"image: compiled data plane from the cache: {kept}")
    return True


def save(cache_dir: Path | None, key: str, source: Path) -> None:
    """Keep this build's outputs under ``key`` (written aside, then renamed: never half a set)."""
    if cache_dir is None or (cache_dir / key).exists():
        return
    for old in cache_dir.glob("compiled-*"):  # the outputs of sources nobody built for two weeks
        if time.time() - old.stat().st_mtime > _UNUSED_DAYS * 86400:
            shutil.rmtree(old, ignore_errors=True)
    partial = cache_dir / f"{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for pattern in _OUTPUTS:
            for path in source.glob(pattern):
                target = partial / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        os.replace(partial, cache_dir / key)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        print(f"image: could not keep the compiled data plane in {cache_dir} ({error.strerror})")
