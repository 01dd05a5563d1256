"""TCP check: the backend accepts a connection (and, on a PROXY port, a PROXY header) in time."""

from anycastlb.health.probes.connection import open_connection
from anycastlb.health.probes.outcome import Progress
from anycastlb.health.result import ProbeResult
from anycastlb.model.config import HealthCheck, ProxyProtocolVersion

__all__ = ["probe_tcp"]


async def probe_tcp(
    check: HealthCheck, address: str, port: int, proxy_protocol: ProxyProtocolVersion, progress: Progress
) -> ProbeResult:
    """Connected is healthy. The socket then closes at once with nothing unread, so the backend sees a
    FIN, not a reset: an application that logs resets as errors stays quiet about health checks."""
    async with open_connection(address, port, progress, proxy_protocol=proxy_protocol):
        return progress.verdict(True, "connected")
