"""``deploy/image/build``: the anycastlb image, from this repository, as root.

Writes ``OUT/oci`` (an OCI image layout tagged with the version) and
``OUT/anycastlb-VERSION.docker.tar`` (``docker load``/``podman load``), named
anycastlb/anycastlb:VERSION as the Helm charts expect. docs/image.md says how to load and push it.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from image_build import oci, roots, spec, venv
from image_build.chroot import BuildError

__all__ = ["BuildOptions", "BuiltImage", "build", "main"]

REPOSITORY = Path(__file__).resolve().parents[3]
DEFAULT_CACHE = Path("/var/cache/anycastlb-image")


@dataclass(frozen=True)
class BuildOptions:
    """What ``deploy/image/build`` was asked for."""

    out: Path = REPOSITORY / "build" / "image"
    cache_dir: Path | None = DEFAULT_CACHE
    mirror: str = spec.MIRROR
    security_mirror: str = spec.SECURITY_MIRROR
    relock: bool = False


@dataclass(frozen=True)
class BuiltImage:
    """Where the build put the image, and its name."""

    layout: Path
    tag: str
    archive: Path
    reference: str
    seconds: float


def project_version(repository: Path) -> str:
    """pyproject.toml's version: the image tag, and the charts' appVersion."""
    with (repository / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


def project_dependencies(repository: Path) -> tuple[str, ...]:
    """pyproject.toml's run-time dependencies (not the dev extra): what the wheelhouse holds."""
    with (repository / "pyproject.toml").open("rb") as file:
        dependencies: list[str] = tomllib.load(file)["project"]["dependencies"]
    return tuple(dependencies)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set, else the time of the last commit: the same for every build of it."""
    given = os.environ.get("SOURCE_DATE_EPOCH")
    return int(given) if given else int(_git("log", "-1", "--format=%ct"))


def revision() -> str:
    """The commit, with ``-dirty`` when tracked files differ from it (they are what is built)."""
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return _git("rev-parse", "HEAD") + ("-dirty" if dirty else "")


def build(options: BuildOptions) -> BuiltImage:
    """Make the image; every temporary directory is removed, failed or not."""
    if os.geteuid() != 0:
        raise BuildError("deploy/image/build runs as root (mmdebstrap, chroot, file owners)")
    for tool in ("mmdebstrap", "umoci", "skopeo", "unshare", "git"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is missing: apt-get install mmdebstrap umoci skopeo (docs/image.md)")
    started = time.monotonic()
    version, epoch = project_version(REPOSITORY), source_date_epoch()
    sources = spec.debian_sources(options.mirror, options.security_mirror, spec.SUITE)
    inputs = roots.DebianInputs(spec.SUITE, tuple(sources))
    options.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="anycastlb-image-", dir="/var/tmp"))
    try:
        runtime_tar = roots.runtime_root_tar(inputs, options.cache_dir, work)
        # --relock: no pins, the newest of everything, and nothing of it cached.
        constraints = "" if options.relock else venv.CONSTRAINTS.read_text()
        python = roots.PythonInputs(constraints, project_dependencies(REPOSITORY))
        build_cache = None if options.relock else options.cache_dir
        build_tar = roots.build_root_tar(inputs, runtime_tar, python, build_cache, work)
        runtime, builder = work / "runtime", work / "build"
        roots.extract(runtime_tar, runtime)
        roots.extract(build_tar, builder)
        if roots.python_version(runtime) != roots.python_version(builder):
            raise BuildError(
                f"python3.11 differs between the cached roots ({roots.python_version(runtime)} vs "
                f"{roots.python_version(builder)}): the mirror moved on; rebuild with --no-cache"
            )
        venv.copy_sources(REPOSITORY, builder / "src")
        compiled_cache = None if options.relock else options.cache_dir
        venv.build_venv(builder, epoch, version, compiled_cache, build_tar.name)
        if options.relock:
            venv.CONSTRAINTS.write_text(venv.lock_text(builder, epoch))
            print(f"image: wrote {venv.CONSTRAINTS}")
        oci.finish_runtime_root(runtime)
        built_venv = builder / spec.VENV.lstrip("/")
        oci.clamp_mtimes(runtime, epoch)
        oci.clamp_mtimes(built_venv, epoch)
        config = spec.image_config(version, epoch, revision(), spec.SUITE)
        layout = options.out / "oci"
        oci.write_oci_layout(layout, version, runtime, built_venv, config)
        reference = f"{spec.IMAGE_REPOSITORY}:{version}"
        archive = options.out / f"anycastlb-{version}.docker.tar"
        oci.write_docker_archive(layout, version, archive, reference)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BuiltImage(layout, version, archive, reference, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/image/build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BuildOptions.out, help="default: build/image")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default: {DEFAULT_CACHE}")
    parser.add_argument("--no-cache", action="store_true", help="make the Debian roots afresh")
    parser.add_argument("--mirror", default=spec.MIRROR, help="e.g. a snapshot.debian.org URL")
    parser.add_argument("--security-mirror", default=spec.SECURITY_MIRROR)
    parser.add_argument(
        "--relock", action="store_true", help="newest Python packages; rewrite constraints.txt"
    )
    args = parser.parse_args(argv)
    options = BuildOptions(
        out=args.out.resolve(),
        cache_dir=None if args.no_cache else args.cache_dir,
        mirror=args.mirror,
        security_mirror=args.security_mirror,
        relock=args.relock,
    )
    try:
        image = build(options)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    size = image.archive.stat().st_size / 2**20
    print(f"image: {image.reference} in {image.seconds:.0f} s")
    print(f"  OCI layout:     {image.layout}:{image.tag}")
    print(f"  docker-archive: {image.archive} ({size:.0f} MiB): docker load -i {image.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
