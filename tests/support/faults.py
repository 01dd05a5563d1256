"""Faults injected into a real edge: bugs that only some inputs trip, to prove the edge survives them.

An :class:`~tests.support.edge.EdgeProcess` started with ``preload=`` one of these runs it before the
CLI, so the supervisor and every process it forks carry the fault. Nothing here imports
prometheus_client (the edge chooses its metrics directory first).
"""

from collections.abc import Sequence

from anycastlb.health.result import ProbeResult
from anycastlb.model.config import HealthCheck, ProxyProtocolVersion

__all__ = ["FAULTY_SNI", "raise_on_probe_of_port", "raise_on_sni"]

FAULTY_SNI = "fault.invalid"


def raise_on_sni() -> None:
    """Writing the PROXY header of a connection whose ClientHello names FAULTY_SNI raises."""
    from anycastlb.wire import proxy_protocol  # noqa: PLC0415 - patched where connection.py looks

    real = proxy_protocol.encode_v2

    def encode_v2(
        source: tuple[str, int],
        destination: tuple[str, int],
        family: int,
        *,
        protocol: str = "tcp",
        tlvs: Sequence[tuple[int, bytes]] = (),
    ) -> bytes:
        if any(value == FAULTY_SNI.encode() for _, value in tlvs):
            raise RuntimeError(f"injected fault: a bug that SNI {FAULTY_SNI} trips")
        return real(source, destination, family, protocol=protocol, tlvs=tlvs)

    proxy_protocol.encode_v2 = encode_v2  # type: ignore[assignment]


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
