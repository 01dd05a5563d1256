"""What the ACME lab observed, as data, and the pure readers that get it from logs and metrics.

The evidence is read where an operator would look: the node's nginx access log (what nginx
believed about each request once it had parsed the PROXY header), the edge's ``/metrics`` page
(connections per listener, backend health), and the JSON the ACME and TLS clients print.
"""

from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "AccessLine",
    "AcmeRun",
    "Issued",
    "Probed",
    "backend_up",
    "connections",
    "parse_access_log",
]


@dataclass(frozen=True)
class AccessLine:
    """One line of the node's ``edge`` log format: ``$remote_addr $realip_remote_addr $server_port
    $status $request_uri``: the client address from the PROXY header, then the TCP peer (the PoP)."""

    client: str
    peer: str
    port: int
    status: int
    uri: str


def parse_access_log(text: str) -> list[AccessLine]:
    lines = []
    for raw in text.splitlines():
        fields = raw.split(" ", 4)
        if len(fields) != 5 or not fields[2].isdigit() or not fields[3].isdigit():
            raise ValueError(f"not a line of the node's access log format: {raw!r}")
        lines.append(AccessLine(fields[0], fields[1], int(fields[2]), int(fields[3]), fields[4]))
    return lines


def _samples(metrics: str, name: str, listener: str) -> list[float]:
    return [
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == name and sample.labels.get("listener") == listener
    ]


def connections(metrics: str, listener: str) -> int:
    """Client connections the listener accepted (``anycastlb_connections_total``); 0 before any."""
    return int(sum(_samples(metrics, "anycastlb_connections_total", listener)))


def backend_up(metrics: str, listener: str) -> bool:
    """True once every backend of the listener is up (the lab's listeners have one each)."""
    values = _samples(metrics, "anycastlb_backend_up", listener)
    return bool(values) and all(value >= 1 for value in values)


@dataclass(frozen=True)
class Issued:
    """The ACME client's account of the order, plus the requests for its tokens the node logged."""

    domain: str
    tokens: tuple[str, ...]
    san: tuple[str, ...]
    issuer: str
    leaf_sha256: str
    chain_length: int
    seconds: float
    challenge_requests: tuple[AccessLine, ...]
    http_connections: int  # VIP:80 connections the edge accepted during the order

    @classmethod
    def from_client(
        cls, data: dict[str, Any], challenge_requests: list[AccessLine], http_connections: int
    ) -> "Issued":
        return cls(
            domain=str(data["domain"]),
            tokens=tuple(str(token) for token in data["tokens"]),
            san=tuple(str(name) for name in data["san"]),
            issuer=str(data["issuer"]),
            leaf_sha256=str(data["leaf_sha256"]),
            chain_length=int(data["chain_length"]),
            seconds=float(data["seconds"]),
            challenge_requests=tuple(challenge_requests),
            http_connections=http_connections,
        )


@dataclass(frozen=True)
class Probed:
    """The TLS client's account of VIP:443: verified against pebble's root, with SNI = the domain."""

    verified: bool
    tls_version: str
    san: tuple[str, ...]
    leaf_sha256: str
    body: str
    https_connections: int  # VIP:443 connections the edge accepted during the probe

    @classmethod
    def from_client(cls, data: dict[str, Any], https_connections: int) -> "Probed":
        return cls(
            verified=bool(data["verified"]),
            tls_version=str(data["tls_version"]),
            san=tuple(str(name) for name in data["san"]),
            leaf_sha256=str(data["leaf_sha256"]),
            body=str(data["body"]),
            https_connections=https_connections,
        )


@dataclass(frozen=True)
class AcmeRun:
    """One run of the whole flow, with the addresses needed to judge it."""

    domain: str
    vip: str
    client_address: str  # pebble's (and the TLS client's) address: what the node must log
    pop_address: str  # the PoP's cluster address: the TCP peer the node must see
    issued: Issued
    probed: Probed
