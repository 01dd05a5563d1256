"""What one probe (or one failed client connect) found out about a backend."""

from dataclasses import dataclass

__all__ = ["ProbeResult"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one health probe.

    ``reason`` is written for the operator reading a transition log line: on failure it says what
    went wrong ("connection refused", "timeout after 250 ms", "HTTP 503", "body lacks 'ok'"); on
    success what was seen ("connected", "HTTP 200", "HTTP 200, 4 local endpoints").
    ``weight`` is set only by checks that learn a weight from the node (k8s: kube-proxy's count of
    local ready endpoints); ``None`` keeps the configured weight.
    """

    ok: bool
    reason: str
    latency: float  # seconds from the start of the probe to its verdict
    weight: int | None = None
