"""``anycastlb lab``: a real anycast network on one box, built from network namespaces.

A client, a BIRD router, two PoPs running ``anycastlb edge`` with BGP, and three nginx nodes (see
:mod:`anycastlb.lab.topology` for the picture). Lifecycle:

- ``up``: if the lab is already up as built, nothing happens (idempotent). Otherwise whatever is
  left of an earlier lab (a crash, a half-built lab) is removed first, then: namespaces and cables,
  BIRD, the nodes, the edges; it returns once the router has both PoPs' routes and forwards the
  VIP to ``fra``. Every process is recorded (pid and start time) in ``state.json`` under the state
  dir, next to every config and log.
- ``down``: edges get SIGTERM (they withdraw and drain), then SIGKILL; BIRD and nginx likewise;
  whatever still runs inside a lab namespace is killed; the namespaces (and with them every veth
  and bridge) and the state dir are deleted.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from anycastlb.lab.bird import bgp_protocol_name, parse_protocols, parse_routes, render_bird_config
from anycastlb.lab.edge_config import edge_yaml
from anycastlb.lab.netns import (
    LabError,
    apply_commands,
    delete_namespace,
    missing_capability,
    namespace_exists,
    namespace_inode,
    namespace_pids,
    processes_in,
)
from anycastlb.lab.nodes import LabNode
from anycastlb.lab.processes import ProcessRecord, checkout_env, kill, spawn, stat
from anycastlb.lab.procfs import next_hop
from anycastlb.lab.topology import NODE_PORT, POP_AS, Topology, ip_commands

__all__ = ["DEFAULT_STATE_ROOT", "EDGE_STOP_TIMEOUT", "AnycastLab", "DownResult", "LabError", "UpResult"]

DEFAULT_STATE_ROOT = Path("/run/anycastlb-lab")
EDGE_STOP_TIMEOUT = 8.0  # withdraw_delay 1 s + drain_timeout 5 s + margin


@dataclass
class _State:
    name: str
    created: float
    namespaces: dict[str, int] = field(default_factory=dict)  # name -> inode
    processes: dict[str, ProcessRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class UpResult:
    already_up: bool
    seconds: float


@dataclass(frozen=True)
class DownResult:
    stopped: tuple[str, ...]
    namespaces: tuple[str, ...]
    state_dir_removed: bool


class AnycastLab:
    """One lab, named ``name`` (the namespace prefix), with its state under ``state_root/name``."""

    def __init__(self, name: str = "alb", state_root: Path = DEFAULT_STATE_ROOT, *, bfd: bool = True) -> None:
        self.topology = Topology(name, bfd=bfd)
        self.state_root = state_root
        self.dir = state_root / name
        self.state_file = self.dir / "state.json"
        self.bird_socket = self.dir / "bird.ctl"

    # ---- state -----------------------------------------------------------------------------------

    def _load(self) -> _State | None:
        try:
            data = json.loads(self.state_file.read_text())
            return _State(
                data["name"],
                data["created"],
                {str(k): int(v) for k, v in data["namespaces"].items()},
                {k: ProcessRecord.from_json(v) for k, v in data["processes"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self, state: _State) -> None:
        data = {
            "name": state.name,
            "created": state.created,
            "namespaces": state.namespaces,
            "processes": {role: record.to_json() for role, record in state.processes.items()},
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n")
        temporary.replace(self.state_file)

    def processes(self) -> dict[str, ProcessRecord]:
        """Every process the lab started (by role), from the state file; {} if there is none."""
        state = self._load()
        return dict(state.processes) if state else {}

    def process(self, role: str) -> ProcessRecord:
        state = self._load()
        if state is None or role not in state.processes:
            raise LabError(f"lab {self.topology.name} has no {role}: run `anycastlb lab up` first")
        return state.processes[role]

    def pop_dir(self, pop: str) -> Path:
        return self.dir / "pops" / pop

    # ---- up ------------------------------------------------------------------------------------

    def up(self, timeout: float = 25.0) -> UpResult:
        """Build the lab, or do nothing if it is already up as built."""
        started = time.monotonic()
        problem = missing_capability()
        if problem is not None:
            raise LabError(f"cannot build the lab: {problem}")
        state = self._load()
        if state is not None and self.problem(state) is None:
            return UpResult(already_up=True, seconds=time.monotonic() - started)
        self.down()  # what an earlier lab left behind: a crash, a half-built lab, a failover
        self.dir.mkdir(parents=True)
        state = _State(self.topology.name, time.time())
        self._save(state)
        try:
            apply_commands(ip_commands(self.topology))
        finally:
            state.namespaces = {
                ns: inode for ns in self.topology.namespaces() if (inode := namespace_inode(ns)) is not None
            }
            self._save(state)
        self._start_router(state)
        self._start_nodes(state)
        for pop in self.topology.pops:
            self.start_edge(pop.name, state)
        self._wait_ready(state, started + timeout)
        return UpResult(already_up=False, seconds=time.monotonic() - started)

    def _start_router(self, state: _State) -> None:
        conf = self.dir / "bird.conf"
        conf.write_text(render_bird_config(self.topology, POP_AS))
        bird = shutil.which("bird") or "/usr/sbin/bird"
        argv = [bird, "-f", "-c", str(conf), "-s", str(self.bird_socket), "-P", str(self.dir / "bird.pid")]
        state.processes["bird"] = spawn("bird", self.topology.router, argv, self.dir / "bird.log")
        self._save(state)

    def _start_nodes(self, state: _State) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        for node in self.topology.nodes:
            lab_node = LabNode(self.dir / "nodes", node, trusted=self.topology.cluster_subnet)
            conf = lab_node.write_files()
            argv = [nginx, "-c", str(conf), "-e", str(lab_node.dir / "error.log")]
            log = lab_node.dir / "nginx.out"
            state.processes[node.name] = spawn(node.name, self.topology.node_namespace(node), argv, log)
            self._save(state)

    def start_edge(self, pop: str, state: _State | None = None) -> ProcessRecord:
        """Start (or start again) a PoP's edge; its temp files live in the state dir."""
        state = state or self._load()
        if state is None:
            raise LabError(f"lab {self.topology.name} is not up: run `anycastlb lab up`")
        directory = self.pop_dir(pop)
        tmp = directory / "tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # an earlier edge's, if it was killed
        tmp.mkdir(parents=True)
        config = directory / "edge.yaml"
        config.write_text(edge_yaml(self.topology, pop))
        env = {k: v for k, v in checkout_env().items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env["TMPDIR"] = str(tmp)  # the edge's run and metrics dirs: removed with the lab
        argv = [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(config)]
        record = spawn(f"edge-{pop}", self.topology.pop_namespace(pop), argv, directory / "edge.log", env)
        state.processes[record.role] = record
        self._save(state)
        return record

    def _wait_ready(self, state: _State, deadline: float) -> None:
        while (problem := self.problem(state)) is not None:
            dead = [record for record in state.processes.values() if not record.alive()]
            if dead or time.monotonic() > deadline:
                raise LabError(
                    f"the lab did not come up: {problem}\n"
                    f"Configs and logs are in {self.dir}; `anycastlb lab status` shows more; "
                    "`anycastlb lab down` removes it (and `lab up` retries)."
                )
            time.sleep(0.1)

    def problem(self, state: _State | None = None) -> str | None:
        """None if the lab is up exactly as built; else the first thing that is not."""
        state = state or self._load()
        if state is None:
            return "not built (no state file)"
        for ns in self.topology.namespaces():
            if state.namespaces.get(ns) is None or namespace_inode(ns) != state.namespaces[ns]:
                return f"namespace {ns} is missing"
        return self._process_problem(state) or self._router_problem()

    def _process_problem(self, state: _State) -> str | None:
        for record in state.processes.values():
            if not record.alive():
                tail = record.log_tail()
                return f"{record.role} (pid {record.pid}) is not running; its log ends with:\n{tail}"
        for node in self.topology.nodes:
            if not self.listening(state.processes.get(node.name), node.address, NODE_PORT):
                return f"{node.name} does not listen on {node.address}:{NODE_PORT} yet"
        return None

    def _router_problem(self) -> str | None:
        """What the router must see: every PoP's session up and its route, the VIP forwarded to fra."""
        try:
            protocols = {p.name: p for p in parse_protocols(self.birdc("show", "protocols"))}
            routes = parse_routes(self.birdc("show", "route", f"{self.topology.vip}/32", "all"))
        except LabError as error:
            return str(error)
        for pop in self.topology.pops:
            session = protocols.get(bgp_protocol_name(pop.name))
            if session is None or session.info != "Established":
                seen = f"{session.state} {session.info}" if session else "missing"
                return f"the router's BGP session with {pop.name} is not established ({seen})"
            if not any(route.protocol == bgp_protocol_name(pop.name) for route in routes):
                return f"{pop.name} does not announce {self.topology.vip}"
        preferred = self.topology.pops[0].name
        if (hop := self.kernel_pop()) != preferred:
            return f"the router forwards {self.topology.vip} to {hop or 'nowhere'}, not to {preferred}"
        return None

    @staticmethod
    def listening(record: ProcessRecord | None, address: str, port: int) -> bool:
        return record is not None and record.listens_on(address, port)

    # ---- down ----------------------------------------------------------------------------------

    def down(self) -> DownResult:
        """Stop everything the lab started, delete its namespaces and its state dir."""
        state = self._load()
        records = list(state.processes.values()) if state else []
        stopped: list[str] = []
        edges = [r for r in records if r.role.startswith("edge-") and r.send(signal.SIGTERM)]
        for record in edges:  # they drain in parallel: withdraw, withdraw_delay, connections
            if not record.wait_gone(EDGE_STOP_TIMEOUT):
                record.stop(timeout=1.0, signum=signal.SIGKILL)
            stopped.append(record.role)
        for record in records:
            if record not in edges and record.alive():
                record.stop(timeout=5.0)
                stopped.append(record.role)
        removed = self._remove_namespaces(stopped)
        existed = self.dir.exists()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.exists():
            raise LabError(f"cannot remove the lab's state dir {self.dir}: is something still using it?")
        if self.state_root.exists() and not any(self.state_root.iterdir()):
            self.state_root.rmdir()
        return DownResult(tuple(stopped), tuple(removed), existed)

    def _remove_namespaces(self, stopped: list[str]) -> list[str]:
        """Kill what still runs in (or holds) the lab's namespaces, delete them; their names."""
        # Only namespaces that exist now under our names: a recorded inode of one that is gone may
        # since have been given to somebody else's namespace.
        inodes: set[int] = set()
        removed: list[str] = []
        killed: list[ProcessRecord] = []

        def kill_one(pid: int, what: str) -> None:
            stopped.append(what)
            if (info := stat(pid)) is not None:
                killed.append(ProcessRecord(what, "", pid, info.start_time, ""))
            kill(pid)

        for ns in self.topology.namespaces():
            if not namespace_exists(ns):
                continue
            if (inode := namespace_inode(ns)) is not None:
                inodes.add(inode)
            for pid in namespace_pids(ns):
                kill_one(pid, f"pid {pid} in {ns}")
            delete_namespace(ns)
            removed.append(ns)
        for pid in processes_in(inodes):  # still holding a deleted namespace (and its veths) alive
            kill_one(pid, f"pid {pid} in a deleted lab namespace")
        # SIGKILL is only sent: a process lets go of its namespace (and of the veths in it) once it
        # has exited, which on a busy machine takes a while. `down` returns when that is done.
        for record in killed:
            if not record.wait_gone(5.0):
                raise LabError(f"{record.role} survives SIGKILL: is it stuck in the kernel (D state)?")
        return removed

    # ---- observing -----------------------------------------------------------------------------

    def birdc(self, *command: str) -> str:
        birdc = shutil.which("birdc") or "/usr/sbin/birdc"
        # The control socket is a file: birdc needs no namespace to reach it.
        done = subprocess.run(
            [birdc, "-s", str(self.bird_socket), *command],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
        if done.returncode != 0 or "Unable to connect" in done.stdout:
            raise LabError(
                f"birdc {' '.join(command)} failed: {(done.stdout + done.stderr).strip()[-300:]} "
                "(is the lab's BIRD running? `anycastlb lab status`)"
            )
        return done.stdout

    def route_table_path(self) -> Path:
        """``/proc/PID/net/route`` of a process in the router namespace: the router's main table."""
        return Path(f"/proc/{self.process('bird').pid}/net/route")

    def kernel_next_hop(self) -> str | None:
        try:
            return next_hop(self.route_table_path().read_text(), self.topology.vip)
        except (OSError, LabError):
            return None

    def kernel_pop(self) -> str | None:
        hop = self.kernel_next_hop()
        return None if hop is None else self.topology.pop_by_transit_address(hop)
