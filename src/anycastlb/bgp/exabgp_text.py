"""ExaBGP's configuration file and its text API, as pure functions (golden-tested, no process).

The API is a line protocol over the stdin/stdout of a process ExaBGP starts (``process`` in its
config): we write ``announce route ...`` / ``withdraw route ...`` lines, ExaBGP acks each with
``done`` or ``error`` on that process's stdin and, with ``neighbor-changes``, reports sessions going
``up``, ``connected`` or ``down``.
"""

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from anycastlb.bgp.policy import Announcement, Prefix
from anycastlb.model.addresses import parse_address
from anycastlb.model.bgp import BgpConfig

__all__ = [
    "EXABGP_ENVIRONMENT",
    "Ack",
    "SessionChange",
    "announce_line",
    "parse_api_line",
    "render_config",
    "withdraw_line",
]

EXABGP_ENVIRONMENT = {
    # Without it ExaBGP drops to user nobody, the API process dies, and ExaBGP silently stops the
    # neighbour without exiting (seen with 5.0.15).
    "exabgp_daemon_user": "root",
    "exabgp_daemon_drop": "false",
    # Else two instances on one machine share the CLI's named pipes.
    "exabgp_api_cli": "false",
    "exabgp_api_ack": "true",
    "exabgp_log_destination": "stdout",
    "exabgp_log_level": "INFO",
    "exabgp_daemon_daemonize": "false",
}


def render_config(config: BgpConfig, api_command: Sequence[str]) -> str:
    """The ``exabgp.conf`` for a PoP: one neighbour per peer, all fed by our API process."""
    run = " ".join(shlex.quote(part) for part in api_command)
    lines = ["process anycastlb {", f"    run {run};", "    encoder text;", "}", ""]
    for peer in config.peers:
        lines += [
            f"neighbor {peer.address} {{",
            f"    router-id {config.router_id};",
            f"    local-as {config.local_as};",
            f"    peer-as {peer.remote_as};",
            f"    hold-time {int(peer.hold_time)};",
        ]
        if peer.local_address is not None:
            lines.append(f"    local-address {peer.local_address};")
        lines += [
            "    family {",
            "        ipv4 unicast;",
            "        ipv6 unicast;",
            "    }",
            "    api {",
            "        processes [ anycastlb ];",
            "        neighbor-changes;",
            "    }",
            "}",
            "",
        ]
    return "\n".join(lines)


def announce_line(announcement: Announcement, local_as: int) -> str:
    """``announce route``: next hop, MED, communities and prepends as the attributes say."""
    attributes = announcement.attributes
    parts = [f"announce route {announcement.prefix} next-hop {attributes.next_hop}"]
    if attributes.med is not None:
        parts.append(f"med {attributes.med}")
    if attributes.communities:
        parts.append(f"community [ {' '.join(attributes.communities)} ]")
    if attributes.as_path_prepend:
        # ExaBGP adds the local AS itself on eBGP; these are the extra copies.
        parts.append(f"as-path [ {' '.join([str(local_as)] * attributes.as_path_prepend)} ]")
    return " ".join(parts)


def withdraw_line(prefix: Prefix) -> str:
    """``withdraw route``: a withdrawal needs no next hop."""
    return f"withdraw route {prefix}"


@dataclass(frozen=True, slots=True)
class Ack:
    """ExaBGP's answer to the last command: ``done`` or ``error``."""

    ok: bool


@dataclass(frozen=True, slots=True)
class SessionChange:
    """A neighbour's session went ``up``, ``connected`` (TCP only) or ``down`` (with a reason)."""

    peer: ipaddress.IPv4Address | ipaddress.IPv6Address
    state: str
    reason: str = ""


_NEIGHBOR = re.compile(r"^neighbor (?P<peer>\S+) (?P<state>up|down|connected)\b\s*(?P<reason>.*)$")


def parse_api_line(line: str) -> Ack | SessionChange | None:
    """One line ExaBGP wrote to our process; None for lines we do not use."""
    text = line.strip()
    if text in ("done", "error"):
        return Ack(ok=text == "done")
    match = _NEIGHBOR.match(text)
    if match is None:
        return None
    try:
        peer = parse_address(match.group("peer"))
    except ValueError:
        return None
    return SessionChange(peer, match.group("state"), match.group("reason").strip(" -"))
