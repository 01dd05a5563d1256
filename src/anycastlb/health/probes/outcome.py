"""How far a probe got, and how its failures read in a transition log line."""

import ssl
import time

from anycastlb.health.result import ProbeResult

__all__ = ["ProbeFailedError", "Progress", "describe"]


class ProbeFailedError(Exception):
    """The backend answered, but not as a healthy one does; the message is the result's reason."""


class Progress:
    """When a probe started and which phase it is in, so that a timeout can say where it struck.

    The probes move ``phase`` forward ("connecting", "in the TLS handshake", "waiting for the
    answer"); setting an attribute costs nothing, and "timeout after 250 ms connecting" points at
    the network or a full accept queue where "... waiting for the answer" points at the application.
    """

    __slots__ = ("phase", "started")

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.phase = "connecting"

    def verdict(self, ok: bool, reason: str, weight: int | None = None) -> ProbeResult:
        """The result, timed now: latency runs from the start of the probe to its verdict."""
        return ProbeResult(ok, reason, time.monotonic() - self.started, weight)


_CONNECTION_ERRORS: tuple[tuple[type[OSError], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (ConnectionAbortedError, "connection aborted"),
    (BrokenPipeError, "connection closed by the backend"),
)


def describe(error: OSError) -> str:
    """A network error as the operator reads it: "connection refused", "TLS error: wrong version number"."""
    if isinstance(error, ssl.SSLError):  # .reason is OpenSSL's short name, str() adds "(_ssl.c:1006)"
        return "TLS error: " + (error.reason or error.strerror or str(error)).lower().replace("_", " ")
    for kind, reason in _CONNECTION_ERRORS:
        if isinstance(error, kind):
            return reason
    text = error.strerror or str(error) or type(error).__name__  # "Network is unreachable"
    return text[:1].lower() + text[1:]
