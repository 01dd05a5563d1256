"""Several listeners share one VIP:port; the edge routes each connection by its ClientHello's SNI
to the listener that names it, without terminating TLS (issue 15, part 3).

Real TLS clients (Python's ``ssl``) talk through a real edge to nodes that terminate TLS behind a
PROXY header (``tests/support/tls_backend.py``), so a test sees both which node the connection
reached and that the handshake through the edge works.
"""

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anycastlb.lab.ports import free_port
from anycastlb.wire.proxy_protocol import PP2_TYPE_AUTHORITY
from tests.integration.conftest import listener
from tests.integration.test_relay import connect, read_line
from tests.integration.test_sni_authority import client_hello, wait_for_headers
from tests.support.edge import EdgeProcess
from tests.support.stream_backend import StreamBackend
from tests.support.tls_backend import TlsBackend, self_signed, tls_request


@pytest.fixture
def tls_nodes(tmp_path: Path) -> Iterator[Callable[[str], TlsBackend]]:
    certificate = self_signed(tmp_path)
    started: list[TlsBackend] = []

    def start(name: str) -> TlsBackend:
        node = TlsBackend(name, certificate).__enter__()
        started.append(node)
        return node

    yield start
    for node in started:
        node.__exit__(None, None, None)


def sharer(name: str, port: int, backend_port: int, *hostnames: str, **extra: Any) -> dict[str, Any]:
    return {
        **listener(name, [("127.0.0.1", backend_port)], **extra),
        "port": port,
        "hostnames": list(hostnames),
    }


