"""The PROXY v2 header carries the TLS SNI (PP2_TYPE_AUTHORITY), read without terminating TLS."""

import contextlib
import ssl
import time
from collections.abc import Callable

from anycastlb.wire.proxy_protocol import PP2_TYPE_AUTHORITY
from tests.integration.conftest import listener
from tests.integration.test_relay import connect
from tests.support.edge import EdgeProcess
from tests.support.stream_backend import StreamBackend


def client_hello(server_name: str) -> bytes:
    """The exact bytes a Python TLS client sends first."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def wait_for_headers(backend: StreamBackend, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(backend.headers) < count:
        assert time.monotonic() < deadline, "the backend never received a PROXY header"
        time.sleep(0.01)


def test_the_sni_of_a_client_hello_becomes_the_authority_tlv(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("tls", [("127.0.0.1", stream_backend.port)])
    edge({"listeners": [web]})

    with connect(web["port"]) as sock:
        sock.sendall(client_hello("shop.example.com"))
        wait_for_headers(stream_backend, 1)

    assert dict(stream_backend.headers[0].tlvs)[PP2_TYPE_AUTHORITY] == b"shop.example.com"


def test_a_client_hello_split_over_two_segments_still_yields_the_sni(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("tls", [("127.0.0.1", stream_backend.port)], client_hello_wait="2s")
    edge({"listeners": [web]})
    hello = client_hello("split.example.com")

    with connect(web["port"]) as sock:
        sock.sendall(hello[:40])
        time.sleep(0.1)  # the behaviour under test: the rest comes later, in a second segment
        sock.sendall(hello[40:])
        wait_for_headers(stream_backend, 1)

    assert dict(stream_backend.headers[0].tlvs)[PP2_TYPE_AUTHORITY] == b"split.example.com"


def test_a_client_hello_that_never_completes_is_forwarded_without_sni_after_the_wait(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    hello_wait = 0.3
    web = listener("tls", [("127.0.0.1", stream_backend.port)], client_hello_wait=f"{hello_wait}s")
    edge({"listeners": [web]})

    with connect(web["port"]) as sock:
        started = time.monotonic()
        sock.sendall(client_hello("slow.example.com")[:40])
        wait_for_headers(stream_backend, 1)
        waited = time.monotonic() - started

    assert PP2_TYPE_AUTHORITY not in dict(stream_backend.headers[0].tlvs)
    # Forwarded once the wait has run out (its timer starts when the partial hello arrives), not
    # before; the upper bound only leaves room for a loaded machine (wait_for_headers gives up at 5 s).
    assert hello_wait - 0.05 <= waited < hello_wait + 1.5


def test_plain_http_gets_no_authority_tlv(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    edge({"listeners": [web]})

    with connect(web["port"]) as sock:
        sock.sendall(b"ECHO\n")
        wait_for_headers(stream_backend, 1)

    assert PP2_TYPE_AUTHORITY not in dict(stream_backend.headers[0].tlvs)
