"""The controller's probe and metrics endpoints: ``/healthz``, ``/readyz`` and ``/metrics`` on one
small HTTP server, and the rule that decides readiness.

``/healthz`` (liveness) answers 200 while the process serves HTTP at all: restarting a replica
does not fix an unreachable API server or control plane, it only loses its caches.

``/readyz`` answers 200 when the replica is doing its part:

- the leader, once its Service, Node and EndpointSlice caches hold their initial lists (before
  that it would reconcile against an empty cluster, and a rollout that waits for readiness would
  move on too early);
- a standby, once the API server has answered its last look at the Lease: it can take over.

A standby is ready on purpose: a Deployment rolling out a new replica waits until that replica is
ready, and a standby that could never be ready while the old leader holds the Lease would stall
every rollout. 503 means: starting, unable to read the Lease, or leading with caches still
syncing (or, for the leader, the control plane not reachable yet: the caches are filled after its
first answer). The body says which.

The port is bound before anything else starts, and a port that cannot be bound stops the start
(:class:`PortUnavailableError`): a controller without ``/healthz`` would be restarted by its liveness
probe again and again with nothing in its log to say why.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from anycastlb.k8s.metrics import ControllerMetrics

__all__ = ["PortUnavailableError", "Readiness", "readiness", "serve_probes"]


class PortUnavailableError(RuntimeError):
    """The probe/metrics port cannot be bound; the message names it and what to do."""


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str  # the /readyz body


def readiness(*, leading: bool, lease_answered: bool, synced: bool) -> Readiness:
    """What ``/readyz`` answers (the module docstring says why)."""
    if leading:
        if synced:
            return Readiness(True, "leading, caches synced")
        return Readiness(False, "leading, caches syncing")
    if lease_answered:
        return Readiness(True, "standby")
    return Readiness(False, "waiting for the Lease")


async def serve_probes(
    host: str, port: int, metrics: ControllerMetrics, ready: Callable[[], Readiness]
) -> asyncio.Server:
    """Bind ``host:port`` and serve the three paths; raises :class:`PortUnavailableError`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b"/"
            if path == b"/metrics":
                body, status, kind = generate_latest(metrics.registry), "200 OK", CONTENT_TYPE_LATEST
            elif path == b"/healthz":
                body, status, kind = b"ok\n", "200 OK", "text/plain"
            elif path == b"/readyz":
                state = ready()
                body = f"{state.reason}\n".encode()
                status, kind = ("200 OK" if state.ready else "503 Service Unavailable"), "text/plain"
            else:
                body, status, kind = b"not found\n", "404 Not Found", "text/plain"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()

    try:
        return await asyncio.start_server(handle, host, port)
    except OSError as error:
        raise PortUnavailableError(
            f"cannot serve /healthz, /readyz and /metrics on {host}:{port} ({error.strerror}); "
            "stop what listens there or pass another --metrics-port",
        ) from None
