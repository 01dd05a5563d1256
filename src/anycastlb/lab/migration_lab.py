"""The migration lab's I/O: build the network of :mod:`migration_net`, plug nodes in and out, and
run code inside the PoP's namespace.

Nodes are the lab's nginx with the PROXY protocol (:class:`~anycastlb.lab.nodes.LabNode`), started
inside their own namespace on the Service's nodePort. :meth:`MigrationLab.start_node` returns once
the node answers: provider A's from the PoP; provider B's, which the PoP cannot reach, from inside
their own namespace, listening on every address as kube-proxy does (their tunnel address does not
exist yet). Beside each of provider B's nginx runs the node agent, ``anycastlb tunnel-agent``, as
the chart's DaemonSet would: it waits for its ``NODE.json`` in :attr:`MigrationLab.tunnel_dir`
(what the kubelet mounts from the controller's Secret; the caller fills it) and dials the PoP.
Each agent runs in a mount namespace of its own with a private ``/run``: wireguard-go's control
socket is ``/run/wireguard/<interface>.sock``, and every node's interface has the same name, as on
real machines.

:func:`entered` moves the calling thread into a namespace (``setns(2)``, which acts on one thread)
and back. Inside it, every socket the thread opens, every thread it starts and every process it
spawns belong to the PoP's network: that is how a test runs the control plane, the edge, the
controller, the Kubernetes API stand-in and the clients "in the PoP" without a cable to the host.

Clean-up is unconditional: :meth:`MigrationLab.close` stops every nginx it started and deletes every
namespace it created, also after a failure half-way through :meth:`MigrationLab.build`.
"""

import contextlib
import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from anycastlb.lab.migration_net import LabNodeSpec, MigrationNetwork
from anycastlb.lab.netns import (
    NETNS_DIR,
    LabError,
    apply_commands,
    delete_namespace,
    inside,
    namespace_exists,
    namespace_pids,
)
from anycastlb.lab.nodes import LabNode
from anycastlb.lab.ports import wait_for_port
from anycastlb.lab.processes import checkout_env
from anycastlb.lab.topology import Node

__all__ = ["MigrationLab", "entered"]

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise LabError(f"setns failed: {os.strerror(error)} (entering a namespace needs CAP_SYS_ADMIN)")


