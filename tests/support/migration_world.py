"""The cluster of a provider migration, all real: the Kubernetes API stand-in holding a Service
type LoadBalancer and the Nodes, ``anycastlb controller --tunnels``, ``anycastlb control`` and an
edge in the PoP's namespace following it, nginx nodes in their own namespaces
(:mod:`anycastlb.lab.migration_lab`), and on provider B's nodes (behind NAT) the tunnel agent.

Tunnels for some nodes: the controller runs with ``--tunnel-nodes anycastlb.io/tunnel=true``, so
provider A's Nodes (unlabelled) are reached at their own addresses and provider B's (labelled) are
registered with the control plane, which gives each a WireGuard key and a tunnel address and puts
them as peers in the PoP's desired state; the controller writes their configs to the Secret
``anycastlb-tunnel``, which :class:`SecretMount` copies into the lab's tunnel directory as the
kubelet would mount it, where each node's agent finds its file.

Everything that talks over the network runs inside the PoP's namespace: :func:`migration_world`
enters it for the calling thread, so the processes it spawns, the stand-in's server thread and the
clients all live there (and reach the nodes the way the edge does). Used by the e2e test and by the
demo step (``python3 -m tests.support.migration_demo``). Every process and namespace is gone when
the context ends, also when a step fails.
"""

import base64
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from anycastlb.lab.migration import Migration
from anycastlb.lab.migration_lab import MigrationLab, entered
from anycastlb.lab.migration_load import body_fields
from anycastlb.lab.migration_net import TUNNEL_LABEL, LabNodeSpec, MigrationNetwork
from tests.support.control_plane import ControlProcess
from tests.support.controlled_edge import ControlledEdge
from tests.support.controller_process import ControllerProcess
from tests.support.kube_api import KubeApiStandIn

CLASS = "anycastlb.io/anycast"
DRAIN_TAINT = "ToBeDeletedByClusterAutoscaler"
POOL = "127.80.0.0/28"  # on the PoP's loopback: the clients reach the VIP there
SOURCES = tuple(f"127.0.30.{n}" for n in range(1, 61))  # client addresses (Maglev keys on them)
SERVICE, NAMESPACE, POP = "web", "shop", "fra"
CLUSTER, TENANT = "test", "acme"  # the controller's --cluster (ControllerProcess's default)
CONTROLLER_NAMESPACE = "kube-system"  # where the controller writes the Secret (ControllerProcess)
TUNNEL_SECRET = "anycastlb-tunnel"  # noqa: S105 - the Secret's name


def node_object(node: LabNodeSpec) -> dict[str, Any]:
    addresses = [{"type": "InternalIP", "address": node.address}, {"type": "Hostname", "address": node.name}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": node.labels},
        "status": {"addresses": addresses},
    }


def service_object(local: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "loadBalancerClass": CLASS,
        "selector": {"app": SERVICE},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    }
    if local:
        spec["externalTrafficPolicy"] = "Local"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE},
        "spec": spec,
    }


class SecretMount:
    """The kubelet's part: the controller's ``anycastlb-tunnel`` Secret, kept in ``directory`` as
    one file per key (written whole, then renamed, as the kubelet's atomic writer swaps them), a
    key gone from the Secret deleted. Polls the stand-in's store every 50 ms on a thread."""

    def __init__(self, kube: KubeApiStandIn, directory: Path) -> None:
        self.kube, self.directory = kube, directory
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="secret-mount", daemon=True)

    def __enter__(self) -> "SecretMount":
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            secret = self.kube.find("Secret", CONTROLLER_NAMESPACE, TUNNEL_SECRET)
            data: dict[str, str] = (secret or {}).get("data") or {}
            for key, value in data.items():
                target = self.directory / key
                content = base64.b64decode(value)
                if not target.exists() or target.read_bytes() != content:
                    staged = self.directory / f".{key}.tmp"
                    staged.write_bytes(content)
                    staged.chmod(0o400)
                    staged.replace(target)
            for path in self.directory.glob("*.json"):
                if path.name not in data:
                    path.unlink()


