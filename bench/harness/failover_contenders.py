"""The failover benchmark's contenders in front of the same three nodes, and what their logs say.

- ``haproxy``: Debian HAProxy, ``mode tcp``, ``balance source`` with ``hash-type consistent``
  (the client address picks the node, like the edge's Maglev, and a redispatch avoids the server
  that just failed), ``send-proxy-v2``, an HTTP check ``GET /`` with ``check-send-proxy``,
  ``inter 100ms fall 2 rise 2``, ``timeout check 100ms``, ``option redispatch``, ``retries 3``,
  ``timeout connect 1s``. Health-check lines go to stdout with ISO timestamps (µs).
- ``edge-fast``: ``anycastlb edge``, 2 workers, ``health: {type: http, path: /, interval: 100ms,
  timeout: 100ms, rise: 2, fall: 2}``; other settings default (``retries: 2``: all 3 nodes).
- ``edge-default``: the same with ``health: {type: http, path: /}`` (interval 500ms, timeout
  250ms, rise 2, fall 2, passive_fall 1).

The nodes' only port requires a PROXY header: HAProxy's check gets it from ``check-send-proxy``,
the edge's from ``send_proxy``'s default (a check on the traffic port of a PROXY listener sends
one). A node's state is read from the log: HAProxy's ``Server nodes/n1 is DOWN|UP`` and the edge's
``backend_down|backend_up ... backend=127.0.0.1:P``.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .failover_nodes import Node
from .probes import accepts_tcp, free_port, http_get, wait_until
from .processes import CHILDREN
from .servers import REPO, tail

CONTENDERS = ("haproxy", "edge-fast", "edge-default")
LISTENER = "failover"
FAST_CHECK = {"interval": "100ms", "timeout": "100ms", "rise": 2, "fall": 2}
# How long the client keeps going after t0: covers fall 2 at 100 ms (or at 500 ms, for the defaults)
# several times over, so a slow ejection is measured instead of cut off.
OBSERVE = {"haproxy": 1.5, "edge-fast": 1.5, "edge-default": 3.0}
_HAPROXY_CHANGE = re.compile(
    r"^(?P<at>\S+) Server nodes/(?P<node>\S+) is (?P<state>DOWN|UP)\b(?P<detail>.*)$"
)
# HAProxy gives the reason on the failed check before its DOWN line; that reason goes with the DOWN.
_HAPROXY_CHECK = re.compile(
    r"^\S+ Health check for server nodes/(?P<node>\S+) failed, reason: (?P<reason>.*?), check"
)
_EDGE_CHANGE = re.compile(
    rf"^(?P<at>\S+) \S+ pid=\d+ \S+ backend_(?P<state>down|up) listener={LISTENER} "
    r"backend=(?P<node>\S+) (?P<detail>.*)$"
)
_TROUBLE = re.compile(r" (ERROR|CRITICAL) |Traceback|\[ALERT\]|no server available")


@dataclass(frozen=True)
class StateChange:
    at: float  # wall clock, from the log line
    node: str
    up: bool
    detail: str


@dataclass
class Contender:
    """A running proxy; ``names`` maps what its log calls a node to the node's name."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    pattern: re.Pattern[str]
    names: dict[str, str]
    changes: list[StateChange] = field(default_factory=list)
    _offset: int = 0
    _last_failure: dict[str, str] = field(default_factory=dict)

    def refresh(self) -> list[StateChange]:
        """Parse the log lines written since the last call; returns every change seen so far."""
        with self.log.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            if check := _HAPROXY_CHECK.match(line):
                self._last_failure[check["node"]] = check["reason"]
            match = self.pattern.match(line)
            if match and match["node"] in self.names:
                at = datetime.datetime.fromisoformat(match["at"]).timestamp()  # naive: local time
                up = match["state"].lower() == "up"
                detail = match["detail"].strip(" .,")
                if quoted := re.search(r"reason='(.*?)' ", detail):  # the edge's reason='...'
                    detail = quoted[1]
                if not up and match["node"] in self._last_failure:
                    detail = self._last_failure[match["node"]]
                self.changes.append(StateChange(at, self.names[match["node"]], up, detail))
        return self.changes

    def is_up(self, node: str) -> bool:
        """As the last DOWN/UP line for it says; a node is up from the start for both proxies."""
        return next((c.up for c in reversed(self.refresh()) if c.node == node), True)

    def changes_of(self, node: str, since: float) -> list[StateChange]:
        """``since`` is compared at ms resolution: the edge truncates its timestamps to the ms."""
        floor = int(since * 1000) / 1000
        return [c for c in self.refresh() if c.node == node and c.at >= floor]

    def alive(self) -> bool:
        return not CHILDREN.has_exited(self.proc)

    def trouble(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [line.strip() for line in text.splitlines() if _TROUBLE.search(line)]


def start_contender(name: str, workdir: Path, nodes: Sequence[Node]) -> Contender:
    if name == "haproxy":
        return _start_haproxy(workdir, nodes)
    health: dict[str, object] = {"type": "http", "path": "/"}
    if name == "edge-fast":
        health |= FAST_CHECK
    return _start_edge(name, workdir, nodes, health)


def _start_haproxy(workdir: Path, nodes: Sequence[Node]) -> Contender:
    port = free_port()
    servers = "\n".join(
        f"    server {node.name} {node.key} send-proxy-v2 check check-send-proxy inter 100ms fall 2 rise 2"
        for node in nodes
    )
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(
        textwrap.dedent("""\
        global
            log stdout format iso local0
        defaults
            mode tcp
            option redispatch
            retries 3
            timeout connect 1s
            timeout client 30s
            timeout server 30s
            timeout check 100ms
        frontend failover
            bind 127.0.0.1:{port}
            default_backend nodes
        backend nodes
            log global
            option log-health-checks
            balance source
            hash-type consistent
            option httpchk GET /
        {servers}
        """).format(port=port, servers=servers)
    )
    log = workdir / "haproxy.log"
    proc = CHILDREN.start_server(["haproxy", "-db", "-f", str(cfg)], log)
    contender = Contender("haproxy", port, proc, log, _HAPROXY_CHANGE, {n.name: n.name for n in nodes})
    _wait_ready(contender)
    return contender


def _start_edge(name: str, workdir: Path, nodes: Sequence[Node], health: dict[str, object]) -> Contender:
    port = free_port()
    listener = {
        "name": LISTENER,
        "address": "127.0.0.1",
        "port": port,
        "proxy_protocol": "v2",
        "backends": [{"address": "127.0.0.1", "port": node.port} for node in nodes],
        "health": health,
        "connect_timeout": "1s",
    }
    config = {
        "pop": "bench",
        "workers": 2,
        "drain_timeout": "2s",
        "metrics": {"address": "127.0.0.1", "port": free_port()},
        "listeners": [listener],
    }
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / f"{name}.log"
    paths = [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in paths if path))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(cfg)]
    proc = CHILDREN.start_server(argv, log, cwd=REPO, env=env)
    contender = Contender(name, port, proc, log, _EDGE_CHANGE, {n.key: n.name for n in nodes})
    _wait_ready(contender, log_event="edge_started")
    return contender


def _wait_ready(contender: Contender, log_event: str = "") -> None:
    """Accepts TCP, logged its start event, and a ``GET /`` through it reaches a node."""

    def ready() -> bool:
        if not contender.alive():
            raise RuntimeError(
                f"{contender.name} exited with {CHILDREN.stop(contender.proc)}:\n{tail(contender.log)}"
            )
        if not accepts_tcp(contender.port) or log_event not in contender.log.read_text(errors="replace"):
            return False
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = http_get(contender.port, "/")
            return status == 200 and body.startswith(b"node=")
        return False

    try:
        wait_until(ready, contender.name)
    except TimeoutError as error:
        raise RuntimeError(f"{error}; log:\n{tail(contender.log)}") from None
