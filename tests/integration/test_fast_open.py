"""TCP Fast Open towards the backends (``backend_fast_open``), end to end in a network namespace.

Each test builds a namespace of its own (unique per process, removed at the end) with
``net.ipv4.tcp_fastopen=3`` (client and server side; a namespace has its own TCP sysctls, so the
host's are never touched) and runs everything inside: nginx nodes (``listen ... fastopen=256`` or
without it), the edge (``ip netns exec``), and the lab's client (``anycastlb.lab.probe_client``),
which sends each request from its own loopback source address and reports the client address nginx
saw through the PROXY header. Proof that connections used Fast Open comes from the namespace's own
kernel counters (``/proc/net/netstat``): ``TCPFastOpenActive`` counts SYNs whose data the node
acknowledged, ``TCPFastOpenActiveFail`` SYN data a node did not take (sent again after the
handshake), ``TCPFastOpenCookieReqd`` SYNs that asked for a cookie.

The first connection to an address has no cookie: its connect is an ordinary one that asks for a
cookie, so N requests give at least N - 1 fast opens. A cookie belongs to the node's *address*, not
its port, which the tests use to aim fast opens at ports that refuse them, ignore them or drop them.
"""

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from anycastlb.lab.netns import (
    delete_namespace,
    ip,
    missing_capability,
    namespace_exists,
    namespace_pids,
    run_inside,
)
from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.probe_client import request_bytes
from anycastlb.lab.processes import ProcessRecord, checkout_env, spawn
from anycastlb.lab.procfs import tcp_listeners
from anycastlb.lab.timeline import Attempt
from tests.support.peers import NETNS, NGINX, absent, require

pytestmark = [pytest.mark.integration, pytest.mark.root]

require(NETNS, NGINX)
_missing = missing_capability()
if _missing is not None:
    absent(f"network namespaces unavailable: {_missing}")

EDGE_PORT, METRICS_PORT = 8000, 9100
NODE, OTHER_NODE, NOBODY, STUCK = 8080, 8081, 8079, 8078  # ports inside the namespace
# No probes and no passive ejection: every client that maps to a broken node meets it.
KEEP_IT_IN = {"type": "none", "passive_fall": 0}
_STUCK_SERVER = """
import socket, sys, time
server = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=0)
held = socket.create_connection(("127.0.0.1", int(sys.argv[1])))  # the only place in its accept queue
print("ready", flush=True)
time.sleep(3600)
"""


