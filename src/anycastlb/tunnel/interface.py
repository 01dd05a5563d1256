"""One WireGuard interface on this host: in the kernel where it has WireGuard, else wireguard-go.

Creation tries ``ip link add NAME type wireguard`` first; a kernel without the module answers
"Unknown device type" and the interface is made by ``wireguard-go`` instead, a child process run
in the foreground (``WG_PROCESS_FOREGROUND=1``) so its owner can see it die and start it again. It
gets ``PR_SET_PDEATHSIG``: if its owner is killed, it goes too and takes the interface with it,
rather than keeping a tunnel nobody manages. Either way the rest is the same: ``wg setconf`` (first
time) or ``wg syncconf`` (changes: unchanged peers keep their sessions) with the config on stdin,
then ``ip addr``, ``ip link set mtu .. up``.

wireguard-go's control socket is ``/var/run/wireguard/NAME.sock``, one directory for the whole
host: interface names must be unique on a host even across network namespaces.
"""

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from anycastlb.model.tunnel import TunnelInterface
from anycastlb.tunnel.plan import InterfaceChange
from anycastlb.tunnel.wg_conf import render_conf

__all__ = ["SOCKET_DIR", "TunnelDevice", "TunnelError", "tool"]

log = logging.getLogger("anycastlb.tunnel")

SOCKET_DIR = Path("/var/run/wireguard")
TUN_DEVICE = Path("/dev/net/tun")
_PACKAGES = {"ip": "iproute2", "wg": "wireguard-tools", "wireguard-go": "wireguard-go", "nft": "nftables"}
_NO_KERNEL_MODULE = ("Unknown device type", "Not supported", "Operation not supported")
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1


class TunnelError(RuntimeError):
    """A tunnel step failed; the message names the interface, the command and what to do."""


def tool(name: str) -> str:
    """The path of ``ip``, ``wg``, ``wireguard-go`` or ``nft``, or a TunnelError naming the package."""
    found = shutil.which(name) or next(
        (str(path) for d in ("/usr/sbin", "/usr/bin") if (path := Path(d) / name).exists()), None
    )
    if found is None:
        raise TunnelError(f"`{name}` is not installed: apt-get install {_PACKAGES[name]}")
    return found


