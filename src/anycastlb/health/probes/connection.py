"""A probe's own TCP connection: connect, PROXY header, optional TLS, bytes in and out, always closed.

Plain sockets and asyncio's ``sock_*`` calls rather than streams: the probe owns its socket and closes
it synchronously in a ``finally``, so neither a timeout nor a cancellation leaves one behind, and a
hung TLS peer cannot hold it open for a transport's shutdown timeout. TLS is an ``ssl.SSLObject``
over memory BIOs (h11's bring-your-own-I/O style), which also lets the PROXY header go out in clear
text before the handshake, where receivers look for it (PROXY spec §2: the header comes first).
"""

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from anycastlb.health.probes.outcome import Progress
from anycastlb.model.config import ProxyProtocolVersion
from anycastlb.wire.proxy_protocol import encode_v1, encode_v2_local

__all__ = ["ProbeConnection", "open_connection", "proxy_header"]

_T = TypeVar("_T")
_RECV_SIZE = 65536

# Like HAProxy's check-send-proxy, a check has no client to tell about: v2 sends the LOCAL command
# (§2.2) and v1 "PROXY UNKNOWN" (§2.1), both meaning "use this connection's own endpoints". nginx
# 1.22 accepts both, and also a TCP4/TCP6 line with the socket's own addresses (see
# tests/integration/test_probes.py); UNKNOWN is the spec's form for a connection the sender makes
# itself, needs no getsockname() and mirrors v2 LOCAL, so both versions say the same thing.
_HEADERS: dict[ProxyProtocolVersion, bytes] = {
    "none": b"",
    "v1": encode_v1(("", 0), ("", 0), socket.AF_UNSPEC),  # addresses unused: b"PROXY UNKNOWN\r\n"
    "v2": encode_v2_local(),
}


def proxy_header(version: ProxyProtocolVersion) -> bytes:
    """The PROXY header a check writes first on a port that requires one (b"" for "none")."""
    return _HEADERS[version]


class ProbeConnection:
    """One connected non-blocking socket, optionally with TLS on top; ``send``/``recv`` move plaintext."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()

    async def send(self, data: bytes) -> None:
        if self._tls is None:
            await self._loop.sock_sendall(self._sock, data)
        else:
            self._tls.write(data)
            await self._flush()

    async def recv(self) -> bytes:
        """Up to 64 KiB of what the peer sent; b"" once it has closed."""
        if self._tls is None:
            return await self._loop.sock_recv(self._sock, _RECV_SIZE)
        tls = self._tls
        try:
            return await self._tls_step(lambda: tls.read(_RECV_SIZE))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):  # with or without close_notify: HTTP has
            return b""  # its own framing and h11 tells a complete answer from a cut one

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        await self._tls_step(self._tls.do_handshake)

    async def _tls_step(self, step: Callable[[], _T]) -> _T:
        """Run one SSLObject call, feeding it bytes from the socket until it stops asking for more."""
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                await self._flush()
                data = await self._loop.sock_recv(self._sock, _RECV_SIZE)
                if data:
                    self._incoming.write(data)
                elif self._incoming.eof:  # never expected: OpenSSL reports the EOF we already fed it
                    raise ssl.SSLEOFError("the peer closed the connection") from None
                else:
                    self._incoming.write_eof()
            else:
                await self._flush()
                return result

    async def _flush(self) -> None:
        if data := self._outgoing.read():
            await self._loop.sock_sendall(self._sock, data)


@asynccontextmanager
async def open_connection(
    address: str,
    port: int,
    progress: Progress,
    *,
    proxy_protocol: ProxyProtocolVersion = "none",
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> AsyncIterator[ProbeConnection]:
    """Connect, write the PROXY header if any, then shake hands if ``tls``; the socket closes on exit.

    Closing is a plain close(): a FIN, or a reset only if the peer sent bytes nobody read.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET  # backend addresses are IP literals
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        progress.phase = "connecting"
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
        connection = ProbeConnection(sock)
        if header := proxy_header(proxy_protocol):
            progress.phase = "sending the PROXY header"
            await connection.send(header)
        if tls is not None:
            progress.phase = "in the TLS handshake"
            await connection.start_tls(tls, server_hostname)
        yield connection
    finally:
        sock.close()
