"""Network namespaces through ``ip``: create, run inside, inspect, delete. Errors say how to fix them.

Only namespaces the lab names are ever touched: every function takes the namespace explicitly and
nothing here matches names by pattern.
"""

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "NETNS_DIR",
    "LabError",
    "apply_commands",
    "delete_namespace",
    "inside",
    "ip",
    "missing_capability",
    "namespace_exists",
    "namespace_inode",
    "namespace_pids",
    "processes_in",
    "run_inside",
    "set_link",
]

NETNS_DIR = Path("/run/netns")
_HINTS = (
    ("Operation not permitted", "are you root? (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)"),
    (
        "File exists",
        "left over from an earlier lab: run `anycastlb lab down` (or `lab up` again, which cleans up)",
    ),
    ("Unknown device type", "the kernel lacks this link type (veth and bridge are required)"),
    ("Cannot open network namespace", "the namespace is gone: run `anycastlb lab up` to rebuild the lab"),
)


class LabError(RuntimeError):
    """A lab step failed; the message says which step, what the tool said, and what to do."""


def _hint(stderr: str) -> str:
    for needle, hint in _HINTS:
        if needle in stderr:
            return f": {hint}"
    return ""


def ip(*args: str, check: bool = True, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; with ``check``, a failure raises :class:`LabError` naming the command."""
    binary = shutil.which("ip")
    if binary is None:
        raise LabError("the `ip` command is missing: apt-get install iproute2")
    done = subprocess.run([binary, *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and done.returncode != 0:
        stderr = done.stderr.strip()
        raise LabError(
            f"ip {' '.join(args)} failed: {stderr or f'exit code {done.returncode}'}{_hint(stderr)}"
        )
    return done


def apply_commands(commands: Sequence[Sequence[str]]) -> None:
    """Run ``ip`` commands in order; the first failure stops and is raised."""
    for command in commands:
        ip(*command)


def inside(namespace: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside ``namespace`` (``ip netns exec`` execs it: same pid)."""
    return ["ip", "netns", "exec", namespace, *argv]


def run_inside(
    namespace: str, argv: Sequence[str], timeout: float = 10.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        inside(namespace, argv), capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and done.returncode != 0:
        raise LabError(
            f"`{' '.join(argv)}` in namespace {namespace} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-500:]}{_hint(done.stderr)}"
        )
    return done


def namespace_exists(namespace: str) -> bool:
    return (NETNS_DIR / namespace).exists()


def namespace_inode(namespace: str) -> int | None:
    """The namespace's identity: processes inside have ``/proc/PID/ns/net`` pointing at this inode."""
    try:
        return (NETNS_DIR / namespace).stat().st_ino
    except OSError:
        return None


def namespace_pids(namespace: str) -> list[int]:
    """Processes inside the namespace (``ip netns pids``); [] if it does not exist."""
    if not namespace_exists(namespace):
        return []
    return [int(pid) for pid in ip("netns", "pids", namespace, check=False).stdout.split()]


def processes_in(inodes: set[int]) -> list[int]:
    """Every process whose network namespace is one of ``inodes`` (also after ``ip netns del``,
    when the namespace has no name any more but lives on while a process holds it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            inode = os.stat(entry / "ns" / "net").st_ino
        except OSError:
            continue  # gone, or a zombie (it holds no namespace)
        if inode in inodes:
            found.append(int(entry.name))
    return found


def delete_namespace(namespace: str) -> None:
    if namespace_exists(namespace):
        ip("netns", "del", namespace)


def set_link(namespace: str, interface: str, *, up: bool) -> None:
    ip("-n", namespace, "link", "set", interface, "up" if up else "down")


def missing_capability() -> str | None:
    """None if the lab can be built here; else which capability is missing and how to get it."""
    if os.geteuid() != 0:
        return "root is required (ip netns add needs CAP_SYS_ADMIN): run as root, e.g. with sudo"
    for tool, package in (
        ("ip", "iproute2"),
        ("bird", "bird2"),
        ("birdc", "bird2"),
        ("nginx", "nginx-light"),
    ):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"`{tool}` is not installed: apt-get install {package} (scripts/setup installs it)"
    probe = f"alb-probe{os.getpid()}"
    try:
        added = ip("netns", "add", probe, check=False)
        if added.returncode != 0:
            return f"ip netns add failed: {added.stderr.strip()}{_hint(added.stderr)}"
        for what, args in (
            ("veth", ["link", "add", "p0", "type", "veth", "peer", "name", "p1"]),
            ("bridge", ["link", "add", "b0", "type", "bridge"]),
        ):
            made = ip("-n", probe, *args, check=False)
            if made.returncode != 0:
                return f"cannot create a {what} link in a namespace: {made.stderr.strip()}"
    finally:
        ip("netns", "del", probe, check=False)
    return None
