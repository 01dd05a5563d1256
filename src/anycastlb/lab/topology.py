"""The anycast lab's network as data: namespaces, cables, bridges, addresses. No I/O.

::

    client ──── router (BIRD, AS 65000) ──┐                       10.10.0.0/24 client LAN
                                          │ switch: br-transit     10.20.0.0/24 transit LAN
                              ┌───────────┴───────────┐
                             fra (edge, AS 65001)    par (edge, AS 65001, prepends 2)
                              └───────────┬───────────┘
                                          │ switch: br-cluster     10.30.0.0/24 cluster LAN
                              node1     node2     node3  (nginx, PROXY protocol)

Every box is a network namespace named ``<lab>-<role>``; the two LANs the PoPs share are Linux
bridges in one ``switch`` namespace, so a PoP that dies (or loses its cable) is silent to the router
and to the nodes, as behind a real switch: nobody else loses carrier. Both PoPs have the VIP on
``lo`` and announce it; ``par`` prepends its AS twice, so the router prefers ``fra`` while it
announces (AS-path length decides before MED, and BIRD compares MEDs only between routes from the
same neighbour AS). :meth:`Topology.plan` turns this into the ``ip`` commands that build it.
"""

import re
from dataclasses import dataclass

__all__ = [
    "Cable",
    "LinkEnd",
    "Node",
    "Pop",
    "Topology",
    "ip_commands",
]

VIP = "198.18.0.10"  # RFC 2544 benchmarking range: never routed outside the lab
HTTP_PORT = 80
NODE_PORT = 8080
METRICS_PORT = 9100
ROUTER_AS = 65000
POP_AS = 65001  # one operator, one AS: every PoP announces the VIP from the same AS
_LAB_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_IFNAME_MAX = 15  # IFNAMSIZ - 1


@dataclass(frozen=True)
class Pop:
    """A PoP: its edge peers with the router on the transit LAN and reaches nodes on the cluster LAN."""

    name: str
    transit_address: str
    cluster_address: str
    as_path_prepend: int = 0


@dataclass(frozen=True)
class Node:
    """A worker node: one nginx that speaks the PROXY protocol, as an ingress controller would."""

    name: str
    address: str


@dataclass(frozen=True)
class LinkEnd:
    """One end of a veth pair: which namespace, which interface name, which addresses (CIDR)."""

    namespace: str
    interface: str
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cable:
    """A veth pair; with ``bridge``, end ``b`` is a switch port plugged into that bridge."""

    a: LinkEnd
    b: LinkEnd
    bridge: str | None = None


