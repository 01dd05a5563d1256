"""The PoP's guard on its tunnel interfaces: nodes answer the PoP, they never open anything on it.

Why: a node is a tenant's machine. WireGuard already refuses a packet whose inner source is not
the sending peer's tunnel address, but it lets a peer send to any destination: a node's operator
can point every route at the PoP's interface. Without a guard such a node could connect to
whatever listens on the PoP (its BGP speaker, BFD, a metrics port bound to every address) and,
on a PoP that forwards packets, reach the PoP's own networks and other tenants' nodes through
their tunnels. The PoP itself only ever *opens* connections through a tunnel (health checks and
the relayed client connections, all TCP), so the rules need no connection tracking (which would
then track every client connection of the PoP too):

- input from a tunnel interface: a TCP segment that opens a connection (SYN without ACK) is
  dropped, and so is everything that is neither TCP nor ICMP (the data plane relays no UDP; ICMP
  carries the errors and "fragmentation needed" of the PoP's own connections);
- nothing is forwarded into or out of a tunnel interface.

One nftables table of its own (``inet anycastlb_tunnels``), replaced whole at each change in one
``nft -f`` transaction and deleted when the last interface goes: it adds drops only and never
touches another table, so the host's own firewall keeps working as it was. :func:`guard_ruleset`
is pure; :class:`TunnelGuard` runs ``nft``.
"""

import logging
import re
import subprocess
from collections.abc import Collection

from anycastlb.tunnel.interface import TunnelError, tool

__all__ = ["GUARD_TABLE", "GuardError", "TunnelGuard", "guard_ruleset"]

log = logging.getLogger("anycastlb.tunnel")

GUARD_TABLE = "anycastlb_tunnels"
_INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.=+-]{1,15}$")  # what the model allows, quoted anyway


class GuardError(TunnelError):
    """The guard could not be installed; the message says why and what to install or check."""


def guard_ruleset(interfaces: Collection[str]) -> str:
    """The ``nft -f`` script that makes the guard cover exactly ``interfaces`` (none: no table)."""
    for name in interfaces:
        if not _INTERFACE_NAME.match(name):
            raise GuardError(f"interface name {name!r} cannot be written into an nftables rule")
    # "add" first so that "delete" never fails: the whole script is one transaction
    lines = [f"add table inet {GUARD_TABLE}", f"delete table inet {GUARD_TABLE}"]
    if not interfaces:
        return "\n".join(lines) + "\n"
    names = ", ".join(f'"{name}"' for name in sorted(interfaces))
    lines += [
        f"table inet {GUARD_TABLE} {{",
        "  set interfaces {",
        "    type ifname",
        f"    elements = {{ {names} }}",
        "  }",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        "    iifname @interfaces tcp flags & (syn | ack) == syn counter drop"
        ' comment "a node opening a connection"',
        "    iifname @interfaces meta l4proto != { tcp, icmp, ipv6-icmp } counter drop"
        ' comment "not TCP or ICMP"',
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        '    iifname @interfaces counter drop comment "routed from a tunnel"',
        '    oifname @interfaces counter drop comment "routed into a tunnel"',
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


class TunnelGuard:
    """Keeps the guard's table equal to the running tunnel interfaces of this network namespace."""

    def __init__(self) -> None:
        self.interfaces: frozenset[str] | None = None  # None: never applied (or removed)

    def apply(self, interfaces: Collection[str]) -> None:
        """Install the rules for ``interfaces`` (before they are created: no unguarded moment)."""
        wanted = frozenset(interfaces)
        if wanted == self.interfaces:
            return
        self._run(guard_ruleset(wanted))
        self.interfaces = wanted
        log.info("tunnel_guard_applied table=inet/%s interfaces=%d", GUARD_TABLE, len(wanted))

    def remove(self) -> None:
        """Delete the table (the interfaces are gone)."""
        if self.interfaces is None:
            return
        try:
            self._run(guard_ruleset(()))
        except GuardError as error:
            log.error("tunnel_guard_remove_failed error=%r", str(error))
            return
        self.interfaces = None
        log.info("tunnel_guard_removed table=inet/%s", GUARD_TABLE)

    @staticmethod
    def _run(script: str) -> None:
        try:
            nft = tool("nft")
        except TunnelError as error:
            raise GuardError(f"{error} (the PoP guards its tunnel interfaces with nftables)") from None
        try:
            done = subprocess.run(
                [nft, "-f", "-"], input=script, capture_output=True, text=True, timeout=10, check=False
            )
        except subprocess.TimeoutExpired:
            raise GuardError("nft did not finish within 10 s") from None
        if done.returncode != 0:
            raise GuardError(
                f"nft refused the tunnel guard (needs CAP_NET_ADMIN and nf_tables): {done.stderr.strip()}"
            )