class FastOpenNamespace:
    """A namespace with TCP Fast Open on, and the processes the test started in it."""

    _count = 0

    def __init__(self, workdir: Path) -> None:
        FastOpenNamespace._count += 1
        self.name = f"alb-tfo{os.getpid()}-{FastOpenNamespace._count}"
        self.dir = workdir
        self.processes: list[ProcessRecord] = []

    def create(self, lo_mtu: int | None = None) -> "FastOpenNamespace":
        self._remove()  # left by a killed run of a process that had our pid
        ip("netns", "add", self.name)
        run_inside(self.name, ["sysctl", "-q", "-w", "net.ipv4.tcp_fastopen=3"])
        if lo_mtu is not None:
            ip("-n", self.name, "link", "set", "lo", "mtu", str(lo_mtu))
        ip("-n", self.name, "link", "set", "lo", "up")
        return self

    def destroy(self) -> None:
        for record in reversed(self.processes):
            record.stop()
        self._remove()

    def _remove(self) -> None:
        if not namespace_exists(self.name):
            return
        for pid in namespace_pids(self.name):  # only ever our own namespace's, by its unique name
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        delete_namespace(self.name)

    # ---- programs ----------------------------------------------------------------------------

    def _spawn(self, role: str, argv: list[str], env: dict[str, str] | None = None) -> ProcessRecord:
        record = spawn(role, self.name, argv, self.dir / f"{role}.out", env)
        self.processes.append(record)
        return record

    def _wait(self, what: str, ready: Any, record: ProcessRecord, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not record.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start; its output ends with:\n{record.log_tail()}")
            time.sleep(0.02)

    def nginx(self, name: str, port: int, fastopen: int | None = 256) -> NginxBackend:
        node = NginxBackend(self.dir, name, port=port, fastopen=fastopen)
        conf = node.dir / "nginx.conf"
        conf.write_text(node.config())
        node.www  # noqa: B018 - create the document root
        record = self._spawn(name, ["nginx", "-c", str(conf), "-e", str(node.dir / "error.log")])
        self._wait(f"nginx {name}", lambda: self.listening(record, port), record)
        return node

    @staticmethod
    def listening(record: ProcessRecord, port: int) -> bool:
        with contextlib.suppress(OSError):
            return ("127.0.0.1", port) in tcp_listeners(Path(f"/proc/{record.pid}/net/tcp").read_text())
        return False

    def stuck_node(self, port: int) -> None:
        """Listens, but its accept queue is full: the kernel drops every SYN (nothing answers)."""
        record = self._spawn("stuck", [sys.executable, "-c", _STUCK_SERVER, str(port)])
        self._wait("the stuck node", lambda: "ready" in Path(record.log).read_text(), record)

    def edge(self, *listeners: dict[str, Any]) -> None:
        config = {
            "pop": "tfo",
            "workers": 1,
            "drain_timeout": "2s",
            "metrics": {"address": "127.0.0.1", "port": METRICS_PORT},
            "listeners": list(listeners),
        }
        path = self.dir / "edge.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {key: value for key, value in checkout_env().items() if key != "PROMETHEUS_MULTIPROC_DIR"}
        argv = [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(path)]
        record = self._spawn("edge", argv, env)
        self._wait("the edge", lambda: "edge_started" in Path(record.log).read_text(errors="replace"), record)

    # ---- observing -----------------------------------------------------------------------------

    def requests(self, port: int, count: int, pad: int = 0, timeout: float = 5.0) -> list[Attempt]:
        """``count`` requests, each a new connection from its own source 127.0.0.2, .3, ..."""
        sources = [arg for i in range(count) for arg in ("--source", f"127.0.0.{2 + i}")]
        argv = [sys.executable, "-m", "anycastlb.lab.probe_client", "127.0.0.1", str(port), *sources]
        argv += ["--count", str(count), "--pause", "0", "--timeout", str(timeout), "--pad", str(pad)]
        done = run_inside(self.name, argv, timeout=count * (timeout + 1) + 10)
        return [Attempt.from_json(line) for line in done.stdout.splitlines()]

    def tcp_counters(self) -> dict[str, int]:
        """The namespace's ``TcpExt`` counters (``/proc/net/netstat``, read from inside it)."""
        lines = run_inside(self.name, ["cat", "/proc/net/netstat"]).stdout.splitlines()
        counters: dict[str, int] = {}
        for names, values in zip(lines[::2], lines[1::2], strict=True):
            if names.startswith("TcpExt:"):
                counters.update(zip(names.split()[1:], map(int, values.split()[1:]), strict=True))
        return counters

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the edge's samples of ``name`` carrying ``labels`` (its /metrics, from inside)."""
        url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
        text = run_inside(self.name, ["curl", "-s", "--max-time", "5", url]).stdout
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[FastOpenNamespace]:
    space = FastOpenNamespace(tmp_path)
    try:
        yield space
    finally:
        space.destroy()


def web(*ports: int, **settings: Any) -> dict[str, Any]:
    """The listener under test: PROXY v2, Fast Open towards the nodes unless told otherwise."""
    return {
        "name": "web",
        "address": "127.0.0.1",
        "port": EDGE_PORT,
        "proxy_protocol": "v2",
        "backends": [{"address": "127.0.0.1", "port": port} for port in ports],
        "backend_fast_open": True,
        **settings,
    }


def delta(before: dict[str, int], after: dict[str, int], name: str) -> int:
    return after.get(name, 0) - before.get(name, 0)


def assert_all_answered(attempts: list[Attempt], count: int, node: str = "n0") -> None:
    """Every request answered by ``node``, which saw the client's own address (the PROXY header)."""
    assert len(attempts) == count
    failed = [a for a in attempts if not a.ok]
    assert failed == [], failed[:3]
    assert {a.node for a in attempts} == {node}
    assert [a.client_seen for a in attempts] == [a.source for a in attempts]


def settled_metric(space: FastOpenNamespace, name: str, **labels: str) -> float:
    """The value once the workers have folded every count (they do once a second): two reads
    1.2 s apart that agree."""
    value, deadline = space.metric(name, **labels), time.monotonic() + 10
    while True:
        time.sleep(1.2)
        again = space.metric(name, **labels)
        if again == value or time.monotonic() > deadline:
            return again
        value = again


def test_after_the_first_connection_the_proxy_header_and_request_ride_in_the_syn(
    namespace: FastOpenNamespace,
) -> None:
    namespace.create()
    node = namespace.nginx("n0", NODE)
    namespace.edge(web(NODE))
    before = namespace.tcp_counters()
    attempts = namespace.requests(EDGE_PORT, 20)
    after = namespace.tcp_counters()
    assert_all_answered(attempts, 20)
    assert sorted(line.split()[0] for line in node.log_lines()) == sorted(a.source for a in attempts)
    assert delta(before, after, "TCPFastOpenActive") >= 19, after  # all but the one that got the cookie
    assert delta(before, after, "TCPFastOpenPassive") >= 19  # and nginx took them as such
    assert delta(before, after, "TCPFastOpenActiveFail") == 0
    sent = settled_metric(namespace, "anycastlb_bytes_total", direction="client_to_backend")
    assert sent == 20 * len(request_bytes())  # the bytes in SYNs count like any others


def test_with_the_option_off_no_connection_uses_fast_open(namespace: FastOpenNamespace) -> None:
    namespace.create()
    namespace.nginx("n0", NODE)
    namespace.edge(web(NODE, backend_fast_open=False))
    before = namespace.tcp_counters()
    attempts = namespace.requests(EDGE_PORT, 20)
    after = namespace.tcp_counters()
    assert_all_answered(attempts, 20)
    for name in ("TCPFastOpenActive", "TCPFastOpenCookieReqd", "TCPFastOpenPassive"):
        assert delta(before, after, name) == 0, name


def test_a_node_that_never_offers_fast_open_gets_plain_connects(namespace: FastOpenNamespace) -> None:
    namespace.create()
    namespace.nginx("n0", NODE, fastopen=None)
    namespace.edge(web(NODE))
    before = namespace.tcp_counters()
    attempts = namespace.requests(EDGE_PORT, 10)
    after = namespace.tcp_counters()
    assert_all_answered(attempts, 10)
    assert delta(before, after, "TCPFastOpenActive") == 0
    assert delta(before, after, "TCPFastOpenCookieReqd") >= 10  # each connect asked, none got one


def test_a_node_that_ignores_the_data_in_the_syn_still_gets_the_request(namespace: FastOpenNamespace) -> None:
    """A cookie is cached (from another port of the address) but this node does not take SYN data:
    the kernel sends it again after the handshake."""
    namespace.create()
    namespace.nginx("n0", NODE)
    namespace.nginx("n1", OTHER_NODE, fastopen=None)
    warm = web(NODE, name="warm", port=EDGE_PORT + 1)
    namespace.edge(warm, web(OTHER_NODE))
    assert_all_answered(namespace.requests(EDGE_PORT + 1, 2), 2)  # the address's cookie
    before = namespace.tcp_counters()
    attempts = namespace.requests(EDGE_PORT, 10)
    after = namespace.tcp_counters()
    assert_all_answered(attempts, 10, node="n1")
    assert delta(before, after, "TCPFastOpenActiveFail") == 10
    assert delta(before, after, "TCPFastOpenActive") == 0


@pytest.mark.parametrize("retry_on_reset", [True, False])
@pytest.mark.parametrize("pad", [0, 3000], ids=["request-in-the-syn", "request-larger-than-the-syn"])
def test_a_refused_fast_open_is_retried_on_the_next_node(
    namespace: FastOpenNamespace, retry_on_reset: bool, pad: int
) -> None:
    """Nothing listens on the first node's port. With the address's cookie cached, the connect
    "succeeds" at once and the refusal (a reset of the SYN) arrives while relaying: it is a refused
    connect all the same, so the next candidate gets the first bytes, with or without
    ``retry_on_reset`` (nothing reached the node). ``pad``: with a 1500-byte MTU a 3 KB request
    does not fit in the SYN; the rest waits for the handshake and must be replayed too."""
    namespace.create(lo_mtu=1500)
    namespace.nginx("n0", NODE)
    namespace.edge(web(NOBODY, NODE, health=KEEP_IT_IN, retry_on_reset=retry_on_reset))
    before = namespace.tcp_counters()
    attempts = namespace.requests(EDGE_PORT, 30, pad=pad)
    after = namespace.tcp_counters()
    assert_all_answered(attempts, 30)
    refused = settled_metric(namespace, "anycastlb_backend_connect_errors_total", reason="refused")
    # Only the very first connect went without a cookie; more than one refusal means fast opens were refused.
    assert refused >= 2, "too few clients mapped to the refusing port: the test proves nothing"
    assert namespace.metric("anycastlb_backend_connect_errors_total", reason="reset") == 0
    assert delta(before, after, "TCPFastOpenActive") >= 29  # every connection to n0 but the first
    # each request's bytes counted once, though the refused ones were sent twice (or in parts)
    request = len(request_bytes(pad))
    sent = settled_metric(namespace, "anycastlb_bytes_total", direction="client_to_backend")
    assert sent == 30 * request


@pytest.mark.slow
@pytest.mark.parametrize("retry_on_reset", [True, False])
def test_a_fast_open_nobody_answers_times_out_after_connect_timeout(
    namespace: FastOpenNamespace, retry_on_reset: bool
) -> None:
    """The first node's SYNs are dropped (its accept queue is full). A fast open is already relaying
    when the SYN leaves, so ``connect_timeout`` must still end the wait: on the next node when
    ``retry_on_reset`` allows a replay (the SYN carried the request, and a node whose answer was
    lost may have read it), otherwise with a reset; never by hanging until ``idle_timeout``."""
    namespace.create()
    namespace.nginx("n0", NODE)
    namespace.stuck_node(STUCK)
    connect_timeout = 0.3
    listener = web(
        STUCK, NODE, health=KEEP_IT_IN, retry_on_reset=retry_on_reset, connect_timeout=f"{connect_timeout}s"
    )
    namespace.edge(listener)
    attempts = namespace.requests(EDGE_PORT, 16, timeout=3.0)
    assert len(attempts) == 16
    # One connect_timeout on the stuck node, then the next node or a reset; 1.2 s of room for a
    # loaded machine, well below the client's 3 s (and the listener's 300 s idle_timeout).
    assert all(a.ended - a.started < connect_timeout + 1.2 for a in attempts), (
        "a connect waited past connect_timeout"
    )
    timeouts = settled_metric(namespace, "anycastlb_backend_connect_errors_total", reason="timeout")
    # Only the very first connect went without a cookie; more than one timeout means fast opens timed out.
    assert timeouts >= 2, "too few clients mapped to the stuck node: the test proves nothing"
    retries = namespace.metric("anycastlb_connect_retries_total")
    failed = [a for a in attempts if not a.ok]
    if retry_on_reset:
        assert_all_answered(attempts, 16)
        assert retries == timeouts
        sent = settled_metric(namespace, "anycastlb_bytes_total", direction="client_to_backend")
        assert sent == 16 * len(request_bytes())  # replayed ones count once
    else:
        # a plain connect that timed out is retried as ever (at most the first one: no cookie yet);
        # the fast opens that timed out are reset
        assert retries <= 1
        assert len(failed) == timeouts - retries
        assert all("ConnectionResetError" in a.error for a in failed), failed[:3]
