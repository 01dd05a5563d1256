"""Health probes: one coroutine per check type, each turning a backend into a ProbeResult.

Theory of operation. ``run_probe`` is the only entry point. It starts the clock, picks the probe for
``check.type`` (``tcp``, ``http``, ``k8s``: one module each) and bounds the whole exchange (connect,
PROXY header, TLS, request, answer) by ``check.timeout``. Probes let network trouble escape as
``OSError`` or ``ProbeFailedError`` and record their phase in a ``Progress``; ``run_probe`` turns every
such outcome into a ``ProbeResult``, so the monitor never handles a network exception. Only
programming errors and cancellation propagate. Each probe opens its own socket and closes it in a
``finally`` (``connection.py``), so a timeout or a cancellation never leaks one.
"""

import asyncio
from collections.abc import Awaitable, Callable

from anycastlb.health.probes.http import probe_http
from anycastlb.health.probes.k8s import probe_k8s
from anycastlb.health.probes.outcome import ProbeFailedError, Progress, describe
from anycastlb.health.probes.tcp import probe_tcp
from anycastlb.health.result import ProbeResult
from anycastlb.model.config import HealthCheck, ProxyProtocolVersion

__all__ = ["run_probe"]

Probe = Callable[[HealthCheck, str, int, ProxyProtocolVersion, Progress], Awaitable[ProbeResult]]
_PROBES: dict[str, Probe] = {"tcp": probe_tcp, "http": probe_http, "k8s": probe_k8s}


async def run_probe(
    check: HealthCheck, address: str, port: int, proxy_protocol: ProxyProtocolVersion = "none"
) -> ProbeResult:
    """Probe ``address`` on ``check.port``, else the backend's ``port``, and say what was found.

    ``proxy_protocol`` is the listener's version when ``check.send_proxy`` is set ("none" otherwise):
    a port that expects a PROXY header drops connections that start without one.
    """
    progress = Progress()
    probe = _PROBES[check.type]
    try:
        async with asyncio.timeout(check.timeout):
            return await probe(check, address, check.port or port, proxy_protocol, progress)
    except TimeoutError:  # before OSError: TimeoutError is one
        return progress.verdict(False, f"timeout after {round(check.timeout * 1000)} ms {progress.phase}")
    except ProbeFailedError as failure:
        return progress.verdict(False, str(failure))
    except OSError as error:  # refused, reset, unreachable, TLS errors (ssl.SSLError is an OSError)
        return progress.verdict(False, describe(error))
