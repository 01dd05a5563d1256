"""HTTP check: GET a path and judge the status (and optionally the body), parsed by h11.

``fetch`` is the machinery the k8s check reuses: one ``Connection: close`` request on the probe's own
connection, the answer read until the server ends it or 64 KiB of body have arrived (enough for any
health page; a larger one is judged by its start).
"""

import functools
import ssl
from dataclasses import dataclass

import h11

import anycastlb
from anycastlb.health.probes.connection import ProbeConnection, open_connection
from anycastlb.health.probes.outcome import ProbeFailedError, Progress
from anycastlb.health.result import ProbeResult
from anycastlb.model.config import HealthCheck, ProxyProtocolVersion

__all__ = ["MAX_BODY", "USER_AGENT", "Answer", "fetch", "probe_http"]

MAX_BODY = 64 * 1024
USER_AGENT = f"anycastlb-health/{getattr(anycastlb, '__version__', '1')}"


@dataclass(frozen=True, slots=True)
class Answer:
    """The parts of an HTTP response a check judges."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # names lower-cased by h11
    body: bytes  # at most MAX_BODY bytes

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


async def probe_http(
    check: HealthCheck, address: str, port: int, proxy_protocol: ProxyProtocolVersion, progress: Progress
) -> ProbeResult:
    """Healthy: an expected status (any 2xx or 3xx unless listed) and, if asked, the body text."""
    answer = await fetch(
        address,
        port,
        progress,
        path=check.path,
        host=check.host,
        tls=check.tls,
        proxy_protocol=proxy_protocol,
    )
    status = answer.status
    if not (status in check.expect_status if check.expect_status else 200 <= status <= 399):
        return progress.verdict(False, f"HTTP {status}")
    if check.expect_body is not None and check.expect_body.encode() not in answer.body:
        return progress.verdict(False, f"HTTP {status} but body lacks {check.expect_body!r}")
    return progress.verdict(True, f"HTTP {status}")


async def fetch(
    address: str,
    port: int,
    progress: Progress,
    *,
    path: str,
    host: str | None,
    tls: bool,
    proxy_protocol: ProxyProtocolVersion = "none",
) -> Answer:
    """GET ``path`` with Host ``host`` (default: the address) and SNI ``host`` (default: none)."""
    client = h11.Connection(h11.CLIENT)
    request = _request(client, path, host or (f"[{address}]" if ":" in address else address))
    context = _tls_context() if tls else None
    async with open_connection(
        address, port, progress, proxy_protocol=proxy_protocol, tls=context, server_hostname=host
    ) as connection:
        await connection.send(request)
        progress.phase = "waiting for the answer"
        return await _read_answer(connection, client)


def _request(client: h11.Connection, path: str, host: str) -> bytes:
    headers = [("Host", host), ("User-Agent", USER_AGENT), ("Connection", "close")]
    try:
        head = client.send(h11.Request(method="GET", target=path, headers=headers))
        end = client.send(h11.EndOfMessage())
    except h11.LocalProtocolError as error:  # e.g. a configured host with a space: fail, do not crash
        raise ProbeFailedError(f"cannot write the request: {error}") from None
    return (head or b"") + (end or b"")


async def _read_answer(connection: ProbeConnection, client: h11.Connection) -> Answer:
    response: h11.Response | None = None
    body = bytearray()
    received = 0
    while len(body) < MAX_BODY:
        try:
            event = client.next_event()
        except h11.RemoteProtocolError as error:
            if received == 0:  # h11 says "can't handle event type ConnectionClosed ..."
                raise ProbeFailedError("connection closed before a response") from None
            raise ProbeFailedError(f"malformed HTTP response: {_short(str(error))}") from None
        if event is h11.NEED_DATA:
            data = await connection.recv()
            received += len(data)
            client.receive_data(data)  # b"" tells h11 the server closed
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    if response is None:
        raise ProbeFailedError("connection closed before a response")
    return Answer(response.status_code, tuple(response.headers), bytes(body[:MAX_BODY]))


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """No certificate verification (HealthCheck.tls): nodes rarely have one for their address."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context
