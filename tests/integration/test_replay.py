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
from tests.support.client_loop import ClientLoop
from tests.support.edge import EdgeProcess

pytestmark = pytest.mark.integration

# Health checks that never eject the resetter (a tcp probe only connects), and no passive ejection,
# so every client that maps to it meets the reset.
KEEP_IT_IN = {"type": "tcp", "send_proxy": False, "interval": "30s", "timeout": "1s", "passive_fall": 0}


class Resetter:
    """Accepts, waits for the client's bytes, and resets the connection without reading them."""

    def __init__(self) -> None:
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
            with contextlib.suppress(OSError):
                conn.recv(1, socket.MSG_PEEK)  # the bytes are here, and stay unread
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            self.resets += 1

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