class KubeCluster:
    """:class:`anycastlb.lab.migration.Cluster` over the stand-in, the control plane and the edge."""

    def __init__(self, kube: KubeApiStandIn, control: ControlProcess, edge: ControlledEdge) -> None:
        self.kube, self.control, self.edge = kube, control, edge
        self.workers = int(edge.config["workers"])
        self._tunnel_addresses: dict[str, str] = {}

    def join(self, node: LabNodeSpec) -> None:
        self.kube.create(node_object(node))

    def reach(self, node: LabNodeSpec, timeout: float) -> str:
        """Provider A's node: its own address. Provider B's: the tunnel address the control plane
        gave it (the current one), once the controller has registered the node."""
        if not node.tunnelled:
            return node.address
        deadline = time.monotonic() + timeout
        while node.name not in self._tunnel_addresses:
            with self.control.client() as admin:
                answer = admin.get(f"/v1/tenants/{TENANT}/clusters/{CLUSTER}/nodes")
            if answer.status_code == 200:
                for item in answer.json()["nodes"]:
                    self._tunnel_addresses[item["name"]] = item["address"]
            if node.name in self._tunnel_addresses:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the control plane gave node {node.name} no tunnel address within {timeout} s "
                    f"(GET clusters/{CLUSTER}/nodes answered {answer.status_code}): is the controller "
                    "running with --tunnels and does the node match --tunnel-nodes?"
                )
            time.sleep(0.05)
        return self._tunnel_addresses[node.name]

    def taint(self, name: str) -> None:
        taint = {"key": DRAIN_TAINT, "value": str(int(time.time())), "effect": "NoSchedule"}
        self.kube.patch("Node", None, name, {"spec": {"taints": [taint]}})

    def remove(self, name: str) -> None:
        self.kube.delete("Node", None, name)

    def desired_state(self) -> dict[str, Any]:
        with self.control.client() as admin:
            answer = admin.get(f"/v1/pops/{POP}/desired")
        answer.raise_for_status()
        state: dict[str, Any] = answer.json()
        return state

    def health_checks(self) -> list[dict[str, Any]]:
        """The health check of every listener the PoP serves."""
        return [
            listener["health"]
            for lb in self.desired_state()["load_balancers"]
            for listener in lb["listeners"]
        ]

    def desired(self) -> tuple[int, frozenset[str]]:
        """The PoP's desired version and the backend addresses of the Service's listener."""
        state = self.desired_state()
        addresses = frozenset(
            backend["address"]
            for lb in state["load_balancers"]
            for listener in lb["listeners"]
            for backend in listener["backends"]
        )
        return int(state["version"]), addresses

    def _workers_run(self, version: int) -> bool:
        """Whether every worker has applied ``version``. The applied-version metric (and the
        follower's ``desired_applied``) come once the supervisor has *sent* the config; each
        worker logs ``config_applied`` once it switched, in these runs from before
        ``desired_applied`` to 300 ms after it. So: the metric, then a ``config_applied`` of every
        worker after the follower's ``desired_received`` of that version (configs reach a worker
        in order, and the follower receives a version only after the previous was applied)."""
        if self.edge.metric("anycastlb_control_applied_version") < version:
            return False
        log = self.edge.log()
        marker = log.rfind(f"desired_received version={version} ")
        if marker < 0:
            return False  # received before this edge's log began: not in these tests
        after = log[marker:]
        return all(f"config_applied worker={index} " in after for index in range(self.workers))

    def open_connections(self, addresses: frozenset[str]) -> int:
        total = 0.0
        for line in self.edge.metrics().splitlines():
            if line.startswith("anycastlb_backend_connections_active{") and any(
                f'backend="{address}:' in line for address in addresses
            ):
                total += float(line.rsplit(" ", 1)[1])
        return round(total)

    def wait_edge_backends(self, addresses: frozenset[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen: tuple[int, frozenset[str]] = (0, frozenset())
        while time.monotonic() < deadline:
            seen = self.desired()
            if seen[1] == addresses and self._workers_run(seen[0]):
                return
            time.sleep(0.02)
        raise TimeoutError(
            f"the edge did not run backends {sorted(addresses)} within {timeout} s; the PoP's desired "
            f"version {seen[0]} has {sorted(seen[1])}, the edge applied "
            f"{self.edge.metric('anycastlb_control_applied_version'):.0f}"
        )


@dataclass
class MigrationWorld:
    lab: MigrationLab
    cluster: KubeCluster
    vip: str
    node_port: int
    health_port: int | None  # healthCheckNodePort with externalTrafficPolicy Local
    old: tuple[LabNodeSpec, ...]
    new: tuple[LabNodeSpec, ...]
    edge: ControlledEdge
    controller: ControllerProcess

    def migration(self, rate: float, hold: float, progress: Callable[[str], None]) -> Migration:
        """The migration of this world's old nodes to its new ones, under ``rate`` new connections/s."""
        return Migration(
            self.lab,
            self.cluster,
            (self.vip, 80),
            self.node_port,
            self.health_port,
            self.old,
            self.new,
            SOURCES,
            rate=rate,
            hold=hold,
            progress=progress,
        )

    def explain(self) -> str:
        """What to look at when a step failed: the agents' logs and the PoP's tunnel lines."""
        lines = [f"--- agent {node.name} ---\n{self.lab.agent_log(node)[-2000:]}" for node in self.new]
        tunnel = [line for line in self.edge.log().splitlines() if "tunnel" in line or "wireguard" in line]
        return "\n".join([*lines, "--- edge (tunnel lines) ---", *tunnel[-30:]])


def _wait_ingress(kube: KubeApiStandIn) -> dict[str, Any]:
    found = kube.wait_for(
        "Service",
        NAMESPACE,
        SERVICE,
        lambda obj: bool(obj and ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress")),
        timeout=30,
    )
    assert found is not None
    return found


@contextmanager
def migration_world(
    workdir: Path, name: str, old: int = 3, new: int = 3, *, local: bool = False
) -> Iterator[MigrationWorld]:
    """The cluster on ``old`` provider-A nodes, served through the edge; ``new`` provider-B nodes
    named but not started. ``local``: the Service has ``externalTrafficPolicy: Local`` (the PoP
    checks kube-proxy's answer on the healthCheckNodePort, which every node gives as with one
    ready pod). Leaves nothing behind."""
    lab = MigrationLab(MigrationNetwork(name), workdir)
    with ExitStack() as stack:
        stack.callback(lab.close)
        lab.build()
        stack.enter_context(entered(lab.network.pop))
        kube = stack.enter_context(KubeApiStandIn())
        (workdir / "cp").mkdir()
        control = stack.enter_context(ControlProcess(workdir / "cp"))
        with control.client() as admin:
            admin.post("/v1/pools", json={"name": "platform", "networks": [POOL]}).raise_for_status()
            admin.post("/v1/tenants", json={"name": "acme"}).raise_for_status()
            token = admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"]
            # provider B's nodes dial the PoP here, through their NAT
            pop = {"name": POP, "tunnel_endpoint": lab.network.tunnel_endpoint}
            pop_token = admin.post("/v1/pops", json=pop).json()["token"]["secret"]
        (workdir / "edge").mkdir()
        edge = stack.enter_context(ControlledEdge(workdir / "edge", control.url, pop_token))
        controller = stack.enter_context(
            ControllerProcess(
                workdir,
                control_url=control.url,
                token=token,
                kubeconfig=kube.kubeconfig(workdir / "kubeconfig"),
                extra=("--tunnels", "--tunnel-nodes", f"{TUNNEL_LABEL}=true"),
            )
        )
        stack.enter_context(SecretMount(kube, lab.tunnel_dir))
        # the API server allocates the nodePort at once; the controller allocates the VIP once
        # the cluster has nodes
        created = kube.create(service_object(local))
        node_port = int(created["spec"]["ports"][0]["nodePort"])
        health_port = created["spec"].get("healthCheckNodePort") if local else None
        olds = tuple(LabNodeSpec("a", index) for index in range(1, old + 1))
        news = tuple(LabNodeSpec("b", index) for index in range(1, new + 1))
        cluster = KubeCluster(kube, control, edge)
        for node in olds:
            lab.start_node(node, node_port, health_port)
            cluster.join(node)
        vip = _wait_ingress(kube)["status"]["loadBalancer"]["ingress"][0]["ip"]
        cluster.wait_edge_backends(frozenset(node.address for node in olds), 30)
        _wait_serving(vip, frozenset(node.name for node in olds))
        yield MigrationWorld(lab, cluster, vip, node_port, health_port, olds, news, edge, controller)


def _wait_serving(vip: str, nodes: frozenset[str], timeout: float = 20.0) -> None:
    """Every old node answers through the VIP (from one client address or another: Maglev spreads
    them). A node joins the backends unproven and, with tunnels, ``initial: down``: it serves once
    the PoP's first probe passed, so right after the edge applied the nodes some may not serve yet."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    for turn in itertools.count():
        source = SOURCES[turn % len(SOURCES)]
        transport = httpx.HTTPTransport(local_address=source)
        try:
            with httpx.Client(transport=transport, timeout=2) as client:
                seen.add(body_fields(client.get(f"http://{vip}/").content).get("node", ""))
        except httpx.HTTPError:
            pass
        if nodes <= seen:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"through the VIP {vip}:80 within {timeout} s only {sorted(seen)} answered, not all of "
                f"{sorted(nodes)}"
            )
        time.sleep(0.01)
