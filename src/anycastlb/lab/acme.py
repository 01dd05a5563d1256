"""The ACME lab's shell: build the namespaces, run pebble, the node's nginx and the edge, run the flow.

cert-manager's HTTP-01 path through the L4 edge, with real programs (see
:mod:`anycastlb.lab.acme_plan` for the picture):

1. pebble (Debian's, the ACME test server Let's Encrypt maintains) runs in the client namespace,
   validating HTTP-01 on port 80 of whatever the domain resolves to: the VIP.
2. The ACME client (:mod:`anycastlb.lab.acme_client`, in the client namespace) orders a
   certificate and writes the token where the node's nginx serves ``/.well-known/acme-challenge/``.
3. pebble fetches the token from VIP:80; the edge forwards it to node:8080 with a PROXY v2 header;
   nginx serves it. The order is valid, the certificate is issued.
4. nginx gets the certificate on node:8443 (a reload, as ingress-nginx does when the Secret
   appears); a TLS client connects to VIP:443 with SNI = the domain; the edge relays the bytes
   untouched; the client verifies the chain against pebble's root and the name.

Every process is started detached in its namespace and recorded (:mod:`anycastlb.lab.processes`);
:meth:`AcmeLab.stop` stops them, kills whatever else runs in the namespaces, deletes them and the
``/etc/netns`` directory, whatever state a failure left.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from anycastlb.lab.acme_certs import write_api_certificate
from anycastlb.lab.acme_plan import (
    ACME_PORT,
    CHALLENGE_PREFIX,
    HTTP_NODE_PORT,
    MANAGEMENT_PORT,
    METRICS_PORT,
    TLS_NODE_PORT,
    AcmeTopology,
    NodeTls,
    edge_config,
    hosts_file,
    ip_commands,
    node_nginx_config,
    pebble_config,
)
from anycastlb.lab.acme_result import (
    AccessLine,
    AcmeRun,
    Issued,
    Probed,
    backend_up,
    connections,
    parse_access_log,
)
from anycastlb.lab.netns import (
    LabError,
    apply_commands,
    delete_namespace,
    namespace_exists,
    namespace_pids,
    run_inside,
)
from anycastlb.lab.processes import ProcessRecord, checkout_env, kill, spawn

__all__ = ["PEBBLE", "AcmeLab", "missing_acme_peer", "run_acme_lab"]

PEBBLE = "/usr/bin/pebble"
_NETNS_ETC = Path("/etc/netns")
_FETCH = (
    "import sys, urllib.request;"
    " sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())"
)


def missing_acme_peer() -> str | None:
    """None if the ACME lab can run here; else what is missing and how to get it. (Not the anycast
    lab's check: this lab needs no BIRD. A kernel without veth support shows at ``ip link add``.)"""
    if os.geteuid() != 0:
        return "root is required (ip netns add needs CAP_SYS_ADMIN): run as root, e.g. with sudo"
    for tool, package in (("ip", "iproute2"), ("nginx", "nginx-light"), ("pebble", "pebble")):
        if shutil.which(tool) is None and not any(Path(d, tool).exists() for d in ("/usr/sbin", "/usr/bin")):
            return f"`{tool}` is not installed: apt-get install {package} (scripts/setup installs it)"
    try:
        import acme.client  # noqa: F401, PLC0415 - only a probe
    except ImportError:
        return "the `acme` package (certbot's ACME library) is missing: pip install -e .[dev]"
    return None


class AcmeLab:
    """One ACME lab under ``workdir``; a context manager that always tears down what it built."""

    def __init__(self, workdir: Path, name: str = "acme", timeout: float = 20.0) -> None:
        self.topology = AcmeTopology(name)
        self.dir = workdir
        self.timeout = timeout
        self.webroot = workdir / "node" / "www"
        self.certs = workdir / "certs"
        self.processes: dict[str, ProcessRecord] = {}

    # ---- up ------------------------------------------------------------------------------------

    def start(self) -> "AcmeLab":
        problem = missing_acme_peer()
        if problem is not None:
            raise LabError(f"cannot run the ACME lab: {problem}")
        for ns in self.topology.namespaces():
            if namespace_exists(ns):
                raise LabError(
                    f"namespace {ns} exists already: an ACME lab named {self.topology.name} runs, or an "
                    f"earlier run was killed (then remove it: ip netns del {ns})"
                )
        try:
            apply_commands(ip_commands(self.topology))
            etc = _NETNS_ETC / self.topology.client
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts_file(self.topology))
            self._start_pebble()
            self._start_node(tls=None)
            self._start_edge()
            self._wait("the edge's VIP:80 backend up", lambda: backend_up(self.edge_metrics(), "http"))
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, role: str, namespace: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.processes[role] = spawn(role, namespace, argv, self.dir / role / f"{role}.log", env)

    def _start_pebble(self) -> None:
        directory = self.dir / "pebble"
        certificate, key = write_api_certificate(directory, self.topology.client_address)
        config = directory / "pebble.json"
        config.write_text(pebble_config(self.topology, certificate, key))
        env = {k: v for k, v in checkout_env().items() if not k.startswith("PEBBLE_")}
        # No random 0-15 s sleep before validating; never reject a good nonce (clients retry a
        # badNonce, which only slows the lab down); never reuse an authorization: every order is
        # validated through the edge.
        env |= {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        pebble = shutil.which("pebble") or PEBBLE
        # -strict: the ACME protocol as pebble will enforce it next, so the client is held to it.
        self._spawn("pebble", self.topology.client, [pebble, "-config", str(config), "-strict"], env)
        self._wait_listening("pebble", self.topology.client_address, ACME_PORT)
        self._wait_listening("pebble", self.topology.client_address, MANAGEMENT_PORT)

    def _start_node(self, tls: NodeTls | None) -> None:
        directory = self.dir / "node"
        self.webroot.mkdir(parents=True, exist_ok=True)
        config = directory / "nginx.conf"
        config.write_text(node_nginx_config(self.topology, directory, self.webroot, tls))
        if "node" in self.processes:  # a reload, as ingress-nginx reloads when a Secret changes
            self.processes["node"].send(signal.SIGHUP)
        else:
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            argv = [nginx, "-c", str(config), "-e", str(directory / "error.log")]
            self._spawn("node", self.topology.node, argv)
        self._wait_listening("node", self.topology.node_address, HTTP_NODE_PORT)
        if tls is not None:
            self._wait_listening("node", self.topology.node_address, TLS_NODE_PORT)

    def _start_edge(self) -> None:
        directory = self.dir / "edge"
        (directory / "tmp").mkdir(parents=True, exist_ok=True)
        config = directory / "edge.yaml"
        config.write_text(yaml.safe_dump(edge_config(self.topology), sort_keys=False))
        env = {k: v for k, v in checkout_env().items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env["TMPDIR"] = str(directory / "tmp")
        argv = [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(config)]
        self._spawn("edge", self.topology.pop, argv, env)

    # ---- waiting -------------------------------------------------------------------------------

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if ready():
                    return
            except (LabError, ValueError, OSError):
                pass  # not answering yet (or gone: the check below names the process that died)
            dead = [record for record in self.processes.values() if not record.alive()]
            if dead or time.monotonic() > deadline:
                why = f"{dead[0].role} exited" if dead else f"not within {self.timeout:.0f}s"
                logs = "\n".join(f"--- {r.role}:\n{r.log_tail()}" for r in self.processes.values())
                raise LabError(f"ACME lab: waiting for {what}: {why}. Logs under {self.dir}:\n{logs}")
            time.sleep(0.05)

    def _wait_listening(self, role: str, address: str, port: int) -> None:
        self._wait(
            f"{role} to listen on {address}:{port}", lambda: self.processes[role].listens_on(address, port)
        )

    def edge_metrics(self) -> str:
        """The edge's ``/metrics``, fetched from inside the PoP namespace (it binds that loopback)."""
        url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
        return run_inside(self.topology.pop, [sys.executable, "-c", _FETCH, url], timeout=5).stdout

    # ---- the flow ------------------------------------------------------------------------------

    def _client(self, *args: str) -> dict[str, Any]:
        env = checkout_env() | {"REQUESTS_CA_BUNDLE": str(self.dir / "pebble" / "api-cert.pem")}
        argv = ["env", *(f"{k}={v}" for k, v in env.items() if k in ("PYTHONPATH", "REQUESTS_CA_BUNDLE"))]
        argv += [sys.executable, "-m", "anycastlb.lab.acme_client", *args]
        try:
            done = run_inside(self.topology.client, argv, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            raise LabError(f"ACME lab: {args[0]} did not finish within 60s; logs under {self.dir}") from None
        if done.returncode != 0:
            raise LabError(f"ACME lab: {args[0]} failed: {done.stderr.strip()[-1500:]}")
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def access_log(self) -> list[AccessLine]:
        path = self.dir / "node" / "access.log"
        return parse_access_log(path.read_text()) if path.exists() else []

    def issue(self, webroot: Path | None = None) -> Issued:
        """Order a certificate for the domain; pebble validates HTTP-01 through VIP:80.

        ``webroot``: where the ACME client writes the tokens; by default where the node serves them
        (another directory stands for a solver the ingress does not route to)."""
        before = connections(self.edge_metrics(), "http")
        topology = self.topology
        data = self._client(
            "order",
            *("--directory", topology.directory_url, "--roots", topology.roots_url),
            *("--domain", topology.domain, "--webroot", str(webroot or self.webroot)),
            *("--out", str(self.certs)),
        )
        tokens = [str(token) for token in data["tokens"]]
        uris = {CHALLENGE_PREFIX + token for token in tokens}
        hits = [line for line in self.access_log() if line.uri in uris]
        return Issued.from_client(data, hits, self._counted_since("http", before))

    def serve_certificate(self) -> None:
        """nginx serves the issued chain on node:8443; returns once the edge sees it up."""
        self._start_node(NodeTls(self.certs / "fullchain.pem", self.certs / "key.pem"))
        self._wait("the edge's VIP:443 backend up", lambda: backend_up(self.edge_metrics(), "https"))

    def verify_tls(self) -> Probed:
        """A TLS client connects to VIP:443 with SNI = the domain, verifies against pebble's root."""
        before = connections(self.edge_metrics(), "https")
        data = self._client(
            "probe",
            *("--address", self.topology.vip, "--port", "443", "--domain", self.topology.domain),
            *("--root", str(self.certs / "root.pem")),
        )
        return Probed.from_client(data, self._counted_since("https", before))

    def _counted_since(self, listener: str, before: int, patience: float = 3.0) -> int:
        """Connections the listener accepted since it counted ``before``. The edge's workers publish
        their counters about once a second, so wait (at most ``patience``) for it to move; if it does
        not, 0 is the answer and the caller judges it."""
        deadline = time.monotonic() + patience
        while (moved := connections(self.edge_metrics(), listener) - before) == 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return moved

    # ---- down ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process, kill what else runs in the namespaces, delete them: always safe, and
        a step that fails does not keep the others from running (the first failure is raised)."""
        failures: list[LabError] = []
        for role in ("edge", "node", "pebble"):
            if (record := self.processes.pop(role, None)) is not None:
                try:
                    record.stop(timeout=5.0)
                except LabError as error:
                    failures.append(error)
        for ns in self.topology.namespaces():
            try:
                for pid in namespace_pids(ns):
                    kill(pid)
                delete_namespace(ns)
            except LabError as error:
                failures.append(error)
        shutil.rmtree(_NETNS_ETC / self.topology.client, ignore_errors=True)
        if failures:
            raise failures[0]

    def __enter__(self) -> "AcmeLab":
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def run_acme_lab(workdir: Path, name: str = "acme") -> AcmeRun:
    """The whole flow in a lab of its own: issue through VIP:80, then verify TLS through VIP:443."""
    with AcmeLab(workdir, name) as lab:
        issued = lab.issue()
        lab.serve_certificate()
        probed = lab.verify_tls()
        topology = lab.topology
        return AcmeRun(
            topology.domain,
            topology.vip,
            topology.client_address,
            topology.pop_cluster_address,
            issued,
            probed,
        )
