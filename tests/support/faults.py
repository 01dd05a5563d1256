"""Faults injected into a real edge: bugs that only some inputs trip, to prove the edge survives them.

An :class:`~tests.support.edge.EdgeProcess` started with ``preload=`` one of these runs it before the
CLI, so the supervisor and every process it forks carry the fault. Nothing here imports
prometheus_client (the edge chooses its metrics directory first).
"""

import os
import socket

from anycastlb.health.result import ProbeResult
from anycastlb.model.config import HealthCheck, Listener, ProxyProtocolVersion

__all__ = ["FAULTY_LISTENER", "raise_on_listener", "raise_on_probe_of_port"]

FAULTY_LISTENER = "faulty"


def raise_on_listener() -> None:
    """A worker opening the socket of a listener named FAULTY_LISTENER raises (a bug nobody foresaw).

    Only in the workers: the supervisor, which tries the sockets before it accepts a reload, is
    the process this runs in, and it stays unharmed.
    """
    from anycastlb.dataplane import sockets  # noqa: PLC0415 - before dataplane.worker binds open_listener

    real = sockets.open_listener
    supervisor = os.getpid()

    def open_listener(listener: Listener) -> socket.socket:
        if listener.name == FAULTY_LISTENER and os.getpid() != supervisor:
            raise RuntimeError(f"injected fault: a bug that listener {FAULTY_LISTENER} trips")
        return real(listener)

    sockets.open_listener = open_listener


def raise_on_probe_of_port(port: int) -> None:
    """Every health probe of a backend on ``port`` raises instead of answering."""
    from anycastlb.health import probes  # noqa: PLC0415 - before health.process binds run_probe

    real = probes.run_probe
    faulty_port = port

    async def run_probe(
        check: HealthCheck, address: str, port: int, proxy_protocol: ProxyProtocolVersion = "none"
    ) -> ProbeResult:
        if port == faulty_port:
            raise RuntimeError(f"injected fault: a bug that probes of port {port} trip")
        return await real(check, address, port, proxy_protocol)

    probes.run_probe = run_probe
