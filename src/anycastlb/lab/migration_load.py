"""The clients of a migration: new connections at a fixed rate, and a few long-lived ones.

Every answer comes from a lab node's nginx (``node=a2 client=...``), so each record names the node
that served it. New connections are spread over ``sources`` (Maglev picks the node by client
address) and paced on a fixed schedule by a few threads, so one slow connect does not hold the
others back. Long-lived connections are HTTP/1.1 keep-alive: one request every ``interval`` on the
same TCP connection until :meth:`LongLived.finish`, which sends a last request, then closes and
waits for the server's FIN (a reset there counts as an unclean end). Counting is
:mod:`anycastlb.lab.migration_counts`' job; this module only records.
"""

import socket
import threading
import time
from collections.abc import Sequence

from anycastlb.lab.migration_counts import Attempt, SessionLog

__all__ = ["LongLived", "NewConnections", "node_of"]

_ONE_SHOT = b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n"
_KEEP_ALIVE = b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n"


def node_of(response: bytes) -> str | None:
    """The node named in a 200 answer's body (``node=NAME``); None for anything else."""
    return answer_fields(response).get("node")


def answer_fields(response: bytes) -> dict[str, str]:
    """The ``key=value`` words of a 200 answer's body (``node=b1 client=127.0.30.5 via=100.64.0.1``:
    the node, the client address it learnt from the PROXY header, where the connection came from);
    empty for anything else."""
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
        return {}
    return body_fields(body)


def body_fields(body: bytes) -> dict[str, str]:
    """The ``key=value`` words of a lab node's answer body, whatever the status."""
    words = (word.decode(errors="replace").partition("=") for word in body.split())
    return {key: value for key, sep, value in words if sep}


class NewConnections:
    """``rate`` new connections per second to ``vip:port`` from ``sources``, until :meth:`stop`."""

    def __init__(
        self, vip: str, port: int, sources: Sequence[str], rate: float, threads: int = 4, timeout: float = 3.0
    ) -> None:
        if rate <= 0 or threads < 1 or not sources:
            raise ValueError("a load needs a positive rate, at least one thread and one source address")
        self.vip, self.port, self.sources = vip, port, tuple(sources)
        self.rate, self.timeout = rate, timeout
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(index, threads), name=f"load-{index}", daemon=True)
            for index in range(threads)
        ]

    def start(self) -> "NewConnections":
        self._t0 = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Attempt]:
        """Stop and return every attempt, in the order they started."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        with self._lock:
            return sorted(self.attempts, key=lambda attempt: attempt.started)

    def served_since(self, since: float) -> list[Attempt]:
        with self._lock:
            return [attempt for attempt in self.attempts if attempt.started >= since]

    def _run(self, index: int, threads: int) -> None:
        count = 0
        while not self._stop.is_set():
            due = self._t0 + (index + count * threads) / self.rate
            count += 1
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            source = self.sources[(index + count * threads) % len(self.sources)]
            attempt = self._one(source)
            with self._lock:
                self.attempts.append(attempt)

    def _one(self, source: str) -> Attempt:
        started = time.monotonic()
        try:
            with socket.create_connection(
                (self.vip, self.port), timeout=self.timeout, source_address=(source, 0)
            ) as sock:
                sock.sendall(_ONE_SHOT)
                response = _read_to_end(sock)
        except OSError as error:
            return Attempt(started, None, f"{type(error).__name__}: {error.strerror or error}")
        fields = answer_fields(response)
        node = fields.get("node")
        if node is None:
            return Attempt(started, None, f"bad answer {response[:40]!r}")
        if fields.get("client") != source:  # the PROXY header lost the client, through a tunnel or not
            return Attempt(started, node, f"node saw client {fields.get('client')}, not {source}")
        return Attempt(started, node, None, fields.get("via"))


def _read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


class LongLived:
    """One keep-alive connection asking every ``interval`` s until :meth:`finish`."""

    def __init__(self, vip: str, port: int, source: str, interval: float = 0.2, timeout: float = 3.0) -> None:
        self.log = SessionLog(source)
        self.vip, self.port, self.interval, self.timeout = vip, port, interval, timeout
        self._stop = threading.Event()
        self._sock = socket.create_connection((vip, port), timeout=timeout, source_address=(source, 0))
        self._ask()  # the first answer names the node this connection is on
        self._thread = threading.Thread(target=self._run, name=f"long-{source}", daemon=True)
        self._thread.start()

    @property
    def node(self) -> str | None:
        return self.log.answers[0][1] if self.log.answers else None

    def _ask(self) -> None:
        self._sock.sendall(_KEEP_ALIVE)
        self.log.answers.append((time.monotonic(), node_of(_read_response(self._sock))))

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self._ask()
            self._ask()  # the last answer, after the caller decided to finish
            self._sock.shutdown(socket.SHUT_WR)
            extra = self._sock.recv(1)  # the server's FIN (b""), not a reset or more data
            if extra:
                self.log.error = f"the server sent {extra!r}... after the client's close"
            else:
                self.log.closed_by_client = True
        except OSError as error:
            self.log.error = f"{type(error).__name__}: {error.strerror or error}"
        finally:
            self._sock.close()

    def finish(self) -> SessionLog:
        """Ask once more, close, and return the log (``error`` says what went wrong, if anything)."""
        self._stop.set()
        self._thread.join(self.timeout * 3)
        if self._thread.is_alive():
            self.log.error = "no answer within the timeout"
        return self.log

    def abort(self) -> None:
        """Clean-up on failure: stop asking and drop the connection."""
        self._stop.set()
        self._thread.join(self.timeout * 3)


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body (nginx's ``return 200`` sends one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the connection closed before an answer")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the connection closed in the middle of an answer")
        body += chunk
    return head + b"\r\n\r\n" + body
