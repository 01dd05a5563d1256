"""Free loopback ports and readiness waits for the servers the demo and the tests start."""

import os
import socket
import subprocess
import time

# Ports this process has handed out: bind(0) may offer one again before its server has bound it.
_handed_out: set[int] = set()


def _shard() -> tuple[int, int]:
    """``ANYCASTLB_PORT_SHARD=k/n`` (the test suite sets it per pytest-xdist worker): only ports
    whose ``(port // 2) % n == k`` are handed out, so concurrent workers never race for the same
    free port between ``free_port()`` and their server's ``bind()``. ``// 2``: Linux gives ``bind``
    odd ports and outgoing connections even ones, so ``port % n`` would leave some shards nothing."""
    text = os.environ.get("ANYCASTLB_PORT_SHARD", "")
    if not text:
        return 0, 1
    index, _, count = text.partition("/")
    try:
        k, n = int(index), int(count)
    except ValueError:
        raise ValueError(f"ANYCASTLB_PORT_SHARD={text!r}: expected k/n, e.g. 0/2") from None
    if not 0 <= k < n:
        raise ValueError(f"ANYCASTLB_PORT_SHARD={text!r}: expected 0 <= k < n")
    return k, n


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (both on IPv4 and IPv6 loopback when possible),
    never one this process handed out before, and within this process's shard (see ``_shard``)."""
    shard, shards = _shard()
    for _ in range(50 * shards):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port: int = probe.getsockname()[1]
        if port in _handed_out or (port // 2) % shards != shard:
            continue
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe6:
                probe6.bind(("::1", port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found on loopback")


def wait_for_port(
    host: str, port: int, timeout: float = 10.0, alive: "subprocess.Popen[bytes] | None" = None
) -> None:
    """Block until something accepts TCP connections on host:port (a readiness wait, not a sleep).

    With ``alive``, give up as soon as that process has exited instead of waiting out the timeout.
    """
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        if alive is not None and alive.poll() is not None:
            raise TimeoutError(f"the process meant to listen on {host}:{port} exited with {alive.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
        time.sleep(0.02)
