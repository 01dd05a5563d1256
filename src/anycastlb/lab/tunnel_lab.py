"""A small netns lab for the WireGuard tunnels: a client, a PoP, a NAT, and nodes behind the NAT.

::

    client ──(10.201.0.0/24)── pop ──(10.202.0.0/24, "the Internet")── nat ──┬─ node1 192.168.1.2
      VIP 10.201.9.1 on the pop's lo     pop's tunnel: UDP 10.202.0.1:51820     └─ node2 192.168.2.2

The nodes have private addresses the PoP has no route to (``direct=False``); the NAT masquerades
what the nodes send out, so only they can open a path: each node's ``anycastlb tunnel-agent``
dials the PoP over WireGuard, and the PoP reaches them at their tunnel addresses (100.96.0.1x).
With ``direct=True`` the PoP also gets a route to the nodes through the NAT (the bench compares
that path with the tunnel). Keys come from ``wg genkey`` / ``wg pubkey``.

Everything is named from a ``tag`` (namespaces, and the WireGuard interfaces: wireguard-go's
sockets share one directory per host) so labs of concurrent runs never meet. :meth:`down` stops
every process this lab started and deletes its namespaces, whatever state the lab is in.
"""

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anycastlb.lab.netns import delete_namespace, ip, run_inside
from anycastlb.lab.nodes import LabNode
from anycastlb.lab.processes import ProcessRecord, checkout_env, spawn
from anycastlb.lab.topology import Node
from anycastlb.model.tunnel import NodeTunnelConfig, TunnelInterface
from anycastlb.tunnel.interface import tool

__all__ = ["NODE_PORT", "POP_TUNNEL_ADDRESS", "VIP", "TunnelLab", "wg_keypair"]

VIP = "10.201.9.1"
CLIENT_NET = "10.201.0"
PUBLIC_NET = "10.202.0"
POP_TUNNEL_ADDRESS = "100.96.0.1"
TUNNEL_PORT = 51820
NODE_PORT = 8080
AGENT_METRICS_PORT = 9479  # inside each node's namespace
CLIENT_SOURCES = tuple(f"{CLIENT_NET}.{100 + index}" for index in range(16))


