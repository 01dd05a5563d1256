"""Fixtures that start real peers: nginx backends, the PROXY-aware stream backend, the edge agent."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.ports import free_port
from tests.support.edge import EdgeProcess
from tests.support.peers import NGINX, require
from tests.support.stream_backend import StreamBackend

pytestmark = pytest.mark.integration


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[..., NginxBackend]]:
    require(NGINX)
    started: list[NginxBackend] = []

    def start(name: str, **kwargs: Any) -> NginxBackend:
        backend = NginxBackend(tmp_path, name, **kwargs).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def stream_backend() -> Iterator[StreamBackend]:
    with StreamBackend() as backend:
        yield backend


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Callable[..., EdgeProcess]]:
    started: list[EdgeProcess] = []

    def start(config: dict[str, Any], preload: str | None = None) -> EdgeProcess:
        process = EdgeProcess(tmp_path, config, preload).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def listener(
    name: str, backends: list[tuple[str, int]], address: str = "127.0.0.1", **extra: Any
) -> dict[str, Any]:
    """A listener block for edge.yaml on a fresh port."""
    return {
        "name": name,
        "address": address,
        "port": free_port(),
        "proxy_protocol": "v2",
        "backends": [{"address": host, "port": port} for host, port in backends],
        **extra,
    }
