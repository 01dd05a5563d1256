"""Bytes arrive intact both ways, half-close works, failures and timeouts behave."""

import contextlib
import hashlib
import socket
import struct
import time
from collections.abc import Callable

import pytest

from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.ports import free_port
from tests.integration.conftest import listener
from tests.support.edge import EdgeProcess
from tests.support.stream_backend import BLOCK, StreamBackend, pattern_digest

SIZE = 256 * 1024 * 1024
IDLE_TIMEOUT = 1.0  # the listeners' idle_timeout below
CONNECT_TIMEOUT = 0.3  # the black-hole test's connect_timeout
SWEEP = 1.0  # a worker looks for idle connections once a second (_core.pyx, sweep)
SLACK = 1.5  # scheduling delay a loaded machine may add to any timer


def connect(port: int, source: str = "127.0.0.1", host: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((host, port), timeout=10, source_address=(source, 0))


def echo_session(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection through the edge to the stream backend's echo mode, proven to work both ways."""
    sock = connect(port, source=source)
    try:
        sock.sendall(b"ECHO\n")
        assert read_line(sock) == b"echo\n"
    except BaseException:
        sock.close()  # callers may retry until it works: leak nothing on the way
        raise
    return sock


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.slow
@pytest.mark.parametrize("relay", ["auto", "splice", "copy"])
def test_256_mib_upload_arrives_intact_and_the_answer_comes_back_after_half_close(
    relay: str, stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("bulk", [("127.0.0.1", stream_backend.port)])
    edge({"listeners": [web], "relay": relay})

    with connect(web["port"]) as sock:  # closed even on failure: a leaked socket fails a later test
        sock.sendall(b"UPLOAD\n")
        digest = hashlib.sha256()
        for _ in range(SIZE // len(BLOCK)):
            sock.sendall(BLOCK)
            digest.update(BLOCK)
        sock.shutdown(socket.SHUT_WR)  # FIN one way; the answer must still arrive the other way
        answer = read_line(sock).decode().split()

    assert answer == [str(SIZE), digest.hexdigest()]


@pytest.mark.slow
@pytest.mark.parametrize("relay", ["auto", "splice", "copy"])
def test_256_mib_download_arrives_intact(
    relay: str, stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("bulk", [("127.0.0.1", stream_backend.port)])
    edge({"listeners": [web], "relay": relay})

    with connect(web["port"]) as sock:
        sock.sendall(f"DOWNLOAD {SIZE}\n".encode())
        sock.shutdown(socket.SHUT_WR)  # half-closed by the client before the download even starts
        digest = hashlib.sha256()
        received = 0
        view = memoryview(bytearray(1 << 20))
        while count := sock.recv_into(view):
            digest.update(view[:count])
            received += count

    assert received == SIZE
    assert digest.hexdigest() == pattern_digest(SIZE)


def test_the_proxy_v2_header_carries_a_unique_id_per_connection(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    edge({"listeners": [web]})

    for _ in range(5):
        with connect(web["port"], source="127.0.0.77") as sock:
            sock.sendall(b"ECHO\nhello")
            assert read_line(sock) == b"echo\n"

    ids = [dict(header.tlvs)[0x05] for header in stream_backend.headers]
    assert len(set(ids)) == 5
    assert {header.source for header in stream_backend.headers} == {
        ("127.0.0.77", header.source[1]) for header in stream_backend.headers if header.source
    }
    assert all(header.destination == ("127.0.0.1", web["port"]) for header in stream_backend.headers)


def test_a_refused_backend_is_retried_on_the_next_and_no_client_notices(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    dead_port = free_port()  # nothing listens there: connect() is refused
    no_health_checks = {"type": "none", "passive_fall": 0}  # the data plane's retry alone is under test
    web = listener(
        "web", [("127.0.0.1", dead_port), ("127.0.0.1", node.port)], retries=1, health=no_health_checks
    )
    agent = edge({"listeners": [web]})

    failures = 0
    for client in range(2, 42):
        try:
            with connect(web["port"], source=f"127.0.2.{client}") as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b"node=node-a" not in sock.recv(4096):
                    failures += 1
        except OSError:
            failures += 1

    assert failures == 0
    folded(
        lambda: (
            0
            < agent.metric("anycastlb_backend_connect_errors_total", reason="refused")
            == agent.metric("anycastlb_connect_retries_total", listener="web")
        )
    )
    refused = agent.metric("anycastlb_backend_connect_errors_total", reason="refused")
    assert refused > 0, "no client was hashed to the dead backend first: the test proves nothing"
    assert agent.metric("anycastlb_connect_retries_total", listener="web") == refused


def test_a_client_that_sends_nothing_is_closed_at_the_idle_timeout_and_never_reaches_a_backend(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)], idle_timeout=f"{IDLE_TIMEOUT}s")
    edge({"listeners": [web]})

    sock = connect(web["port"])
    started = time.monotonic()
    sock.settimeout(IDLE_TIMEOUT + SLACK + 2)
    assert sock.recv(1) == b""
    waited = time.monotonic() - started
    sock.close()

    # A timer set at accept (min(first_data_timeout, idle_timeout)), not the once-a-second sweep.
    assert IDLE_TIMEOUT - 0.1 <= waited <= IDLE_TIMEOUT + SLACK
    assert stream_backend.headers == [], "an idle client made the edge open a backend connection"


def test_an_established_connection_without_traffic_is_closed_at_the_idle_timeout(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)], idle_timeout=f"{IDLE_TIMEOUT}s")
    edge({"listeners": [web]})

    sock = echo_session(web["port"])
    started = time.monotonic()
    sock.settimeout(IDLE_TIMEOUT + SWEEP + SLACK + 2)
    assert sock.recv(1) == b""
    waited = time.monotonic() - started
    sock.close()

    # Not before the timeout (the last traffic was just before `started`), and at the first sweep
    # after it: at most one sweep period late.
    assert IDLE_TIMEOUT - 0.1 <= waited <= IDLE_TIMEOUT + SWEEP + SLACK


def test_one_source_past_its_limit_is_refused_while_another_source_gets_through(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)], max_connections_per_source=5)
    agent = edge({"listeners": [web]})

    with contextlib.ExitStack() as held:
        for _ in range(5):
            held.enter_context(echo_session(web["port"], source="127.0.3.1"))
        # A refusal is a reset: on loopback it can arrive before connect() returns, or at the send.
        try:
            with connect(web["port"], source="127.0.3.1") as extra:
                extra.sendall(b"ECHO\n")
                refused = read_line(extra) == b""
        except (ConnectionResetError, BrokenPipeError):
            refused = True
        with connect(web["port"], source="127.0.3.2") as other:
            other.sendall(b"ECHO\n")
            other_answer = read_line(other)

    assert refused, "the sixth connection from one source was served"
    assert other_answer == b"echo\n"
    folded(lambda: agent.metric("anycastlb_connections_rejected_total", reason="source_limit") == 1)
    assert agent.metric("anycastlb_connections_rejected_total", reason="source_limit") == 1


def test_a_backend_reset_reaches_the_client_as_a_reset_not_a_clean_end(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    edge({"listeners": [web]})

    sock = connect(web["port"])
    sock.sendall(b"RESET\n")
    with pytest.raises(ConnectionResetError):
        drain(sock)
    sock.close()


def drain(sock: socket.socket) -> None:
    while sock.recv(65536):
        pass


def test_a_client_reset_resets_the_backend_connection(
    stream_backend: StreamBackend, edge: Callable[..., EdgeProcess]
) -> None:
    web = listener("web", [("127.0.0.1", stream_backend.port)])
    agent = edge({"listeners": [web]})
    sock = echo_session(web["port"])
    wait_for_metric(agent, "anycastlb_backend_connections_active", 1)

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()

    wait_for_metric(agent, "anycastlb_backend_connections_active", 0)
    folded(lambda: stream_backend.echo_endings != [])  # the backend's recv saw the close
    assert stream_backend.echo_endings == ["reset"], "the backend got a clean FIN, not a reset"


def folded(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Until ``check()`` holds, at most ``timeout``: workers fold their counters into the metrics
    once a second (later on a loaded machine). The assertions after it say what is wrong if not."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


def wait_for_metric(agent: EdgeProcess, name: str, value: float, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := agent.metric(name)) != value:
        assert time.monotonic() < deadline, f"{name} stayed {seen}, expected {value}"
        time.sleep(0.1)


def unresponsive_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A port whose accept queue is full: the kernel drops further SYNs, so connect() hangs."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(blackhole.getsockname())
        fillers.append(filler)
    return blackhole, fillers


def test_a_node_that_never_answers_the_handshake_is_skipped_after_connect_timeout(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    blackhole, fillers = unresponsive_listener()
    web = listener(
        "web",
        [("127.0.0.1", blackhole.getsockname()[1]), ("127.0.0.1", node.port)],
        connect_timeout=f"{CONNECT_TIMEOUT}s",
        health={"type": "none", "passive_fall": 0},  # no probe may eject the black hole first
    )
    agent = edge({"listeners": [web]})

    slowest = 0.0
    for client in range(2, 22):
        started = time.monotonic()
        with connect(web["port"], source=f"127.0.4.{client}") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert b"node=node-a" in sock.recv(4096)
        slowest = max(slowest, time.monotonic() - started)
    for sock in [blackhole, *fillers]:
        sock.close()

    folded(lambda: agent.metric("anycastlb_backend_connect_errors_total", reason="timeout") > 0)
    assert agent.metric("anycastlb_backend_connect_errors_total", reason="timeout") > 0, "no client tried it"
    # A client hashed to the black hole first waits one whole connect_timeout, then is retried at once.
    assert CONNECT_TIMEOUT <= slowest < CONNECT_TIMEOUT + SLACK, (
        "a timed-out connect cost more than one timeout"
    )
