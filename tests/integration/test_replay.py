"""A node that resets a new connection before answering gets the client's first bytes replayed.

This is the race behind "0 failed new connections on SIGKILL": the edge connects while the node is
dying, the node's kernel completes the handshake, and then the dying process's socket resets the
connection with our PROXY header and request unread. A small server that does exactly that (accept,
let the bytes arrive, close with SO_LINGER 0) stands in for the dying node.
"""

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from anycastlb.lab.nginx import NginxBackend
from tests.integration.conftest import listener
from tests.integration.test_relay import wait_for_metric
from tests.integration.test_sni_authority import client_hello
from tests.support.client_loop import ClientLoop
from tests.support.edge import EdgeProcess

pytestmark = pytest.mark.integration

# No health checks and no passive ejection: nothing ejects the resetter,
# so every client that maps to it meets the reset.
KEEP_IT_IN = {"type": "none", "passive_fall": 0}


class Resetter:
    """Accepts, waits for the client's bytes, and resets the connection without reading them.

    With ``read_first`` (the client's first bytes, which follow the PROXY header) it reads until they
    have all arrived and closes cleanly (FIN) without answering instead: a node that may have acted
    on the bytes.
    """

    def __init__(self, *, read_first: bytes = b"") -> None:
        self.read_first = read_first
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.resets = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(0.5)
            peeked = b""
            with contextlib.suppress(OSError):
                peeked = conn.recv(1, socket.MSG_PEEK)  # the bytes are here, and stay unread
                data = b""
                while self.read_first and not data.endswith(self.read_first):
                    chunk = conn.recv(65536)  # everything, or the close would be a reset
                    if not chunk:
                        break
                    data += chunk
            if not self.read_first:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Counted before the close: the client sees the reset the moment close() returns and
            # may read `resets` before this thread runs again (CI once saw 25 failures, 24 counted).
            if peeked:  # a health probe connects and leaves without a byte: not a client
                self.resets += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def resetter() -> Iterator[Resetter]:
    server = Resetter()
    yield server
    server.close()


def test_a_reset_before_any_answer_is_replayed_on_the_next_node(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess], resetter: Resetter
) -> None:
    node = nginx("n0")
    config = listener("web", [("127.0.0.1", resetter.port), ("127.0.0.1", node.port)], health=KEEP_IT_IN)
    process = edge({"listeners": [config]})
    clients = ClientLoop(config["port"], sources=40)
    answers = [clients.request(source) for source in clients.sources]
    assert [a for a in answers if a.node is None] == []
    assert {a.node for a in answers} == {"n0"}
    assert resetter.resets > 0, "no client mapped to the resetting node: the test proves nothing"
    wait_for_metric(process, "anycastlb_connect_retries_total", resetter.resets)  # folded once a second
    assert process.metric("anycastlb_backend_connect_errors_total", reason="reset") == resetter.resets


def test_with_retry_on_reset_off_the_reset_reaches_the_client(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess], resetter: Resetter
) -> None:
    node = nginx("n0")
    config = listener(
        "web",
        [("127.0.0.1", resetter.port), ("127.0.0.1", node.port)],
        health=KEEP_IT_IN,
        retry_on_reset=False,
    )
    edge({"listeners": [config]})
    clients = ClientLoop(config["port"], sources=40)
    answers = [clients.request(source) for source in clients.sources]
    failed = [a for a in answers if a.node is None]
    assert len(failed) == resetter.resets > 0
    assert all("ConnectionResetError" in a.error for a in failed), failed[:3]


class Answerer:
    """Reads the PROXY header and the client's first bytes, answers ``answered``, closes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.settimeout(1)
                conn.recv(65536)
                conn.sendall(b"answered\n")


def _first_answer(port: int, source: str, first_bytes: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0)) as sock:
        sock.sendall(first_bytes)
        try:
            return sock.recv(100)
        except ConnectionResetError:
            return b"<reset>"


@pytest.mark.parametrize("tls", [True, False], ids=["tls-client-hello", "plain-http"])
def test_a_clean_close_before_any_answer_is_replayed_only_for_a_tls_client_hello(
    edge: Callable[..., EdgeProcess], tls: bool
) -> None:
    first_bytes = client_hello("shop.example.com") if tls else b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    closer, answerer = Resetter(read_first=first_bytes), Answerer()
    config = listener("web", [("127.0.0.1", closer.port), ("127.0.0.1", answerer.port)], health=KEEP_IT_IN)
    edge({"listeners": [config]})
    answers = [_first_answer(config["port"], f"127.0.0.{2 + i}", first_bytes) for i in range(40)]
    closer.close()
    assert closer.resets > 0, "no client mapped to the closing node: the test proves nothing"
    if tls:
        assert set(answers) == {b"answered\n"}
    else:
        assert answers.count(b"") == closer.resets  # the node may have acted on it: never replayed
