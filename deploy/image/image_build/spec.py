"""What the image is, as data: its Debian packages, its user, its OCI config and its cache keys.

Pure, so tests/unit/test_image_spec.py checks it without building anything. The OCI config must
agree with the Helm charts (deploy/helm/*): they run the image as uid/gid 65532 with a read-only
root filesystem and a writable emptyDir at /tmp, and call ``anycastlb`` by name (``command:``),
so the venv's bin directory comes first on PATH and TMPDIR is /tmp.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "BUILD_PACKAGES",
    "CONFIG_DIR",
    "DEBIAN_EPOCH",
    "GID",
    "HOME",
    "IMAGE_REPOSITORY",
    "MIRROR",
    "RUNTIME_PACKAGES",
    "SECURITY_MIRROR",
    "STATE_DIR",
    "SUITE",
    "UID",
    "USER",
    "VENV",
    "Account",
    "ImageConfig",
    "cache_key",
    "debian_sources",
    "image_config",
    "rfc3339",
    "umoci_config_args",
]

IMAGE_REPOSITORY = "anycastlb/anycastlb"  # the charts' image.repository default
SUITE = "bookworm"  # Debian 12: its python3 is 3.11, the version the project targets
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# What the commands run, and nothing more:
# - python3: the interpreter of the venv (the venv holds only anycastlb and its dependencies; ExaBGP
#   is one of them and the edge starts it with the same interpreter).
# - bird2: the edge's BFD sidecar (bgp/bfd_sidecar.py) for peers with ``bfd: true``.
# - ca-certificates: https:// to the control plane, and the controller to a Kubernetes API whose
#   CA is not the service account's.
# - iproute2, wireguard-tools, wireguard-go: the WireGuard tunnels (anycastlb/tunnel/) of an edge
#   with ``tunnels`` and of `anycastlb tunnel-agent` on nodes: `ip` creates the interface and sets
#   its address, `wg` configures it, wireguard-go is the interface where the kernel lacks WireGuard.
#   (The edge still never touches the VIPs: the host puts them on lo.)
# - nftables: the edge's guard on its tunnel interfaces (tunnel/guard.py): without `nft` an edge
#   brings no tunnel up.
RUNTIME_PACKAGES = (
    "python3",
    "bird2",
    "ca-certificates",
    "iproute2",
    "wireguard-tools",
    "wireguard-go",
    "nftables",
)
# Only in the build chroot, never in the image: the compiled data plane (setup.py) and pip.
BUILD_PACKAGES = ("gcc", "libc6-dev", "python3-dev", "python3-pip", "python3-venv")
# Paths of documentation, manual pages and translations that dpkg leaves out of both roots.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
DPKG_INCLUDES = ("/usr/share/doc/*/copyright",)  # the licences stay

# The charts' podSecurityContext (runAsUser/runAsGroup/fsGroup 65532; the distroless "nonroot" uid).
# SOURCE_DATE_EPOCH of the Debian roots, fixed rather than the commit's time so that a new commit
# reuses the cached roots; the image clamps every mtime to the commit's time later anyway.
DEBIAN_EPOCH = 1735689600  # 2025-01-01T00:00:00Z

UID = GID = 65532
USER = "anycastlb"
HOME = f"/home/{USER}"
VENV = "/opt/anycastlb/venv"
STATE_DIR = "/var/lib/anycastlb"  # the edge's default --state-dir parent (edge/state_store.py)
CONFIG_DIR = "/etc/anycastlb"  # edge.yaml / base.yaml (docs/operations.md), mounted from outside


@dataclass(frozen=True)
class Account:
    """The image's one user, as lines for /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow.

    Written directly rather than with useradd, which stamps today's date into /etc/shadow and so
    would make two builds of one commit differ.
    """

    passwd: str = f"{USER}:x:{UID}:{GID}:anycastlb:{HOME}:/usr/sbin/nologin\n"
    group: str = f"{USER}:x:{GID}:\n"
    shadow: str = f"{USER}:!:::::::\n"
    gshadow: str = f"{USER}:!::\n"


@dataclass(frozen=True)
class ImageConfig:
    """The OCI image config fields this build sets (the rest are umoci's defaults)."""

    user: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    volumes: tuple[str, ...]
    labels: dict[str, str]
    created: str
    stop_signal: str


def rfc3339(epoch: int) -> str:
    """SOURCE_DATE_EPOCH as the timestamp OCI configs and history entries carry."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(version: str, epoch: int, revision: str, debian: str) -> ImageConfig:
    """The image's config: non-root, read-only-root friendly, ``anycastlb`` as the entrypoint.

    - PYTHONDONTWRITEBYTECODE: the venv is compiled at build time (unchecked-hash .pyc files); at
      run time nothing may write beside the sources, the root filesystem being read-only.
    - TMPDIR=/tmp: the edge's private directories (metrics, ExaBGP and BIRD sockets) go there; the
      charts mount an emptyDir on it, and /tmp is declared a volume for ``docker run --read-only``.
    - /var/lib/anycastlb is a volume too: ``edge --control`` keeps its last-known-good state there.
    - SIGTERM stops gracefully: the edge withdraws then drains, the servers finish requests.
    """
    created = rfc3339(epoch)
    return ImageConfig(
        user=f"{UID}:{GID}",
        entrypoint=(f"{VENV}/bin/anycastlb",),
        cmd=("--help",),
        env=(
            f"PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"VIRTUAL_ENV={VENV}",
            f"HOME={HOME}",
            "TMPDIR=/tmp",
            "LANG=C.UTF-8",
            "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1",
        ),
        workdir=HOME,
        volumes=("/tmp", STATE_DIR),
        labels={
            "org.opencontainers.image.title": "anycastlb",
            "org.opencontainers.image.description": (
                "Anycast L4 load balancer for Kubernetes ingress: anycastlb edge | control | controller"
            ),
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.licenses": "Apache-2.0",
            "org.opencontainers.image.base.name": f"debian:{debian}",
        },
        created=created,
        stop_signal="SIGTERM",
    )


def umoci_config_args(config: ImageConfig) -> list[str]:
    """``umoci config`` options that set ``config`` (after ``--clear`` of the lists it appends to)."""
    args = [
        "--clear=config.labels",
        "--clear=config.env",
        "--clear=config.entrypoint",
        "--clear=config.cmd",
        "--clear=config.volume",
        f"--config.user={config.user}",
        f"--config.workingdir={config.workdir}",
        f"--config.stopsignal={config.stop_signal}",
        f"--created={config.created}",
        "--os=linux",
        "--architecture=amd64",
    ]
    args += [f"--config.entrypoint={part}" for part in config.entrypoint]
    args += [f"--config.cmd={part}" for part in config.cmd]
    args += [f"--config.env={item}" for item in config.env]
    args += [f"--config.volume={path}" for path in config.volumes]
    args += [f"--config.label={key}={value}" for key, value in sorted(config.labels.items())]
    return args


def debian_sources(mirror: str, security_mirror: str, suite: str) -> list[str]:
    """The apt sources of both roots: the release, its updates and its security updates."""
    return [
        f"deb {mirror} {suite} main",
        f"deb {mirror} {suite}-updates main",
        f"deb {security_mirror} {suite}-security main",
    ]


def cache_key(kind: str, *parts: object) -> str:
    """A cached root's file name: what it was made from, hashed (suite, sources, packages...).

    A different mirror (a snapshot.debian.org URL), package list or lock is a different root;
    the same inputs reuse one, however old: ``--no-cache`` (or deleting the cache) refreshes it.
    """
    digest = hashlib.sha256(json.dumps([kind, *parts], sort_keys=True, default=str).encode())
    return f"{kind}-{digest.hexdigest()[:16]}.tar"
