"""The real peers the suite runs against, found once per process, and one rule for a test that
needs a missing one: it is skipped with a reason naming exactly what is missing and how to get it,
and under ``CI=true`` it fails instead (CI runs as root after scripts/setup installed every peer,
so a missing one there is a broken setup, never a reason to skip). tests/conftest.py lists every
peer, found or missing, at the end of each run.
"""

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.postgres import postgres_binaries

__all__ = [
    "ACME",
    "BIRD",
    "EXABGP",
    "HAPROXY",
    "NETNS",
    "NGINX",
    "PEBBLE",
    "POSTGRESQL",
    "WIREGUARD",
    "Peer",
    "absent",
    "in_ci",
    "require",
    "survey",
]

NGINX, POSTGRESQL, BIRD, EXABGP, HAPROXY = "nginx", "PostgreSQL", "BIRD", "ExaBGP", "HAProxy"
NETNS = "root + network namespaces"
PEBBLE, ACME = "pebble", "acme (certbot's ACME library)"
WIREGUARD = "WireGuard (wg, wireguard-go, nft, /dev/net/tun)"


@dataclass(frozen=True)
class Peer:
    name: str
    needed_by: str
    found: str | None  # where it was found
    missing: str | None  # None: found; else what is missing and how to get it


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def _program(*names: str, package: str) -> tuple[str | None, str | None]:
    for name in names:
        path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if path is None:
            return None, f"`{name}` is not installed: apt-get install {package} (scripts/setup installs it)"
    return shutil.which(names[0]) or f"/usr/sbin/{names[0]}", None


def _postgresql() -> tuple[str | None, str | None]:
    binaries = postgres_binaries()
    if binaries is None:
        return (
            None,
            "no /usr/lib/postgresql/*/bin/initdb: apt-get install postgresql (scripts/setup installs it)",
        )
    return str(binaries), None


def _exabgp() -> tuple[str | None, str | None]:
    spec = importlib.util.find_spec("exabgp")
    if spec is None:
        return None, "the exabgp package is not importable: pip install exabgp==5.0.15 (a dependency)"
    return str(spec.origin), None


def _acme() -> tuple[str | None, str | None]:
    spec = importlib.util.find_spec("acme")
    if spec is None:
        return None, "the acme package is not importable: pip install -e .[dev] (a dev dependency)"
    return str(spec.origin), None


def _wireguard() -> tuple[str | None, str | None]:
    for name, package in (("wg", "wireguard-tools"), ("wireguard-go", "wireguard-go"), ("nft", "nftables")):
        missing = _program(name, package=package)[1]
        if missing is not None:
            return None, missing
    if not Path("/dev/net/tun").exists():
        return None, "/dev/net/tun is missing (wireguard-go needs it): modprobe tun"
    return "wg, wireguard-go, nft; /dev/net/tun", None


def _netns() -> tuple[str | None, str | None]:
    if os.geteuid() != 0:
        return None, "not root: `ip netns add` needs CAP_SYS_ADMIN (run as root, e.g. with sudo)"
    if shutil.which("ip") is None:
        return None, "`ip` is not installed: apt-get install iproute2 (scripts/setup installs it)"
    probe = f"alb-peers{os.getpid()}"
    added = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if added.returncode != 0:
        return None, f"`ip netns add` failed: {added.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return "uid 0, ip netns add works", None


@cache
def survey() -> tuple[Peer, ...]:
    """Every real peer, looked for once per process."""
    found = [
        (NGINX, "the integration tests' backends", _program("nginx", package="nginx-light")),
        (POSTGRESQL, "the control plane's store tests", _postgresql()),
        (BIRD, "the BGP e2e tests (router), test_lab_bird", _program("bird", "birdc", package="bird2")),
        (EXABGP, "the BGP e2e tests (the edge's speaker)", _exabgp()),
        (NETNS, "the e2e tests and test_fast_open", _netns()),
        (HAPROXY, "bench/ only (no test)", _program("haproxy", package="haproxy")),
        (PEBBLE, "the ACME e2e test (the ACME server)", _program("pebble", package="pebble")),
        (ACME, "the ACME e2e test (the ACME client)", _acme()),
        (WIREGUARD, "the tunnel and provider-migration e2e tests", _wireguard()),
    ]
    return tuple(Peer(name, needed_by, where, missing) for name, needed_by, (where, missing) in found)


def absent(why: str) -> NoReturn:
    """Skip the test (or module) saying why; under CI=true, fail it."""
    if in_ci():
        pytest.fail(f"{why} (CI=true: every peer must be here; scripts/setup installs them)", pytrace=False)
    pytest.skip(why, allow_module_level=True)


def require(*names: str) -> None:
    """Return if every named peer is here, else :func:`absent` naming each missing one."""
    peers = {peer.name: peer for peer in survey()}
    missing = [f"{name}: {peers[name].missing}" for name in names if peers[name].missing is not None]
    if missing:
        absent("; ".join(missing))