@contextlib.contextmanager
def entered(namespace: str) -> Iterator[None]:
    """Run the block with this thread in ``namespace``'s network, then return to the previous one."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(NETNS_DIR / namespace, os.O_RDONLY)
        except FileNotFoundError:
            raise LabError(f"namespace {namespace} does not exist: build the lab first") from None
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(original)


class _NodeServer(LabNode):
    """The lab node's nginx, spawned inside the node's namespace (``ip netns exec`` execs: same pid).

    With ``health_port`` it also answers there as kube-proxy does for a Service with
    ``externalTrafficPolicy: Local`` whose node has one ready pod (200, ``localEndpoints: 1``)."""

    def __init__(
        self,
        workdir: Path,
        node: LabNodeSpec,
        namespace: str,
        port: int,
        trusted: str,
        health_port: int | None,
    ) -> None:
        # a tunnelled node listens on every address (kube-proxy's nodePorts do): its tunnel
        # address comes later, when its agent has its config
        super().__init__(workdir, Node(node.name, "0.0.0.0" if node.tunnelled else node.address), trusted)
        self.port = port
        self.spec = node
        self.namespace = namespace
        self.health_port = health_port

    def config(self) -> str:
        text = super().config().rstrip()
        if self.health_port is None:
            return text + "\n"
        if not text.endswith("}"):
            raise LabError("the node's nginx configuration no longer ends with its http block")
        kube_proxy = (
            f"server {{ listen {self.address}:{self.health_port}; location / {{ "
            "add_header X-Load-Balancing-Endpoint-Weight 1; default_type application/json; "
            'return 200 \'{"localEndpoints": 1, "serviceProxyHealthy": true}\'; } }'
        )
        return f"{text[:-1]}  {kube_proxy}\n}}\n"

    def start(self) -> "_NodeServer":
        conf = self.write_files()
        nginx = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"
        self.process = subprocess.Popen(
            inside(self.namespace, [nginx, "-c", str(conf), "-e", str(self.dir / "error.log")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            if self.spec.tunnelled:  # the PoP cannot reach it: ask from inside the node
                with entered(self.namespace):
                    wait_for_port("127.0.0.1", self.port, alive=self.process)
            else:
                wait_for_port(self.address, self.port, alive=self.process)
        except TimeoutError:
            self.stop()
            log = self.dir / "error.log"
            raise LabError(
                f"node {self.name} did not answer on {self.address}:{self.port}: "
                f"{log.read_text() if log.exists() else 'no nginx error log'}"
            ) from None
        return self


class MigrationLab:
    """One migration lab; ``workdir`` holds the nodes' configs and logs."""

    def __init__(self, network: MigrationNetwork, workdir: Path) -> None:
        self.network = network
        self.workdir = workdir
        self.nodes: dict[str, _NodeServer] = {}
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.tunnel_dir = workdir / "tunnel-secret"  # the Secret's files, as the kubelet mounts them
        self._namespaces: list[str] = []

    def _apply(self, commands: list[list[str]]) -> None:
        for command in commands:
            if command[:2] == ["netns", "add"]:
                self._namespaces.append(command[2])
            apply_commands([command])

    def build(self) -> "MigrationLab":
        """The PoP, provider A's LAN and provider B's router; no nodes yet."""
        for ns in (self.network.pop, self.network.router):
            if namespace_exists(ns):
                raise LabError(f"namespace {ns} exists already: another lab of this name runs, or one leaked")
        self._apply(self.network.base_commands())
        return self

    def start_node(self, node: LabNodeSpec, port: int, health_port: int | None = None) -> None:
        """Plug ``node`` into its provider's network and start its nginx on ``port`` (and a
        kube-proxy health answer on ``health_port``); call from inside the PoP's namespace: the
        readiness wait connects from there."""
        namespace = self.network.node_namespace(node)
        self._apply(self.network.node_commands(node))
        server = _NodeServer(self.workdir, node, namespace, port, node.trusted, health_port)
        self.nodes[node.name] = server.start()
        if node.tunnelled:
            self._start_agent(node)

    def _start_agent(self, node: LabNodeSpec) -> None:
        """``anycastlb tunnel-agent`` in the node's namespace, with a private ``/run`` (see above);
        it waits for its config, so the node can start before the controller registered it."""
        self.tunnel_dir.mkdir(exist_ok=True)
        agent = [sys.executable, "-m", "anycastlb.cli", "tunnel-agent", "--config-dir", str(self.tunnel_dir)]
        agent += ["--node", node.name, "--poll-interval", "0.2"]
        script = 'mount -t tmpfs -o mode=0755,size=4m anycastlb-lab /run && exec "$@"'
        log = (self.workdir / f"agent-{node.name}.log").open("ab")
        with log:
            self.agents[node.name] = subprocess.Popen(
                inside(self.network.node_namespace(node), ["sh", "-c", script, "agent", *agent]),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=checkout_env(),
            )

    def agent_log(self, node: LabNodeSpec) -> str:
        path = self.workdir / f"agent-{node.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _stop_agent(self, name: str) -> None:
        """SIGTERM (the agent deletes its interface), then SIGKILL after 5 s."""
        agent = self.agents.pop(name, None)
        if agent is None or agent.poll() is not None:
            return
        agent.terminate()
        try:
            agent.wait(5)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(5)

    def remove_node(self, node: LabNodeSpec) -> None:
        """Stop the node's nginx and delete its namespace (and with it the cable to the switch)."""
        self._stop_agent(node.name)
        server = self.nodes.pop(node.name, None)
        if server is not None:
            server.stop()
        namespace = self.network.node_namespace(node)
        delete_namespace(namespace)
        if namespace in self._namespaces:
            self._namespaces.remove(namespace)

    def close(self) -> None:
        """Stop every nginx, kill anything else left in the lab's namespaces, delete them all."""
        errors = []
        for name in list(self.agents):
            try:
                self._stop_agent(name)
            except Exception as error:  # clean up the rest, report at the end
                errors.append(f"agent {name}: {error}")
        for server in list(self.nodes.values()):
            try:
                server.stop()
            except Exception as error:  # clean up the rest, report at the end
                errors.append(f"{server.name}: {error}")
        self.nodes.clear()
        for namespace in reversed(self._namespaces):
            for pid in namespace_pids(namespace):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            try:
                delete_namespace(namespace)
            except LabError as error:
                errors.append(str(error))
        self._namespaces.clear()
        if errors:
            raise LabError("migration lab clean-up incomplete: " + "; ".join(errors))
