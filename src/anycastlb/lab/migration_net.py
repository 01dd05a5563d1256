"""The provider-migration lab's network as data: one PoP, provider A's LAN, provider B behind NAT.

::

    PoP (edge, control plane, controller, clients on its loopback)
     ├── br-a  10.51.0.1/24 ── a1 a2 a3       provider A: old nodes, on the PoP's own LAN (direct)
     └── provb 10.61.0.1/30 ── NAT router (provb) 10.61.0.2
                                 └── br-b 10.52.0.1/24 ── b1 b2 b3   provider B: new nodes, behind NAT

Every box is a network namespace named ``<lab>-<role>``. The PoP reaches provider A's nodes on a
connected subnet. Provider B's nodes sit behind a router that masquerades them (nftables) and the
PoP has no route to 10.52.0.0/24: it cannot open a connection to them, as a PoP cannot reach nodes
on a private network at another provider. They dial out to the PoP's tunnel endpoint
(:attr:`MigrationNetwork.tunnel_endpoint`) over WireGuard, and the PoP reaches them at their tunnel
addresses only. Nodes come and go during a run, so the plan is split:
:meth:`MigrationNetwork.base_commands` builds the PoP and the router, and
:meth:`MigrationNetwork.node_commands` plugs one node in (its namespace is deleted to unplug it).

No I/O here: the commands are golden-tested and applied by :mod:`anycastlb.lab.migration_lab`.
"""

import re
from dataclasses import dataclass

__all__ = ["PROVIDER_A", "PROVIDER_B", "TUNNEL_LABEL", "TUNNEL_RANGE", "LabNodeSpec", "MigrationNetwork"]

PROVIDER_A = "a"
PROVIDER_B = "b"
_LAB_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")
_SUBNETS = {PROVIDER_A: "10.51.0", PROVIDER_B: "10.52.0"}
_TRANSIT_POP, _TRANSIT_ROUTER = "10.61.0.1", "10.61.0.2"
_MAX_NODES = 200
TUNNEL_LABEL = "anycastlb.io/tunnel"  # the lab's Node label for "reach me through my tunnel"
TUNNEL_RANGE = "100.64.0.0/10"  # the control plane's default tunnel range: the PoPs' tunnel addresses


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

    @property
    def tunnelled(self) -> bool:
        """Whether the PoP reaches this node only through its tunnel (provider B: behind NAT)."""
        return self.provider == PROVIDER_B

    @property
    def labels(self) -> dict[str, str]:
        """The Node object's labels: the tunnelled ones carry :data:`TUNNEL_LABEL`."""
        found = {"kubernetes.io/hostname": self.name}
        if self.tunnelled:
            found[TUNNEL_LABEL] = "true"
        return found

    @property
    def trusted(self) -> str:
        """Where the node's nginx accepts PROXY headers from: the PoP's address on provider A's
        LAN, or its tunnel address (in :data:`TUNNEL_RANGE`) for a tunnelled node."""
        return TUNNEL_RANGE if self.tunnelled else f"{_SUBNETS[PROVIDER_A]}.1"


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
    def tunnel_endpoint(self) -> str:
        """The PoP's address provider B's nodes dial (through the NAT) for their tunnels."""
        return _TRANSIT_POP

    def base_commands(self) -> list[list[str]]:
        """``ip`` arguments that build the PoP, provider A's bridge, the NAT router and provider B's
        bridge. The PoP gets no route to provider B: only the nodes' tunnels cross the NAT."""
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
            ["netns", "exec", router, "nft", _NAT_RULES.replace("SUBNET", f"{_SUBNETS[PROVIDER_B]}.0/24")],
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


# Provider B's nodes leave through the router under its transit address, as from a private network.
_NAT_RULES = (
    "add table ip lab; "
    "add chain ip lab post { type nat hook postrouting priority 100; }; "
    'add rule ip lab post oifname "pop" ip saddr SUBNET masquerade'
)


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