def wait_for_metric(agent: EdgeProcess, name: str, expected: float, **labels: str) -> None:
    """Workers publish their counters once a second: wait for the value (or fail showing the last)."""
    deadline = time.monotonic() + 10
    while (seen := agent.metric(name, **labels)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert seen == expected, f"{name}{labels} is {seen}, expected {expected}"


def test_each_server_name_reaches_its_own_listeners_node_with_that_listeners_proxy_header(
    tls_nodes: Callable[[str], TlsBackend], edge: Callable[..., EdgeProcess]
) -> None:
    shop, blog, rest = tls_nodes("shop-node"), tls_nodes("blog-node"), tls_nodes("rest-node")
    port = free_port()
    edge(
        {
            "listeners": [
                sharer("shop", port, shop.port, "shop.example.com"),
                sharer("blog", port, blog.port, "blog.example.com", proxy_protocol="v1"),
                sharer("rest", port, rest.port, "*.example.com", sni_default=True),
            ]
        }
    )

    answers = {name: tls_request(port, name).text for name in ("shop.example.com", "BLOG.example.com")}
    answers["www.example.com"] = tls_request(port, "www.example.com").text
    answers["other.net"] = tls_request(port, "other.net").text
    answers["(none)"] = tls_request(port, None).text

    assert answers == {
        "shop.example.com": "shop-node shop.example.com hello\n",
        # routed in any case; the node sees the client's bytes untouched
        "BLOG.example.com": "blog-node BLOG.example.com hello\n",
        "www.example.com": "rest-node www.example.com hello\n",  # the wildcard
        "other.net": "rest-node other.net hello\n",  # nobody's name: the default
        "(none)": "rest-node None hello\n",  # no SNI: the default
    }
    assert [header.version for header in (*shop.headers, *blog.headers)] == [2, 1]
    assert dict(shop.headers[0].tlvs)[PP2_TYPE_AUTHORITY] == b"shop.example.com"
    assert all(header.source is not None and header.source[0] == "127.0.0.1" for header in rest.headers)


def test_without_a_default_an_unknown_or_missing_name_and_plain_bytes_are_reset_and_counted_as_no_route(
    tls_nodes: Callable[[str], TlsBackend], edge: Callable[..., EdgeProcess]
) -> None:
    shop, blog = tls_nodes("shop-node"), tls_nodes("blog-node")
    port = free_port()
    agent = edge(
        {
            "listeners": [
                sharer("shop", port, shop.port, "shop.example.com"),
                sharer("blog", port, blog.port, "blog.example.com"),
            ]
        }
    )

    for server_name in ("other.example.com", None):
        with pytest.raises(ConnectionResetError):
            tls_request(port, server_name)
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(1)

    assert shop.headers == [] and blog.headers == []
    wait_for_metric(
        agent, "anycastlb_connections_rejected_total", 3, listener=f"sni:127.0.0.1:{port}", reason="no_route"
    )
    assert tls_request(port, "shop.example.com").text == "shop-node shop.example.com hello\n"


def test_plain_bytes_go_to_the_default_listener(
    stream_backend: StreamBackend, tls_nodes: Callable[[str], TlsBackend], edge: Callable[..., EdgeProcess]
) -> None:
    shop = tls_nodes("shop-node")
    port = free_port()
    edge(
        {
            "listeners": [
                sharer("shop", port, shop.port, "shop.example.com"),
                sharer("plain", port, stream_backend.port, "plain.example.com", sni_default=True),
            ]
        }
    )

    with connect(port) as sock:
        sock.sendall(b"ECHO\n")
        assert read_line(sock) == b"echo\n"

    assert shop.headers == []
    assert PP2_TYPE_AUTHORITY not in dict(stream_backend.headers[0].tlvs)


def test_a_client_hello_split_over_two_segments_is_routed_by_its_name_and_an_unfinished_one_as_no_name(
    edge: Callable[..., EdgeProcess],
) -> None:
    port = free_port()
    with StreamBackend() as named, StreamBackend() as default:
        edge(
            {
                "listeners": [
                    sharer("named", port, named.port, "split.example.com", client_hello_wait="1s"),
                    sharer("other", port, default.port, "other.example.com", sni_default=True),
                ]
            }
        )
        hello = client_hello("split.example.com")

        with connect(port) as sock:
            sock.sendall(hello[:40])
            time.sleep(0.1)  # the behaviour under test: the rest comes later, in a second segment
            sock.sendall(hello[40:])
            wait_for_headers(named, 1)
        with connect(port) as sock:
            sock.sendall(hello[:40])  # never finished: after client_hello_wait it goes without a name
            wait_for_headers(default, 1)

    assert dict(named.headers[0].tlvs)[PP2_TYPE_AUTHORITY] == b"split.example.com"
    assert PP2_TYPE_AUTHORITY not in dict(default.headers[0].tlvs)


def test_reloads_that_add_and_remove_sharers_keep_open_connections_and_the_socket(
    stream_backend: StreamBackend, tls_nodes: Callable[[str], TlsBackend], edge: Callable[..., EdgeProcess]
) -> None:
    blog = tls_nodes("blog-node")
    port = free_port()
    plain = sharer("plain", port, stream_backend.port, "plain.example.com", sni_default=True)
    added = sharer("blog", port, blog.port, "blog.example.com")
    agent = edge({"listeners": [plain]})

    def reload(*listeners: dict[str, Any], count: int) -> None:
        agent.write_config({**agent.config, "listeners": list(listeners)})
        agent.signal(signal.SIGHUP)
        agent.wait_for_log("config_applied", count=count)  # both workers

    with connect(port) as sock:
        sock.sendall(b"ECHO\n")
        assert read_line(sock) == b"echo\n"

        reload(plain, added, count=2)
        assert tls_request(port, "blog.example.com").text == "blog-node blog.example.com hello\n"
        sock.sendall(b"after adding\n")  # opened before the reload, on the member it was routed to
        assert read_line(sock) == b"after adding\n"

        reload(added, count=4)  # the member this connection is on goes; the socket stays for blog
        sock.sendall(b"after removing\n")
        assert read_line(sock) == b"after removing\n"
        assert tls_request(port, "blog.example.com").text == "blog-node blog.example.com hello\n"
        with connect(port) as other:
            other.sendall(b"ECHO\n")  # no default any more: a reset
            with pytest.raises(ConnectionResetError):
                other.recv(1)


def test_each_sharer_counts_exactly_its_own_bytes(
    tls_nodes: Callable[[str], TlsBackend], edge: Callable[..., EdgeProcess]
) -> None:
    shop, blog = tls_nodes("shop-node"), tls_nodes("blog-node")
    port = free_port()
    agent = edge(
        {
            "listeners": [
                sharer("shop", port, shop.port, "shop.example.com"),
                sharer("blog", port, blog.port, "blog.example.com"),
            ]
        }
    )

    shop_answers = [tls_request(port, "shop.example.com", line=b"a" * 1000 + b"\n") for _ in range(3)]
    blog_answer = tls_request(port, "blog.example.com")

    for name, answers in (("shop", shop_answers), ("blog", [blog_answer])):
        wait_for_metric(agent, "anycastlb_connections_total", len(answers), listener=name)
        wait_for_metric(
            agent,
            "anycastlb_bytes_total",
            sum(answer.sent for answer in answers),
            listener=name,
            direction="client_to_backend",
        )
        wait_for_metric(
            agent,
            "anycastlb_bytes_total",
            sum(answer.received for answer in answers),
            listener=name,
            direction="backend_to_client",
        )
    # the group's own series counts only connections no member got: here the fixture's readiness
    # probes (a connect per listener, closed without a byte)
    wait_for_metric(agent, "anycastlb_connections_total", 2, listener=f"sni:127.0.0.1:{port}")


def test_a_members_own_limits_apply_once_routed_and_refuse_only_its_connections(
    stream_backend: StreamBackend, tls_nodes: Callable[[str], TlsBackend], edge: Callable[..., EdgeProcess]
) -> None:
    shop = tls_nodes("shop-node")
    port = free_port()
    agent = edge(
        {
            "listeners": [
                sharer(
                    "limited", port, stream_backend.port, "limited.example.com", max_connections_per_source=1
                ),
                sharer("shop", port, shop.port, "shop.example.com"),
            ]
        }
    )
    hello = client_hello("limited.example.com")

    with connect(port) as first:
        first.sendall(hello)
        wait_for_headers(stream_backend, 1)  # routed to "limited": its one connection from this source
        with connect(port) as second:
            second.sendall(hello)
            with pytest.raises(ConnectionResetError):
                second.recv(1)
        # the other member's limits are its own: the same source still gets through to shop
        assert tls_request(port, "shop.example.com").text == "shop-node shop.example.com hello\n"

    wait_for_metric(
        agent, "anycastlb_connections_rejected_total", 1, listener="limited", reason="source_limit"
    )
    assert len(stream_backend.headers) == 1
