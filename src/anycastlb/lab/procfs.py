"""Reading ``/proc`` text: routes and listening sockets of a namespace, a process's state. Pure parsers.

``/proc/PID/net/*`` shows the network namespace of PID, so the lab can watch the router's routing
table (every 2 ms, for failover timing) or see whether a node listens without entering a namespace.
"""

import ipaddress
import socket
import struct
from dataclasses import dataclass

__all__ = ["ProcStat", "next_hop", "parse_stat", "tcp_listeners"]

_TCP_LISTEN = "0A"


def _hex_ipv4(text: str) -> str:
    """``0A0012C6`` (little-endian, as the kernel prints it) → ``198.18.0.10``."""
    return socket.inet_ntoa(struct.pack("<I", int(text, 16)))


def next_hop(route_table: str, destination: str) -> str | None:
    """The gateway of the main-table host route to ``destination`` in ``/proc/net/route`` text.

    None if there is no such route (only a /32 counts: the VIP is announced as a host route).
    """
    wanted = ipaddress.IPv4Address(destination)
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        if _hex_ipv4(fields[1]) == str(wanted) and fields[7] == "FFFFFFFF":
            gateway = _hex_ipv4(fields[2])
            return None if gateway == "0.0.0.0" else gateway
    return None


def tcp_listeners(tcp_table: str) -> set[tuple[str, int]]:
    """(address, port) of every listening IPv4 socket in ``/proc/net/tcp`` text."""
    listening = set()
    for line in tcp_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != _TCP_LISTEN:
            continue
        address, port = fields[1].split(":")
        listening.add((_hex_ipv4(address), int(port, 16)))
    return listening


@dataclass(frozen=True)
class ProcStat:
    state: str  # R, S, D, Z, ...
    ppid: int
    start_time: int  # clock ticks after boot: with the pid, identifies one process for its lifetime


def parse_stat(text: str) -> ProcStat:
    """``/proc/PID/stat``; the command name may hold spaces and parentheses: split after the last ')'."""
    fields = text.rsplit(")", 1)[1].split()
    return ProcStat(state=fields[0], ppid=int(fields[1]), start_time=int(fields[19]))