def _run(name: str, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool; a failure raises naming the interface and the command (never ``stdin``: a key)."""
    done = subprocess.run(
        [tool(argv[0]), *argv[1:]], input=stdin, capture_output=True, text=True, check=False, timeout=10
    )
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        raise TunnelError(f"tunnel {name}: `{' '.join(argv)}` failed: {said}")
    return done


def _die_with_parent() -> None:
    """In wireguard-go's child, before exec: SIGTERM it when the process that started it dies.

    Strictly, when the *thread* that forked it ends: both owners (the edge's tunnels helper, the
    agent) start it from their main thread, which lives as long as they do."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _relay_output(name: str, stream: IO[bytes]) -> None:
    """wireguard-go's own lines, as our log events (one per line, in the edge's format, JSON too)
    rather than raw text in the middle of a structured log. Runs in a thread until EOF."""
    with stream:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            level = logging.ERROR if line.startswith("ERROR") else logging.INFO
            log.log(level, "wireguard_go_said interface=%s line=%r", name, line)


def _link_exists(name: str) -> bool:
    return (
        subprocess.run([tool("ip"), "link", "show", "dev", name], capture_output=True, check=False).returncode
        == 0
    )


class TunnelDevice:
    """One interface, brought up from a :class:`TunnelInterface` and kept in step with it."""

    def __init__(self, interface: TunnelInterface) -> None:
        self.interface = interface  # what runs (after up/change succeeded)
        self.process: subprocess.Popen[bytes] | None = None  # wireguard-go; None in the kernel

    @property
    def name(self) -> str:
        return self.interface.name

    @property
    def mode(self) -> str:
        return "kernel" if self.process is None else "userspace"

    def up(self) -> None:
        """Create the interface and configure all of it; on failure nothing of it is left."""
        try:
            self._create()
            _run(self.name, ["wg", "setconf", self.name, "/dev/stdin"], stdin=render_conf(self.interface))
            for address in self.interface.addresses:
                _run(self.name, ["ip", "address", "replace", str(address), "dev", self.name])
            _run(self.name, ["ip", "link", "set", "dev", self.name, "mtu", str(self.interface.mtu), "up"])
        except BaseException:
            self.down()
            raise
        log.info(
            "tunnel_up interface=%s mode=%s peers=%d addresses=%s mtu=%d",
            self.name,
            self.mode,
            len(self.interface.peers),
            ",".join(str(address) for address in self.interface.addresses),
            self.interface.mtu,
        )

    def change(self, change: InterfaceChange) -> None:
        """Apply a planned change in place: the interface and unchanged peers' sessions stay."""
        wanted = change.interface
        if change.wireguard:
            _run(self.name, ["wg", "syncconf", self.name, "/dev/stdin"], stdin=render_conf(wanted))
        for address in change.add_addresses:
            _run(self.name, ["ip", "address", "replace", address, "dev", self.name])
        for address in change.remove_addresses:
            _run(self.name, ["ip", "address", "del", address, "dev", self.name])
        if change.mtu:
            _run(self.name, ["ip", "link", "set", "dev", self.name, "mtu", str(wanted.mtu)])
        self.interface = wanted
        log.info(
            "tunnel_changed interface=%s peers=%d wireguard=%s addresses=+%d-%d mtu=%d",
            self.name,
            len(wanted.peers),
            change.wireguard,
            len(change.add_addresses),
            len(change.remove_addresses),
            wanted.mtu,
        )

    def exited(self) -> int | None:
        """wireguard-go's exit code if it died (the interface went with it); None while it runs."""
        return None if self.process is None else self.process.poll()

    def down(self) -> None:
        """Remove the interface (and stop wireguard-go); a missing interface is not an error."""
        if _link_exists(self.name):
            subprocess.run([tool("ip"), "link", "del", "dev", self.name], capture_output=True, check=False)
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()  # deleting the tun already makes it exit; this is the fallback
                try:
                    process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            (SOCKET_DIR / f"{self.name}.sock").unlink(missing_ok=True)

    def _create(self) -> None:
        if _link_exists(self.name):
            # left by an owner that died (SIGKILL, a crash): ours by name, so start from scratch
            log.warning("tunnel_stale_removed interface=%s", self.name)
            _run(self.name, ["ip", "link", "del", "dev", self.name])
        kernel = subprocess.run(
            [tool("ip"), "link", "add", "dev", self.name, "type", "wireguard"],
            capture_output=True,
            text=True,
            check=False,
        )
        if kernel.returncode == 0:
            return
        if not any(text in kernel.stderr for text in _NO_KERNEL_MODULE):
            raise TunnelError(
                f"tunnel {self.name}: `ip link add type wireguard` failed: {kernel.stderr.strip()}"
            )
        self._start_userspace()

    def _start_userspace(self) -> None:
        binary = tool("wireguard-go")
        tool("wg")  # fail now, before a process is started, if the configuring half is missing
        if not TUN_DEVICE.exists():
            raise TunnelError(
                f"tunnel {self.name}: the kernel has no WireGuard module and {TUN_DEVICE} is missing, "
                "which wireguard-go needs: `modprobe tun`, or in a container add the device "
                "(--device /dev/net/tun; Kubernetes: a hostPath volume) and the NET_ADMIN capability"
            )
        (SOCKET_DIR / f"{self.name}.sock").unlink(missing_ok=True)  # a dead process's socket
        self.process = subprocess.Popen(
            [binary, self.name],
            env={**os.environ, "WG_PROCESS_FOREGROUND": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no Python state touched
        )
        assert self.process.stdout is not None  # noqa: S101 - PIPE was asked for
        threading.Thread(
            target=_relay_output, args=(self.name, self.process.stdout), name=f"wg-{self.name}", daemon=True
        ).start()
        deadline = time.monotonic() + _READY_TIMEOUT
        while not ((SOCKET_DIR / f"{self.name}.sock").exists() and _link_exists(self.name)):
            if (code := self.process.poll()) is not None:
                raise TunnelError(
                    f"tunnel {self.name}: wireguard-go exited with {code} while creating the interface "
                    "(its own message: the wireguard_go_said events just above); is NET_ADMIN granted?"
                )
            if time.monotonic() > deadline:
                raise TunnelError(
                    f"tunnel {self.name}: wireguard-go did not create it in {_READY_TIMEOUT:.0f}s"
                )
            time.sleep(0.01)
