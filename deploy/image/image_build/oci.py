"""The runtime root and the venv as an OCI image (umoci), and as a docker-archive (skopeo).

Two layers: Debian (changes with the mirror) and the venv (changes with every commit), so a new
release pulls only the second. Every file's mtime is clamped to SOURCE_DATE_EPOCH, the config and
history carry it as their date, and umoci writes layers in a fixed order: the same inputs make the
same layer digests.
"""

import os
import shutil
from pathlib import Path

from image_build import spec
from image_build.chroot import run

__all__ = ["clamp_mtimes", "finish_runtime_root", "write_docker_archive", "write_oci_layout"]


def finish_runtime_root(root: Path) -> None:
    """The image's user and writable mount points; nothing of the build host left behind."""
    account = spec.Account()
    for name, line in (
        ("passwd", account.passwd),
        ("group", account.group),
        ("shadow", account.shadow),
        ("gshadow", account.gshadow),
    ):
        path = root / "etc" / name
        if line.split(":", 1)[0] + ":" not in path.read_text():
            with path.open("a") as file:
                file.write(line)
    # /etc/anycastlb: where docs/operations.md puts edge.yaml, a mount point for a ConfigMap.
    mine = ((spec.HOME, True), (spec.STATE_DIR, True), (spec.CONFIG_DIR, False))
    for directory, owned in (*mine, (str(Path(spec.VENV).parent), False)):
        path = root / directory.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
        if owned:
            os.chown(path, spec.UID, spec.GID)
    # Runtimes provide /dev, /etc/hostname and /etc/resolv.conf; mmdebstrap copied the host's.
    for entry in (root / "dev").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for name in ("hostname", "resolv.conf"):
        (root / "etc" / name).write_text("")
    for leftover in ("var/lib/apt/lists", "var/cache/apt", "var/cache/debconf", "var/log"):
        for entry in (root / leftover).glob("*"):
            if entry.is_file() or entry.is_symlink():
                entry.unlink()
    (root / "tmp").chmod(0o1777)


def clamp_mtimes(tree: Path, epoch: int) -> None:
    """No file newer than SOURCE_DATE_EPOCH (the reproducible-builds convention)."""
    for directory, dirs, files in os.walk(tree):
        for name in [*dirs, *files, "."]:
            path = os.path.join(directory, name)
            stat = os.lstat(path)
            if stat.st_mtime > epoch:
                os.utime(path, (epoch, epoch), follow_symlinks=False)


def write_oci_layout(layout: Path, tag: str, base: Path, venv: Path, config: spec.ImageConfig) -> None:
    """An OCI image layout at ``layout`` with one tag: Debian's layer, the venv's layer, the config."""
    if layout.exists():
        shutil.rmtree(layout)
    image = f"{layout}:{tag}"
    history = [f"--history.created={config.created}", "--history.author=anycastlb deploy/image/build"]
    run(["umoci", "init", "--layout", str(layout)])
    run(["umoci", "new", "--image", image])
    run(["umoci", "insert", "--image", image, *history, "--history.created_by=mmdebstrap", str(base), "/"])
    by = f"--history.created_by=pip install anycastlb=={config.labels['org.opencontainers.image.version']}"
    run(["umoci", "insert", "--image", image, *history, by, str(venv), spec.VENV])
    run(["umoci", "config", "--image", image, "--no-history", *spec.umoci_config_args(config)])
    run(["umoci", "gc", "--layout", str(layout)])


def write_docker_archive(layout: Path, tag: str, archive: Path, reference: str) -> None:
    """The image as a tarball that ``docker load`` and ``podman load`` take, named ``reference``."""
    if archive.exists():
        archive.unlink()
    run(["skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", f"docker-archive:{archive}:{reference}"])
