"""nginx behind the edge logs the real client address, for PROXY v1 and v2, IPv4 and IPv6."""

import http.client
import socket
from collections.abc import Callable

import pytest

from anycastlb.lab.nginx import NginxBackend
from tests.integration.conftest import listener
from tests.support.edge import EdgeProcess


def get(host: str, port: int, source: str | None = None) -> str:
    connection = http.client.HTTPConnection(
        host, port, timeout=5, source_address=(source, 0) if source else None
    )
    connection.request("GET", "/", headers={"Connection": "close"})
    body = connection.getresponse().read().decode()
    connection.close()
    return body


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_sees_the_ipv4_client_address_not_the_edges(
    version: str, nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    web = listener("web", [("127.0.0.1", node.port)], proxy_protocol=version)
    edge({"listeners": [web]})

    body = get("127.0.0.1", web["port"], source="127.0.0.55")

    assert body == "node=node-a client=127.0.0.55\n"
    assert node.log_lines()[-1] == "127.0.0.55 /"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_sees_an_ipv6_client_even_when_the_backend_is_reached_over_ipv4(
    version: str, nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    node = nginx("node-a")
    web = listener("web6", [("127.0.0.1", node.port)], address="::1", proxy_protocol=version)
    edge({"listeners": [web]})

    body = get("::1", web["port"])

    assert body == "node=node-a client=::1\n"
    assert node.log_lines()[-1] == "::1 /"


def test_an_ipv6_backend_receives_the_ipv4_client_address(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    node = nginx("node-a")
    web = listener("web", [("::1", node.port)], proxy_protocol="v2")
    edge({"listeners": [web]})

    assert get("127.0.0.1", web["port"], source="127.0.0.66") == "node=node-a client=127.0.0.66\n"


def test_requests_spread_over_nodes_and_each_client_sticks_to_one(
    nginx: Callable[..., NginxBackend], edge: Callable[..., EdgeProcess]
) -> None:
    nodes = [nginx(f"node-{letter}") for letter in "abc"]
    web = listener("web", [("127.0.0.1", node.port) for node in nodes])
    edge({"listeners": [web]})

    chosen: dict[str, set[str]] = {}
    for client in range(2, 62):
        source = f"127.0.1.{client}"
        for _ in range(2):
            body = get("127.0.0.1", web["port"], source=source)
            chosen.setdefault(source, set()).add(body.split()[0])

    assert all(len(nodes_seen) == 1 for nodes_seen in chosen.values()), "a client moved between nodes"
    per_node = [sum(1 for seen in chosen.values() if f"node={n.name}" in seen) for n in nodes]
    assert all(count >= 8 for count in per_node), f"60 clients spread badly over 3 nodes: {per_node}"
