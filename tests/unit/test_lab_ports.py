"""free_port: a port nobody listens on, never twice from one process, and only the share of ports
of this pytest-xdist worker (ANYCASTLB_PORT_SHARD), so two workers never race for one."""

import socket

import pytest

from anycastlb.lab.ports import free_port


def test_a_free_port_can_be_bound_and_is_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[0]))


@pytest.mark.parametrize("shard", range(3))
def test_a_shard_gets_only_its_own_ports(monkeypatch: pytest.MonkeyPatch, shard: int) -> None:
    monkeypatch.setenv("ANYCASTLB_PORT_SHARD", f"{shard}/3")
    assert {(free_port() // 2) % 3 for _ in range(20)} == {shard}


@pytest.mark.parametrize("text", ["2/2", "x/2", "1", "-1/2"])
def test_a_malformed_shard_is_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("ANYCASTLB_PORT_SHARD", text)
    with pytest.raises(ValueError, match="ANYCASTLB_PORT_SHARD"):
        free_port()