def wg_keypair() -> tuple[str, str]:
    """(private, public) from ``wg genkey`` and ``wg pubkey``."""
    wg = tool("wg")
    private = subprocess.run([wg, "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    public = subprocess.run(
        [wg, "pubkey"], input=private, capture_output=True, text=True, check=True
    ).stdout.strip()
    return private, public


@dataclass
class _LabNodeState:
    name: str
    namespace: str
    private_address: str
    tunnel_address: str
    interface: str
    keys: tuple[str, str]
    version: int = 0
    agent: ProcessRecord | None = None
    nginx: ProcessRecord | None = None
    web: LabNode | None = None


@dataclass
class TunnelLab:
    tag: str  # a few characters, unique on the host (e.g. from the pid)
    workdir: Path
    node_count: int = 2
    direct: bool = False
    nodes: list[_LabNodeState] = field(default_factory=list)
    records: list[ProcessRecord] = field(default_factory=list)
    made: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client, self.pop, self.nat = f"tc{self.tag}", f"tp{self.tag}", f"tn{self.tag}"
        self.pop_interface_name = f"wgp{self.tag}"
        self.pop_keys = wg_keypair()
        self.config_dir = self.workdir / "tunnel-config"
        for index in range(1, self.node_count + 1):
            self.nodes.append(
                _LabNodeState(
                    name=f"node{index}",
                    namespace=f"t{index}{self.tag}",
                    private_address=f"192.168.{index}.2",
                    tunnel_address=f"100.96.0.{10 + index}",
                    interface=f"wg{index}{self.tag}",
                    keys=wg_keypair(),
                )
            )

    # ---- the network -------------------------------------------------------------------------

    def build(self) -> "TunnelLab":
        for namespace in (self.client, self.pop, self.nat, *(node.namespace for node in self.nodes)):
            ip("netns", "add", namespace)
            self.made.append(namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
        self._wire(self.client, "c0", f"{CLIENT_NET}.2/24", self.pop, "p0", f"{CLIENT_NET}.1/24")
        for source in CLIENT_SOURCES:
            ip("-n", self.client, "address", "add", f"{source}/24", "dev", "c0")
        ip("-n", self.client, "route", "add", "default", "via", f"{CLIENT_NET}.1")
        ip("-n", self.pop, "address", "add", f"{VIP}/32", "dev", "lo")
        self._wire(self.pop, "p1", f"{PUBLIC_NET}.1/24", self.nat, "n0", f"{PUBLIC_NET}.2/24")
        for index, node in enumerate(self.nodes, start=1):
            self._wire(
                self.nat,
                f"n{index}",
                f"192.168.{index}.1/24",
                node.namespace,
                "e0",
                f"{node.private_address}/24",
            )
            ip("-n", node.namespace, "route", "add", "default", "via", f"192.168.{index}.1")
        if self.direct:
            ip("-n", self.pop, "route", "add", "192.168.0.0/16", "via", f"{PUBLIC_NET}.2")
        run_inside(self.nat, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        nat_rules = (
            "add table ip lab; "
            "add chain ip lab post { type nat hook postrouting priority 100; }; "
            'add rule ip lab post oifname "n0" masquerade'
        )
        run_inside(self.nat, ["nft", nat_rules])
        return self

    @staticmethod
    def _wire(a: str, a_name: str, a_address: str, b: str, b_name: str, b_address: str) -> None:
        ip("-n", a, "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b)
        ip("-n", a, "address", "add", a_address, "dev", a_name)
        ip("-n", b, "address", "add", b_address, "dev", b_name)
        ip("-n", a, "link", "set", a_name, "up")
        ip("-n", b, "link", "set", b_name, "up")

    # ---- tunnel configs ----------------------------------------------------------------------

    def pop_interface(self) -> TunnelInterface:
        """The PoP's interface: one peer per node, no endpoints (learned from the handshakes)."""
        return TunnelInterface.model_validate(
            {
                "name": self.pop_interface_name,
                "private_key": self.pop_keys[0],
                "addresses": [f"{POP_TUNNEL_ADDRESS}/24"],
                "listen_port": TUNNEL_PORT,
                "peers": [
                    {
                        "name": node.name,
                        "public_key": node.keys[1],
                        "allowed_ips": [f"{node.tunnel_address}/32"],
                    }
                    for node in self.nodes
                ],
            }
        )

    def node_config(self, node: _LabNodeState) -> NodeTunnelConfig:
        """The node's side: one peer, the PoP, dialled at its public address with a keepalive."""
        pop = {
            "name": "pop",
            "public_key": self.pop_keys[1],
            "allowed_ips": [f"{POP_TUNNEL_ADDRESS}/32"],
            "endpoint": f"{PUBLIC_NET}.1:{TUNNEL_PORT}",
            "persistent_keepalive": 25,
        }
        interface = {
            "name": node.interface,
            "private_key": node.keys[0],
            "addresses": [f"{node.tunnel_address}/24"],
            "peers": [pop],
        }
        return NodeTunnelConfig.model_validate(
            {"cluster": "lab", "node": node.name, "version": node.version, "interface": interface}
        )

    def write_node_config(self, node: _LabNodeState) -> None:
        """Write the node's file as the Secret would (a new file swapped in), version + 1."""
        node.version += 1
        self.config_dir.mkdir(parents=True, exist_ok=True)
        path = self.config_dir / f"{node.name}.json"
        staged = path.with_suffix(".tmp")
        staged.write_text(self.node_config(node).model_dump_json())
        staged.chmod(0o600)
        staged.replace(path)

    # ---- processes ---------------------------------------------------------------------------

    def _spawn(
        self, role: str, namespace: str, argv: list[str], env: dict[str, str] | None = None
    ) -> ProcessRecord:
        record = spawn(role, namespace, argv, self.workdir / f"{role}.log", env)
        self.records.append(record)
        return record

    def start_listener(self, namespace: str, address: str, port: int) -> ProcessRecord:
        """A TCP server in ``namespace`` that accepts and closes: what a node must not reach."""
        server = (
            "import socket\n"
            f"s = socket.create_server(({address!r}, {port}))\n"
            "while True:\n"
            "    s.accept()[0].close()\n"
        )
        record = self._spawn(f"listener-{namespace}-{port}", namespace, [sys.executable, "-c", server])
        self.wait(lambda: record.listens_on(address, port), f"the listener on {address}:{port}", record)
        return record

    def start_agent(self, node: _LabNodeState) -> ProcessRecord:
        if node.version == 0:
            self.write_node_config(node)
        argv = [sys.executable, "-m", "anycastlb.cli", "tunnel-agent", "--config-dir", str(self.config_dir)]
        argv += [
            "--node",
            node.name,
            "--poll-interval",
            "0.2",
            "--metrics",
            f"127.0.0.1:{AGENT_METRICS_PORT}",
        ]
        node.agent = self._spawn(f"agent-{node.name}", node.namespace, argv, checkout_env())
        self.wait(
            lambda: self.has_address(node.namespace, node.tunnel_address),
            f"{node.name}'s tunnel address",
            node.agent,
        )
        return node.agent

    def start_nginx(self, node: _LabNodeState) -> ProcessRecord:
        """nginx on 0.0.0.0:8080 (PROXY protocol), trusting headers from the PoP's tunnel address."""
        web = LabNode(self.workdir / "nodes", Node(node.name, "0.0.0.0"), trusted=f"{POP_TUNNEL_ADDRESS}/32")
        conf = web.write_files()
        argv = ["nginx", "-c", str(conf), "-e", str(web.dir / "error.log")]
        node.web = web
        node.nginx = self._spawn(f"nginx-{node.name}", node.namespace, argv)
        self.wait(
            lambda: node.nginx is not None and node.nginx.listens_on("0.0.0.0", NODE_PORT),
            f"{node.name}'s nginx",
            node.nginx,
        )
        return node.nginx

    def edge_config(self, listeners: list[dict[str, Any]], *, tunnels: bool = True) -> dict[str, Any]:
        return {
            "pop": "lab",
            "workers": 1,
            "drain_timeout": "2s",
            "metrics": {"address": "127.0.0.1", "port": 9100},
            "listeners": listeners,
            "tunnels": [self.pop_interface().model_dump(mode="json")] if tunnels else [],
        }

    def start_edge(self, config: dict[str, Any]) -> ProcessRecord:
        path = self.workdir / "edge.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        env = {k: v for k, v in checkout_env().items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        (self.workdir / "edge-tmp").mkdir(exist_ok=True)
        env["TMPDIR"] = str(self.workdir / "edge-tmp")
        argv = [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(path)]
        edge = self._spawn("edge", self.pop, argv, env)
        ports = [int(listener["port"]) for listener in config["listeners"]]
        self.wait(lambda: all(edge.listens_on(VIP, port) for port in ports), "the edge's listeners", edge)
        self.wait(lambda: "edge_started" in self.log("edge"), "edge_started", edge)
        return edge

    def log(self, role: str) -> str:
        path = self.workdir / f"{role}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def metrics(self, node: _LabNodeState | None = None) -> str:
        """The edge's /metrics, or with ``node`` that node's agent's."""
        if node is None:
            return run_inside(self.pop, ["python3", "-c", _SCRAPE.format(port=9100)]).stdout
        return run_inside(node.namespace, ["python3", "-c", _SCRAPE.format(port=AGENT_METRICS_PORT)]).stdout

    # ---- observation -------------------------------------------------------------------------

    @staticmethod
    def has_address(namespace: str, address: str) -> bool:
        shown = ip("-n", namespace, "-j", "address", "show", check=False)
        if shown.returncode != 0:
            return False
        return any(
            info.get("local") == address
            for link in json.loads(shown.stdout)
            for info in link.get("addr_info", [])
        )

    def wait(
        self,
        condition: Callable[[], bool],
        what: str,
        record: ProcessRecord | None = None,
        timeout: float = 20.0,
    ) -> None:
        """Wait until ``condition()`` holds; fail at once if ``record`` died, naming its log."""
        deadline = time.monotonic() + timeout
        while not condition():
            if record is not None and not record.alive():
                raise RuntimeError(f"{record.role} exited while waiting for {what}:\n{record.log_tail(30)}")
            if time.monotonic() > deadline:
                tail = record.log_tail(30) if record is not None else ""
                raise TimeoutError(f"{what} not ready after {timeout:.0f}s\n{tail}")
            time.sleep(0.05)

    def down(self) -> None:
        """Stop every process (newest first), then delete the namespaces; never raises midway."""
        for record in reversed(self.records):
            # a stuck process must not keep the namespaces alive: on to the next one
            with contextlib.suppress(Exception):
                record.stop(timeout=5.0)
        for namespace in reversed(self.made):
            with contextlib.suppress(Exception):
                delete_namespace(namespace)


_SCRAPE = (
    "import urllib.request as u; "
    "print(u.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode())"
)
