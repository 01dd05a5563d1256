"""Free loopback ports and readiness waits for the servers the demo and the tests start."""

import socket
import subprocess
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (both on IPv4 and IPv6 loopback when possible)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port: int = probe.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe6:
                probe6.bind(("::1", port))
        except OSError:
            continue
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
