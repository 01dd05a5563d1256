"""The provider-migration lab's network as data: one PoP, provider A's LAN, provider B behind a router.

::

    PoP (edge, control plane, controller, clients on its loopback)
     ├── br-a  10.51.0.1/24 ── a1 a2 a3       provider A: old nodes, on the PoP's own LAN (direct)
     └── provb 10.61.0.1/30 ── router (provb) 10.61.0.2
                                 └── br-b 10.52.0.1/24 ── b1 b2 b3   provider B: new nodes, routed

Every box is a network namespace named ``<lab>-<role>``. The PoP reaches provider A's nodes on a
connected subnet and provider B's only through the router (a route for 10.52.0.0/24 via 10.61.0.2),
as a PoP reaches a cluster in another provider's network. Nodes come and go during a run, so the
plan is split: :meth:`MigrationNetwork.base_commands` builds the PoP and the router, and
:meth:`MigrationNetwork.node_commands` plugs one node in (its namespace is deleted to unplug it).

How a PoP reaches a node is one function, :func:`routed_address`: the backend address the edge
connects to, today the address the Node object advertises. Nodes reached through a WireGuard
tunnel change only that function (to the node's tunnel address) and the router hop.
No I/O here: the commands are golden-tested and applied by :mod:`anycastlb.lab.migration_lab`.
"""

import re
from dataclasses import dataclass

__all__ = ["PROVIDER_A", "PROVIDER_B", "LabNodeSpec", "MigrationNetwork", "routed_address"]

PROVIDER_A = "a"
PROVIDER_B = "b"
_LAB_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")
_SUBNETS = {PROVIDER_A: "10.51.0", PROVIDER_B: "10.52.0"}
_TRANSIT_POP, _TRANSIT_ROUTER = "10.61.0.1", "10.61.0.2"
_MAX_NODES = 200


@dataclass(frozen=True)
class LabNodeSpec:
    """A worker node: ``provider`` a (the old network) or b (the new one), numbered from 1."""

    provider: str
    index: int

    def __post_init__(self) -> None:
        if self.provider not in _SUBNETS:
            raise ValueError(f"provider {self.provider!r} must be {PROVIDER_A!r} or {PROVIDER_B!r}")
        if not 1 <= self.index <= _MAX_NODES:
            raise ValueError(f"node index {self.index} must be 1-{_MAX_NODES}")

    @property
    def name(self) -> str:
        """The Kubernetes Node name and the switch port: ``a1``, ``b3``."""
        return f"{self.provider}{self.index}"

    @property
    def address(self) -> str:
        """The node's own address in its provider's network."""
        return f"{_SUBNETS[self.provider]}.{10 + self.index}"


def routed_address(node: LabNodeSpec) -> str:
    """The backend address the PoP connects to for ``node`` today: the address its Node object
    advertises (reached directly, or through the router).

    This is the seam for tunnels: once the controller substitutes a node's tunnel address, the
    function passed to :class:`~anycastlb.lab.migration.Migration` as ``reach`` returns that
    address for provider B's nodes, and the lab's router hop gives way to the tunnel."""
    return node.address


@dataclass(frozen=True)
class MigrationNetwork:
    """Names and addresses of one migration lab; ``name`` prefixes every namespace."""

    name: str = "mig"

    def __post_init__(self) -> None:
        if not _LAB_NAME.match(self.name):
            raise ValueError(
                f"lab name {self.name!r} must be 1-10 lowercase letters or digits, starting with a letter"
            )

    @property
    def pop(self) -> str:
        return f"{self.name}-pop"

    @property
    def router(self) -> str:
        return f"{self.name}-provb"

    def node_namespace(self, node: LabNodeSpec) -> str:
        return f"{self.name}-{node.name}"

    @property
    def trusted(self) -> str:
        """Where the nodes accept PROXY headers from: the PoP's addresses in both networks."""
        return "10.0.0.0/8"

    def base_commands(self) -> list[list[str]]:
        """``ip`` arguments that build the PoP, provider A's bridge, the router and provider B's bridge."""
        pop, router = self.pop, self.router
        commands: list[list[str]] = []
        for ns, forward in ((pop, False), (router, True)):
            commands += _namespace(ns, forward)
        commands += [
            ["-n", pop, "link", "add", "br-a", "type", "bridge"],
            ["-n", pop, "addr", "add", f"{_SUBNETS[PROVIDER_A]}.1/24", "dev", "br-a"],
            ["-n", pop, "link", "set", "br-a", "up"],
            ["-n", router, "link", "add", "br-b", "type", "bridge"],
            ["-n", router, "addr", "add", f"{_SUBNETS[PROVIDER_B]}.1/24", "dev", "br-b"],
            ["-n", router, "link", "set", "br-b", "up"],
            ["-n", pop, "link", "add", "provb", "type", "veth", "peer", "name", "pop", "netns", router],
            ["-n", pop, "addr", "add", f"{_TRANSIT_POP}/30", "dev", "provb"],
            ["-n", pop, "link", "set", "provb", "up"],
            ["-n", router, "addr", "add", f"{_TRANSIT_ROUTER}/30", "dev", "pop"],
            ["-n", router, "link", "set", "pop", "up"],
            ["-n", pop, "route", "add", f"{_SUBNETS[PROVIDER_B]}.0/24", "via", _TRANSIT_ROUTER],
        ]
        return commands

    def node_commands(self, node: LabNodeSpec) -> list[list[str]]:
        """``ip`` arguments that create ``node``'s namespace and plug it into its provider's bridge
        (provider A's in the PoP, provider B's in the router), with a default route to that side."""
        ns = self.node_namespace(node)
        switch, bridge = (self.pop, "br-a") if node.provider == PROVIDER_A else (self.router, "br-b")
        return [
            *_namespace(ns, forward=False),
            ["-n", switch, "link", "add", node.name, "type", "veth", "peer", "name", "eth0", "netns", ns],
            ["-n", switch, "link", "set", node.name, "master", bridge],
            ["-n", switch, "link", "set", node.name, "up"],
            ["-n", ns, "addr", "add", f"{node.address}/24", "dev", "eth0"],
            ["-n", ns, "link", "set", "eth0", "up"],
            ["-n", ns, "route", "add", "default", "via", f"{_SUBNETS[node.provider]}.1"],
        ]


def _namespace(ns: str, forward: bool) -> list[list[str]]:
    """A namespace with loopback up and rp_filter off (asymmetric lab paths are never dropped)."""
    sysctls = ["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
    if forward:
        sysctls.append("net.ipv4.ip_forward=1")
    return [
        ["netns", "add", ns],
        ["netns", "exec", ns, "sysctl", "-q", "-w", *sysctls],
        ["-n", ns, "link", "set", "lo", "up"],
    ]
