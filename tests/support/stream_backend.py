"""A small PROXY-protocol backend for byte-exact transfer tests (nginx cannot echo a 256 MiB upload).

Protocol after the PROXY header: ``UPLOAD\\n`` then bytes until the client half-closes; the
server answers ``<count> <sha256>\\n`` (which proves half-close works: the answer travels after
the client's FIN). ``DOWNLOAD <n>\\n``: the server sends ``n`` bytes of :func:`pattern` and closes.
``RESET\\n``: the server aborts the connection (RST).
``ECHO\\n``: the server answers ``echo\\n`` and then echoes every byte until the client closes;
how it closed (``"fin"`` or ``"reset"``) is appended to ``echo_endings``.
Every parsed header of a client connection is kept in ``headers`` for assertions; health probes
(PROXY v2 LOCAL headers) are only counted in ``health_checks``.
"""

import contextlib
import hashlib
import socket
import socketserver
import struct
import threading
from types import TracebackType

from anycastlb.lab.ports import free_port
from anycastlb.wire.proxy_protocol import IncompleteHeader, ProxyHeader, parse

BLOCK = bytes(range(256)) * 4096  # 1 MiB, not all zeros so a shifted byte changes the hash


def pattern_digest(size: int) -> str:
    """sha256 of the first ``size`` bytes of the repeating pattern."""
    digest = hashlib.sha256()
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        digest.update(BLOCK)
    digest.update(BLOCK[:rest])
    return digest.hexdigest()


class _Handler(socketserver.BaseRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        # Clients of the tests often close with unread data (a reset): that is their right.
        with contextlib.suppress(ConnectionError):
            self._serve(self.request)

    @staticmethod
    def _read_header(sock: socket.socket) -> tuple[ProxyHeader, bytes] | None:
        """The PROXY header and the bytes after it, or None if the peer left first."""
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buffer += chunk
            try:
                header, used = parse(buffer)
            except IncompleteHeader:
                continue
            return header, buffer[used:]

    def _serve(self, sock: socket.socket) -> None:
        head = self._read_header(sock)
        if head is None:
            return
        header, buffer = head
        if header.is_local:  # the edge's health probe (PROXY LOCAL), not a client's connection
            self.server.owner.health_checks += 1
            return
        self.server.owner.headers.append(header)
        while b"\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
        line, _, rest = buffer.partition(b"\n")
        command = line.decode().split()
        if command[0] == "UPLOAD":
            digest = hashlib.sha256(rest)
            count = len(rest)
            view = memoryview(bytearray(1 << 20))
            while received := sock.recv_into(view):
                digest.update(view[:received])
                count += received
            sock.sendall(f"{count} {digest.hexdigest()}\n".encode())
        elif command[0] == "DOWNLOAD":
            size = int(command[1])
            full, remainder = divmod(size, len(BLOCK))
            for _ in range(full):
                sock.sendall(BLOCK)
            sock.sendall(BLOCK[:remainder])
        elif command[0] == "RESET":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # abortive close: the peer gets an RST, not a FIN
        elif command[0] == "ECHO":
            sock.sendall(b"echo\n" + rest)
            try:
                while data := sock.recv(65536):
                    sock.sendall(data)
            except ConnectionResetError:
                self.server.owner.echo_endings.append("reset")
                raise
            self.server.owner.echo_endings.append("fin")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: "StreamBackend", address: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class StreamBackend:
    """Runs the server in a thread of the test process on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.headers: list[ProxyHeader] = []
        self.health_checks = 0
        self.echo_endings: list[str] = []  # how each ECHO session's peer closed: "fin" | "reset"
        self._server = _Server(self, ("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "StreamBackend":
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