@dataclass(frozen=True)
class Topology:
    """Names and addresses of one lab. ``name`` prefixes every namespace, so labs can coexist."""

    name: str = "alb"
    pops: tuple[Pop, ...] = (
        Pop("fra", "10.20.0.11", "10.30.0.11", as_path_prepend=0),
        Pop("par", "10.20.0.12", "10.30.0.12", as_path_prepend=2),
    )
    nodes: tuple[Node, ...] = (
        Node("node1", "10.30.0.21"),
        Node("node2", "10.30.0.22"),
        Node("node3", "10.30.0.23"),
    )
    clients: int = 40  # client addresses (Maglev picks the node by client address)
    vip: str = VIP
    router_client_address: str = "10.10.0.1"
    router_transit_address: str = "10.20.0.1"
    cluster_subnet: str = "10.30.0.0/24"
    transit_bridge: str = "br-transit"
    cluster_bridge: str = "br-cluster"
    bfd: bool = True  # router and PoPs run BFD (100 ms x 3): a silent PoP death is seen in ~300 ms

    def __post_init__(self) -> None:
        if not _LAB_NAME.match(self.name):
            raise ValueError(
                f"lab name {self.name!r} must be 1-8 lowercase letters or digits, starting with a letter"
            )
        for pop in self.pops:
            if len(f"{pop.name}-t") > _IFNAME_MAX or not _LAB_NAME.match(pop.name):
                raise ValueError(f"PoP name {pop.name!r} must be 1-8 lowercase letters or digits")
        if not 1 <= self.clients <= 200:
            raise ValueError(f"clients ({self.clients}) must be 1-200 addresses in 10.10.0.0/24")

    # ---- names ---------------------------------------------------------------------------------

    def namespace(self, role: str) -> str:
        return f"{self.name}-{role}"

    @property
    def router(self) -> str:
        return self.namespace("router")

    @property
    def switch(self) -> str:
        return self.namespace("switch")

    @property
    def client(self) -> str:
        return self.namespace("client")

    def pop(self, name: str) -> Pop:
        for pop in self.pops:
            if pop.name == name:
                return pop
        known = ", ".join(p.name for p in self.pops)
        raise KeyError(f"no PoP named {name!r} in the lab (PoPs: {known})")

    def pop_namespace(self, name: str) -> str:
        return self.namespace(self.pop(name).name)

    def node_namespace(self, node: Node) -> str:
        return self.namespace(node.name)

    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of the lab, in the order they are created."""
        return (
            self.router,
            self.switch,
            self.client,
            *(self.namespace(p.name) for p in self.pops),
            *(self.namespace(n.name) for n in self.nodes),
        )

    @property
    def client_addresses(self) -> tuple[str, ...]:
        return tuple(f"10.10.0.{2 + i}" for i in range(self.clients))

    # PoP identities as the nodes see them (the address the edge connects from) and as the router
    # sees them (the next hop of the VIP route).
    def pop_by_cluster_address(self, address: str) -> str | None:
        return next((p.name for p in self.pops if p.cluster_address == address), None)

    def pop_by_transit_address(self, address: str) -> str | None:
        return next((p.name for p in self.pops if p.transit_address == address), None)

    # ---- the network -----------------------------------------------------------------------------

    def cables(self) -> tuple[Cable, ...]:
        """Every veth pair: the client's line to the router, then one switch port per box."""
        cables = [
            Cable(
                LinkEnd(self.router, "client", (f"{self.router_client_address}/24",)),
                LinkEnd(self.client, "uplink", tuple(f"{a}/24" for a in self.client_addresses)),
            ),
            Cable(
                LinkEnd(self.router, "transit", (f"{self.router_transit_address}/24",)),
                LinkEnd(self.switch, "router"),
                self.transit_bridge,
            ),
        ]
        for pop in self.pops:
            ns = self.namespace(pop.name)
            cables += [
                Cable(
                    LinkEnd(ns, "transit", (f"{pop.transit_address}/24",)),
                    LinkEnd(self.switch, f"{pop.name}-t"),
                    self.transit_bridge,
                ),
                Cable(
                    LinkEnd(ns, "cluster", (f"{pop.cluster_address}/24",)),
                    LinkEnd(self.switch, f"{pop.name}-c"),
                    self.cluster_bridge,
                ),
            ]
        for node in self.nodes:
            cables.append(
                Cable(
                    LinkEnd(self.namespace(node.name), "cluster", (f"{node.address}/24",)),
                    LinkEnd(self.switch, node.name),
                    self.cluster_bridge,
                )
            )
        return tuple(cables)

    def sysctls(self, namespace: str) -> tuple[str, ...]:
        """New namespaces copy the host's rp_filter (strict on Debian): off, so asymmetric paths
        (a reply from the VIP, a health check from the cluster LAN) are never dropped. The router
        and the PoPs forward."""
        settings = ["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
        if namespace == self.router or namespace in {self.namespace(p.name) for p in self.pops}:
            settings.append("net.ipv4.ip_forward=1")
        return tuple(settings)

    def default_routes(self) -> tuple[tuple[str, str], ...]:
        """(namespace, gateway): the client and the PoPs reach everything else through the router."""
        routes = [(self.client, self.router_client_address)]
        routes += [(self.namespace(p.name), self.router_transit_address) for p in self.pops]
        return tuple(routes)


def ip_commands(topology: Topology) -> list[list[str]]:
    """The ``ip`` arguments that build the lab from nothing, in order (golden-tested).

    Order matters: sysctls before any interface exists (``default`` applies to new ones), links up
    before routes that use them. Veth ends are created directly inside their namespaces, so no
    interface name ever appears in the host's namespace.
    """
    commands: list[list[str]] = []
    for ns in topology.namespaces():
        commands.append(["netns", "add", ns])
        commands.append(["netns", "exec", ns, "sysctl", "-q", "-w", *topology.sysctls(ns)])
        commands.append(["-n", ns, "link", "set", "lo", "up"])
    for bridge in (topology.transit_bridge, topology.cluster_bridge):
        commands.append(["-n", topology.switch, "link", "add", bridge, "type", "bridge"])
        commands.append(["-n", topology.switch, "link", "set", bridge, "up"])
    for cable in topology.cables():
        a, b = cable.a, cable.b
        veth = ["type", "veth", "peer", "name", b.interface, "netns", b.namespace]
        commands.append(["-n", a.namespace, "link", "add", a.interface, *veth])
        if cable.bridge is not None:
            commands.append(["-n", b.namespace, "link", "set", b.interface, "master", cable.bridge])
        for end in (a, b):
            commands += [
                ["-n", end.namespace, "addr", "add", cidr, "dev", end.interface] for cidr in end.addresses
            ]
            commands.append(["-n", end.namespace, "link", "set", end.interface, "up"])
    for pop in topology.pops:
        commands.append(
            ["-n", topology.namespace(pop.name), "addr", "add", f"{topology.vip}/32", "dev", "lo"]
        )
    for ns, gateway in topology.default_routes():
        commands.append(["-n", ns, "route", "add", "default", "via", gateway])
    return commands
