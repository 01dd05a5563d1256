"""Commands inside a root directory, in a private mount namespace that dies with them.

``unshare --mount --fork --kill-child`` gives each command its own copy of the mount table: the
/proc (and, for an unpacked image, /dev) mounted for it vanish when it exits, however it exits,
so no build or test can leave a mount behind on the host. ``--kill-child`` takes the command down
if unshare itself is killed.
"""

import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["BuildError", "chroot_command", "run", "run_in_root"]


class BuildError(RuntimeError):
    """A build step failed; the message holds the command and the end of its output."""


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, quiet: bool = False) -> str:
    """Run a command on the host; its output is returned, and shown with the command if it fails."""
    print(f"image: $ {shlex.join(argv)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(
        list(argv), env=None if env is None else dict(env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BuildError(
            f"{shlex.join(argv)} exited with {done.returncode}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )
    if not quiet and done.stderr.strip():
        print(done.stderr.rstrip()[-2000:], file=sys.stderr, flush=True)
    print(f"image:   ({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)
    return done.stdout


def chroot_command(
    root: Path,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    user: str | None = None,
    workdir: str = "/",
    bind_dev: bool = False,
    read_only: bool = False,
    tmpfs: Sequence[str] = (),
    binds: Mapping[str, str] | None = None,
) -> list[str]:
    """The host command that runs ``argv`` in ``root`` (as ``user``, UID:GID) with exactly ``env``.

    ``read_only`` mounts the root read-only (a bind of itself, remounted), as a container runtime
    does for ``readOnlyRootFilesystem``; ``tmpfs`` paths and ``binds`` (host path -> path in the
    root) stay writable. All of it happens in the command's own mount namespace.
    """
    target = "$ROOT"
    steps = ["set -e"]
    if read_only:
        steps += [f'mount --bind "{target}" "{target}"', f'mount -o remount,bind,ro "{target}"']
    steps.append(f'mount -t proc proc "{target}/proc"')
    if bind_dev:
        steps += [f'mount --rbind /dev "{target}/dev"']
    for path in tmpfs:
        steps.append(f'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "{target}{path}"')
    for host, inside in (binds or {}).items():
        steps.append(f'mount --bind {shlex.quote(host)} "{target}{inside}"')
    chroot = ["chroot"]
    if user is not None:
        chroot.append(f"--userspec={user}")
        chroot.append("--groups=")  # no supplementary groups, as with runAsUser/runAsGroup
    inner = [*chroot, '"$ROOT"', "env", "-i", f"--chdir={shlex.quote(workdir)}"]
    inner += [shlex.quote(f"{key}={value}") for key, value in env.items()]
    inner += [shlex.quote(part) for part in argv]
    steps.append("exec " + " ".join(inner))
    script = "; ".join(steps)
    return ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child", "--", "env",
            f"ROOT={root}", "sh", "-c", script]  # fmt: skip


def run_in_root(root: Path, argv: Sequence[str], *, env: Mapping[str, str], quiet: bool = False) -> str:
    """Run a build step in ``root`` as root (network allowed: pip and apt fetch from there)."""
    return run(chroot_command(root, argv, env=env), quiet=quiet)
