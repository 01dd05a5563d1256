"""A node that terminates TLS behind a PROXY header, and a TLS client that counts its TCP bytes.

The edge never terminates TLS: it routes on the ClientHello's SNI. To show a connection reached the
right node with a working handshake, :class:`TlsBackend` reads the PROXY header (peeked, so the TLS
bytes behind it stay in the socket), completes the handshake with a self-signed certificate, reads
one line and answers ``<its name> <the SNI it saw> <the line>``, then closes. :func:`tls_request`
is a real TLS client (Python's ``ssl`` on memory BIOs) over a plain socket, so the bytes it sent and
received on the wire can be compared with the edge's byte counters exactly.
"""

import contextlib
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from anycastlb.lab.ports import free_port
from anycastlb.wire.proxy_protocol import IncompleteHeader, ProxyHeader, parse

__all__ = ["TlsAnswer", "TlsBackend", "self_signed", "tls_request"]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key (the clients here do not verify: the route is under test)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError(
            "the openssl command is needed to make a self-signed certificate (apt install openssl)"
        )
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=node.example", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class _Handler(socketserver.BaseRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            self._serve(self.request)

    def _serve(self, sock: socket.socket) -> None:
        owner = self.server.owner
        header = _take_header(sock)
        if header is None or header.is_local:
            return
        owner.headers.append(header)
        seen: list[str | None] = [None]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*owner.certificate)
        context.sni_callback = lambda _sock, name, _context: seen.__setitem__(0, name)
        with context.wrap_socket(sock, server_side=True) as secure:
            line = b""
            while not line.endswith(b"\n"):
                chunk = secure.recv(4096)
                if not chunk:
                    return
                line += chunk
            secure.sendall(f"{owner.name} {seen[0]} ".encode() + line)


def _take_header(sock: socket.socket) -> ProxyHeader | None:
    """Read exactly the PROXY header: peek until it parses, then consume its length only."""
    while True:
        data = sock.recv(536, socket.MSG_PEEK)
        if not data:
            return None
        try:
            header, used = parse(data)
        except IncompleteHeader:
            time.sleep(0.005)  # the edge sends the header in one send: this only waits for a segment
            continue
        sock.recv(used, socket.MSG_WAITALL)
        return header


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: "TlsBackend", address: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class TlsBackend:
    """A named TLS node in a thread of the test process on 127.0.0.1; ``headers`` are the PROXY
    headers of the connections it served."""

    def __init__(self, name: str, certificate: tuple[Path, Path]) -> None:
        self.name = name
        self.certificate = certificate
        self.port = free_port()
        self.headers: list[ProxyHeader] = []
        self._server = _Server(self, ("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "TlsBackend":
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class TlsAnswer:
    """What the node answered, and the TCP payload the client sent and received (all of it)."""

    text: str
    sent: int
    received: int


def tls_request(port: int, server_name: str | None, line: bytes = b"hello\n") -> TlsAnswer:
    """A TLS handshake through the edge (SNI ``server_name``, or none), one line, the answer, EOF.
    A reset by the edge raises ConnectionResetError."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    sent = received = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:

        def flush() -> None:
            nonlocal sent
            data = outgoing.read()
            sock.sendall(data)
            sent += len(data)

        def fill() -> bool:
            nonlocal received
            data = sock.recv(65536)
            if not data:
                incoming.write_eof()
                return False
            received += len(data)
            incoming.write(data)
            return True

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                if not fill():
                    raise ConnectionError("the connection closed during the TLS handshake") from None
        tls.write(line)
        flush()
        answer = b""
        while True:
            try:
                chunk = tls.read(65536)
            except ssl.SSLWantReadError:
                flush()
                if not fill():
                    break
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if not chunk:
                break
            answer += chunk
        flush()
        while fill():  # to the end: every byte the node sent is one the edge counted
            pass
    return TlsAnswer(answer.decode(), sent, received)
