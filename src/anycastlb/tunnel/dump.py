"""``wg show INTERFACE dump`` parsed into per-peer numbers (pure).

The first line describes the interface and holds its private key: it is skipped, never kept. Each
further line is one peer, tab-separated: public key, preshared key, endpoint, allowed IPs, latest
handshake (Unix seconds, 0 = never), bytes received, bytes sent, persistent keepalive.
"""

from dataclasses import dataclass

__all__ = ["PeerStats", "parse_dump"]

_PEER_FIELDS = 8


@dataclass(frozen=True)
class PeerStats:
    public_key: str
    endpoint: str | None  # where the peer's packets come from (a node's NATed address), if known
    latest_handshake: int  # Unix seconds; 0: no handshake yet
    received_bytes: int
    sent_bytes: int


def parse_dump(text: str) -> list[PeerStats]:
    """The peers of a dump; raises ValueError on a line that is not a dump line."""
    peers = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        fields = line.split("\t")
        if len(fields) != _PEER_FIELDS:
            raise ValueError(f"wg dump line {number} has {len(fields)} fields, expected {_PEER_FIELDS}")
        endpoint = None if fields[2] == "(none)" else fields[2]
        peers.append(PeerStats(fields[0], endpoint, int(fields[4]), int(fields[5]), int(fields[6])))
    return peers
