"""The two Debian roots: the image's (runtime packages) and the build chroot's (plus a compiler).

mmdebstrap, not debootstrap: it resolves with apt, downloads in parallel and, given
SOURCE_DATE_EPOCH and the same mirror state (a snapshot.debian.org URL), writes a bit-identical
tarball. The build root is the runtime tarball plus ``apt-get install`` of the build packages, so
both carry the same python3.11 (the venv made in one runs on the other's interpreter); it also
holds a build venv and the wheels of every dependency (venv.prepare), so a build with a warm cache
needs no network.

Each tarball is cached under ``cache_dir`` by what it was made from (spec.cache_key: the build
root's key includes constraints.txt and pyproject's dependencies); a missing
cache directory is created, an unwritable one or ``--no-cache`` means every build starts cold.
"""

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from image_build import spec, venv
from image_build.chroot import BuildError, run, run_in_root

__all__ = ["DebianInputs", "PythonInputs", "build_root_tar", "extract", "python_version", "runtime_root_tar"]

_TAR = ("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*")  # owners, modes, capabilities
_APT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LANG": "C.UTF-8",
}


@dataclass(frozen=True)
class PythonInputs:
    """What the build root's wheelhouse is made from: the pins and pyproject's dependencies."""

    constraints: str
    dependencies: tuple[str, ...]


@dataclass(frozen=True)
class DebianInputs:
    """Everything a root is made from: the cache key is a hash of it."""

    suite: str
    sources: tuple[str, ...]
    epoch: int = spec.DEBIAN_EPOCH


_UNUSED_DAYS = 14  # a cached root nobody used for this long is deleted


def _cached(cache_dir: Path | None, name: str, work: Path) -> tuple[Path, bool]:
    """Where the tarball ``name`` lives, and whether it is already there.

    A hit is touched; roots of the same kind untouched for two weeks (older package lists and
    locks) are deleted, so the cache holds what the branches being built use and little more.
    """
    if cache_dir is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            path = cache_dir / name
            kind = name.split("-", 1)[0]
            for old in cache_dir.glob(f"{kind}-*.tar"):
                if old != path and time.time() - old.stat().st_mtime > _UNUSED_DAYS * 86400:
                    old.unlink()
            hit = path.exists()
            if hit:
                os.utime(path)
        except OSError as error:
            print(f"image: cache {cache_dir} unusable ({error.strerror}); building cold")
        else:
            return path, hit
    return work / name, False


def _publish(partial: Path, final: Path) -> None:
    """Rename into the cache at the end, so a build that fails half way caches nothing."""
    os.replace(partial, final)


def runtime_root_tar(inputs: DebianInputs, cache_dir: Path | None, work: Path) -> Path:
    """mmdebstrap's tarball of the image's packages (minbase variant: no init, no apt recommends)."""
    packages = spec.RUNTIME_PACKAGES
    name = spec.cache_key("runtime", inputs.suite, inputs.sources, packages, inputs.epoch)
    path, hit = _cached(cache_dir, name, work)
    if hit:
        print(f"image: runtime root from the cache: {path}")
        return path
    started = time.monotonic()
    partial = path.with_suffix(".partial.tar")
    options = [f"--dpkgopt=path-exclude={pattern}" for pattern in spec.DPKG_EXCLUDES]
    options += [f"--dpkgopt=path-include={pattern}" for pattern in spec.DPKG_INCLUDES]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(inputs.epoch)}
    argv = ["mmdebstrap", "--quiet", "--mode=root", "--variant=minbase", f"--include={','.join(packages)}"]
    run([*argv, *options, inputs.suite, str(partial), *inputs.sources], env=env)
    _publish(partial, path)
    print(f"image: runtime root made in {time.monotonic() - started:.0f} s")
    return path


def build_root_tar(
    inputs: DebianInputs,
    runtime_tar: Path,
    python: PythonInputs,
    cache_dir: Path | None,
    work: Path,
) -> Path:
    """The runtime root plus a compiler, a build venv and the dependencies' wheels, as a tarball."""
    key_parts = (inputs.suite, inputs.sources, spec.RUNTIME_PACKAGES, spec.BUILD_PACKAGES, inputs.epoch)
    name = spec.cache_key("build", *key_parts, python.constraints, python.dependencies)
    path, hit = _cached(cache_dir, name, work)
    if hit:
        print(f"image: build root from the cache: {path}")
        return path
    started = time.monotonic()
    root = work / "build-root-base"
    extract(runtime_tar, root)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    run_in_root(root, ["apt-get", "update", "-qq"], env=_APT_ENV, quiet=True)
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *spec.BUILD_PACKAGES]
    run_in_root(root, install, env=_APT_ENV, quiet=True)
    run_in_root(root, ["apt-get", "clean"], env=_APT_ENV)
    venv.prepare(root, python.constraints, python.dependencies, inputs.epoch)
    partial = path.with_suffix(".partial.tar")
    run([*_TAR, "-C", str(root), "-cf", str(partial), "."])
    shutil.rmtree(root)
    _publish(partial, path)
    print(f"image: build root made in {time.monotonic() - started:.0f} s")
    return path


def extract(tar: Path, root: Path) -> None:
    """Unpack a root tarball as root: owners, modes, device nodes and capabilities kept."""
    root.mkdir(parents=True)
    run([*_TAR, "-C", str(root), "-xpf", str(tar)])


def python_version(root: Path) -> str:
    """The Debian version of python3.11 in a root (dpkg's status file, read without chrooting)."""
    text = (root / "var/lib/dpkg/status").read_text()
    for stanza in text.split("\n\n"):
        if stanza.startswith("Package: python3.11\n"):
            for line in stanza.splitlines():
                if line.startswith("Version: "):
                    return line.removeprefix("Version: ")
    raise BuildError(f"{root} has no python3.11 package")
