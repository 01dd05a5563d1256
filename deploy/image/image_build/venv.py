"""anycastlb and its dependencies as a venv at /opt/anycastlb/venv, made in the build root.

The build root has the compiler; the image never does. In the build root, a build venv holds the
build requirements (setuptools, wheel, Cython) at the versions of ``constraints.txt``; pip builds
anycastlb's wheel there (the data plane compiled against Debian's python3.11) and downloads every
dependency's wheel at its locked version. The image's venv is then made with ``--without-pip`` and
filled from those wheels alone (``--no-index``): no pip, no compiler, no network in it. Its modules
are compiled to .pyc with ``unchecked-hash`` invalidation: reproducible (no timestamps) and never
re-checked, as nothing in an image changes; PYTHONDONTWRITEBYTECODE keeps Python from trying to
write at run time.
"""

import shutil
import subprocess
from pathlib import Path

from image_build import spec
from image_build.chroot import BuildError, run_in_root

__all__ = ["CONSTRAINTS", "build_venv", "copy_sources", "locked_versions"]

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
_BUILD_VENV = "/opt/build-venv"
_WHEELS = "/wheels"
_SOURCE = "/src"
_BUILD_REQUIREMENTS = ("setuptools>=68", "wheel", "cython>=3.0,<4")  # pyproject's [build-system]


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


def build_venv(root: Path, epoch: int, version: str, *, relock: bool) -> None:
    """Wheels, then the image's venv at spec.VENV inside ``root`` (the build root)."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "SOURCE_DATE_EPOCH": str(epoch),  # the wheel's zip timestamps
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_ROOT_USER_ACTION": "ignore",
    }
    constraints = [] if relock else ["--constraint", f"{_SOURCE}/deploy/image/constraints.txt"]
    pip = f"{_BUILD_VENV}/bin/pip"
    run_in_root(root, ["python3", "-m", "venv", _BUILD_VENV], env=env)
    run_in_root(root, [pip, "install", "--quiet", *constraints, *_BUILD_REQUIREMENTS], env=env)
    wheel = [pip, "wheel", "--quiet", "--no-build-isolation", "--wheel-dir", _WHEELS, *constraints, _SOURCE]
    run_in_root(root, wheel, env=env)
    run_in_root(root, ["python3", "-m", "venv", "--without-pip", spec.VENV], env=env)
    install = [pip, "--python", f"{spec.VENV}/bin/python", "install", "--quiet", "--no-index", "--no-compile"]
    install += ["--find-links", _WHEELS, f"anycastlb=={version}"]
    run_in_root(root, install, env=env)
    compileall = [f"{spec.VENV}/bin/python", "-m", "compileall", "-q", "-j0"]
    compileall += ["--invalidation-mode", "unchecked-hash", f"{spec.VENV}/lib"]
    run_in_root(root, compileall, env=env)
    if relock:
        CONSTRAINTS.write_text(_lock_text(root, env))
        print(f"image: wrote {CONSTRAINTS}")


def locked_versions(text: str) -> dict[str, str]:
    """``name==version`` lines of a constraints file, by normalized name."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        if not separator:
            raise BuildError(f"constraints.txt: {line!r} is not NAME==VERSION")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def _lock_text(root: Path, env: dict[str, str]) -> str:
    """The build requirements and every installed dependency at the versions this build used."""
    build = run_in_root(root, [f"{_BUILD_VENV}/bin/pip", "freeze", "--all"], env=env, quiet=True)
    runtime = run_in_root(
        root, [f"{_BUILD_VENV}/bin/pip", "--python", f"{spec.VENV}/bin/python", "freeze"], env=env, quiet=True
    )
    lines = {
        line for line in (build + runtime).splitlines() if "==" in line and not line.startswith("anycastlb==")
    }
    header = (
        "# Every Python package of the image and of its build, at the versions last built with.\n"
        "# Written by `deploy/image/build --relock` (docs/image.md); pip installs nothing else.\n"
    )
    return header + "\n".join(sorted(lines, key=str.lower)) + "\n"
