"""The failover benchmark's nodes (lab nginx, PROXY protocol) and the faults done to them.

A node is the lab's :class:`~anycastlb.lab.nginx.NginxBackend` (``master_process off``: its pid is
the server, so a signal to it is a fault of the server itself), started as a harness child so that
it leads its own session, gets SIGTERM if the benchmark dies, and is stopped on every exit.

Fault kinds, injected at t0 and undone after the measurement:

- ``kill``: SIGKILL; restored by starting nginx again on the same port.
- ``hang``: SIGSTOP (the kernel still completes handshakes into the backlog, nobody answers);
  restored by SIGCONT.
- ``close``: SIGQUIT, nginx's graceful stop (closes its listening socket, finishes open requests,
  exits); restored by starting it again.
- ``flap``: SIGKILL, restart 300 ms later, and so on: killed 3 times and restarted 3 times, 300 ms
  apart (the last restart at t0 + 1.5 s is the restore).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time

from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.ports import wait_for_port

from .processes import CHILDREN
from .servers import tail

KINDS = ("kill", "hang", "close", "flap")
FLAP_KILLS = 3
FLAP_GAP = 0.3  # seconds between a kill and the restart, and between a restart and the next kill
FLAP_SPAN = (2 * FLAP_KILLS - 1) * FLAP_GAP  # t0 to the last restart
_FIRST_SIGNAL = {
    "kill": signal.SIGKILL,
    "hang": signal.SIGSTOP,
    "close": signal.SIGQUIT,
    "flap": signal.SIGKILL,
}


class Node(NginxBackend):
    """A lab nginx node run as a harness child (own session, ``PR_SET_PDEATHSIG``, stopped on exit)."""

    @property
    def key(self) -> str:
        """How the edge names it in logs and metrics."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Node:
        """Must run on the main thread: ``PR_SET_PDEATHSIG`` follows the thread that forked."""
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        self.www.mkdir(exist_ok=True)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        argv = [nginx, "-c", str(conf), "-e", str(self.dir / "error.log")]
        self.process = CHILDREN.start_server(argv, self.dir / "nginx.out")
        try:
            wait_for_port("127.0.0.1", self.port, alive=self.process)
        except TimeoutError as error:
            self.stop()
            raise RuntimeError(
                f"nginx {self.name} did not start: {error}\n{tail(self.dir / 'error.log')}"
            ) from None
        return self

    def stop(self) -> None:
        """Whatever state it is in (running, stopped, killed, shutting down): gone and reaped."""
        if self.process is None:
            return
        if not CHILDREN.has_exited(self.process):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)  # a SIGSTOPped nginx cannot act on SIGTERM
        CHILDREN.stop(self.process, grace=5.0)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def sleep_until(moment: float) -> None:
    """``moment`` in wall-clock seconds."""
    time.sleep(max(0.0, moment - time.time()))


def inject(kind: str, node: Node) -> float:
    """Start the fault; returns t0 (wall clock, taken just before the signal)."""
    t0 = time.time()
    node.signal(_FIRST_SIGNAL[kind])
    if kind == "flap":
        for turn in range(FLAP_KILLS):
            if turn:
                sleep_until(t0 + 2 * turn * FLAP_GAP)
                node.signal(signal.SIGKILL)
            sleep_until(t0 + (2 * turn + 1) * FLAP_GAP)
            node.restart()
    return t0


def restore(kind: str, node: Node) -> None:
    """Undo the fault: afterwards the node serves again on the same port."""
    if kind == "hang":
        node.signal(signal.SIGCONT)
    elif kind in ("kill", "close"):
        node.restart()
    # flap: its last restart already brought the node back
