"""The byte counters equal the payload relayed: what clients sent and what nodes answered, exactly.

The PROXY header the edge writes is not the client's and is not counted; the client's first bytes,
which ride in the same ``send()`` as the header, are. Both directions are checked against what the
client itself sent and received, for short requests (everything fits the first send) and for bulk
transfers (the flows do the work), with every relay mode.
"""

import socket
import time
from collections.abc import Callable

import pytest

from anycastlb.lab.nginx import NginxBackend
from tests.integration.conftest import listener
from tests.support.edge import EdgeProcess
from tests.support.stream_backend import BLOCK, StreamBackend

BULK = 8 * 1024 * 1024


def wait_for_bytes(agent: EdgeProcess, name: str, sent: int, received: int) -> None:
    """Workers fold their counters into metrics once a second: wait until both equal the expectation."""
    deadline = time.monotonic() + 10
    while True:
        seen = (
            agent.metric("anycastlb_bytes_total", listener=name, direction="client_to_backend"),
            agent.metric("anycastlb_bytes_total", listener=name, direction="backend_to_client"),
        )
        if seen == (sent, received) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert seen == (sent, received), f"counters (in, out) {seen}, the client sent {sent}, received {received}"


def read_to_end(sock: socket.socket) -> int:
    received = 0
    view = memoryview(bytearray(1 << 20))
    while count := sock.recv_into(view):
        received += count
    return received


def short_request(port: int, index: int) -> tuple[int, int]:
    """One HTTP request of a few dozen bytes, answered and closed by nginx: (sent, received)."""
    request = f"GET /?request={index} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = read_to_end(sock)
    assert received > 0
    return len(request), received


@pytest.mark.parametrize(
    ("relay", "proxy_protocol"), [("auto", "v2"), ("copy", "v1"), ("splice", "v2"), ("auto", "none")]
)
def test_short_requests_count_exactly_the_bytes_the_client_sent_and_received(
    relay: str, proxy_protocol: str, nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a", proxy_protocol=proxy_protocol != "none")
    web = listener("web", [("127.0.0.1", node.port)], proxy_protocol=proxy_protocol)
    agent = edge({"listeners": [web], "relay": relay})

    totals = [short_request(web["port"], index) for index in range(20)]

    wait_for_bytes(agent, "web", sum(sent for sent, _ in totals), sum(received for _, received in totals))


@pytest.mark.parametrize("relay", ["auto", "splice", "copy"])
def test_a_bulk_upload_and_a_bulk_download_count_every_byte_once(
    relay: str, stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    bulk = listener("bulk", [("127.0.0.1", stream_backend.port)])
    agent = edge({"listeners": [bulk], "relay": relay})

    with socket.create_connection(("127.0.0.1", bulk["port"]), timeout=10) as sock:
        upload = b"UPLOAD\n"
        sock.sendall(upload)
        for _ in range(BULK // len(BLOCK)):
            sock.sendall(BLOCK)
        sock.shutdown(socket.SHUT_WR)
        answer_size = read_to_end(sock)  # "<count> <sha256>\n", then the node closes
    upload_sent = len(upload) + BULK

    with socket.create_connection(("127.0.0.1", bulk["port"]), timeout=10) as sock:
        download = f"DOWNLOAD {BULK}\n".encode()
        sock.sendall(download)
        sock.shutdown(socket.SHUT_WR)
        downloaded = read_to_end(sock)
    assert downloaded == BULK

    wait_for_bytes(agent, "bulk", upload_sent + len(download), answer_size + downloaded)
