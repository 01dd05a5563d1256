"""anycastlb and its dependencies as a venv at /opt/anycastlb/venv, made in the build root.

The build root has the compiler; the image never does. ``prepare`` (cached with the build root)
makes a build venv with the build requirements (setuptools, wheel, Cython) and a wheelhouse of
every dependency, all at the versions of ``constraints.txt``. ``build_venv`` (every build) compiles
anycastlb's wheel there against Debian's python3.11, then makes the image's venv with
``--without-pip`` and fills it from the wheelhouse alone (``--no-index``): no pip, no compiler and
no network in it. Its modules are compiled to .pyc with ``unchecked-hash`` invalidation:
reproducible (no timestamps) and never re-checked, as nothing in an image changes;
PYTHONDONTWRITEBYTECODE keeps Python from trying to write at run time.
"""

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from image_build import compiled, spec
from image_build.chroot import BuildError, run_in_root

__all__ = ["CONSTRAINTS", "build_venv", "copy_sources", "lock_text", "locked_versions", "prepare"]

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
BUILD_REQUIREMENTS = ("setuptools>=68", "wheel", "cython>=3.0,<4")  # pyproject's [build-system]
_BUILD_VENV = "/opt/build-venv"
_WHEELS = "/wheels"
_SOURCE = "/src"
_CONSTRAINTS_IN_ROOT = "/etc/anycastlb-build/constraints.txt"
_BUILD_CONFIG = "/etc/anycastlb-build/setup.cfg"
_HOST_CA = "/etc/anycastlb-build/host-ca.crt"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_PIP = f"{_BUILD_VENV}/bin/pip"


def _env(epoch: int) -> dict[str, str]:
    """pip's environment in the build root: the host's proxy variables and CA bundle (copied there
    by ``prepare``), so a host behind a TLS-intercepting proxy reaches the index as its own pip does.
    Neither goes into the image."""
    return {
        **{name: value for name, value in os.environ.items() if name in _PROXY_VARIABLES},
        "PIP_CERT": _HOST_CA,
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "SOURCE_DATE_EPOCH": str(epoch),  # the wheels' zip timestamps
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_ROOT_USER_ACTION": "ignore",
    }


def prepare(root: Path, constraints: str, dependencies: Sequence[str], epoch: int) -> None:
    """The build venv and the wheelhouse, in the build root (the slow, networked part)."""
    etc = root / _HOST_CA.lstrip("/")
    etc.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt", etc)
    (root / _CONSTRAINTS_IN_ROOT.lstrip("/")).write_text(constraints)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    env, pin = _env(epoch), ["--constraint", _CONSTRAINTS_IN_ROOT]
    run_in_root(root, ["python3", "-m", "venv", _BUILD_VENV], env=env)
    run_in_root(root, [_PIP, "install", "--quiet", *pin, *BUILD_REQUIREMENTS], env=env)
    # pip wheel, not pip download: a dependency published only as source is built here, once.
    run_in_root(root, [_PIP, "wheel", "--quiet", "--wheel-dir", _WHEELS, *pin, *dependencies], env=env)


def build_venv(root: Path, epoch: int, version: str, compiled_cache: Path | None, root_key: str) -> None:
    """anycastlb's wheel, then the image's venv at spec.VENV inside ``root`` (the build root).

    ``compiled_cache`` keeps the compiled data plane between builds (compiled.py); ``root_key``
    names the build root, part of that cache's key.
    """
    source = root / _SOURCE.lstrip("/")
    key = compiled.compiled_key(source, root_key)
    compiled.restore(compiled_cache, key, source)
    env, offline = _env(epoch), ["--no-index", "--find-links", _WHEELS]
    # setuptools reads DIST_EXTRA_CONFIG as one more setup.cfg: compile the extensions in parallel.
    (root / _BUILD_CONFIG.lstrip("/")).write_text(f"[build_ext]\nparallel = {os.cpu_count() or 1}\n")
    env["DIST_EXTRA_CONFIG"] = _BUILD_CONFIG
    wheel = [_PIP, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", _WHEELS, _SOURCE]
    run_in_root(root, wheel, env=env)
    compiled.save(compiled_cache, key, source)
    run_in_root(root, ["python3", "-m", "venv", "--without-pip", spec.VENV], env=env)
    install = [_PIP, "--python", f"{spec.VENV}/bin/python", "install", "--quiet", "--no-compile", *offline]
    run_in_root(root, [*install, f"anycastlb=={version}"], env=env)
    compileall = [f"{spec.VENV}/bin/python", "-m", "compileall", "-q", "-j0"]
    compileall += ["--invalidation-mode", "unchecked-hash", f"{spec.VENV}/lib"]
    run_in_root(root, compileall, env=env)


def copy_sources(repository: Path, target: Path) -> None:
    """The files git tracks, as they are in the work tree: no build output, no untracked files."""
    listed = subprocess.run(
        ["git", "-C", str(repository), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = repository / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet committed
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)


def locked_versions(text: str) -> dict[str, str]:
    """``name==version`` lines of a constraints file, by normalized name."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        if not separator:
            raise BuildError(f"constraints.txt: {line!r} is not NAME==VERSION")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def lock_text(root: Path, epoch: int) -> str:
    """constraints.txt for what this build used: the build requirements and every dependency."""
    env = _env(epoch)
    build = run_in_root(root, [_PIP, "freeze", "--all"], env=env, quiet=True)
    runtime = run_in_root(root, [_PIP, "--python", f"{spec.VENV}/bin/python", "freeze"], env=env, quiet=True)
    lines = {
        line for line in (build + runtime).splitlines() if "==" in line and not line.startswith("anycastlb==")
    }
    header = (
        "# Every Python package of the image and of its build, at the versions last built with.\n"
        "# Written by `deploy/image/build --relock` (docs/image.md); pip installs nothing else.\n"
    )
    return header + "\n".join(sorted(lines, key=str.lower)) + "\n"
