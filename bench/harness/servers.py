"""The servers: the one nginx backend, and HAProxy or the edge agent in front of it as a contender."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .probes import accepts_tcp, free_port, http_get, serves_small, wait_until
from .processes import CHILDREN, children_of

REPO = Path(__file__).resolve().parents[2]
BIG_FILE_BYTES = 1 << 30
NGINX_WORKERS = 1  # see bench/README.md: 2 workers only steal CPU from the proxy on 2 cores


@dataclass
class Nginx:
    """The one backend: a plain port (``direct``), a PROXY-protocol port, and a stub_status port."""

    workdir: Path
    big_file: Path
    plain_port: int = field(default_factory=free_port)
    pp_port: int = field(default_factory=free_port)
    status_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    fastopen: int | None = None  # TCP Fast Open on the PROXY-protocol port (nginx's fastopen=N); None: off

    def config(self) -> str:
        d = self.workdir
        fastopen = f" fastopen={self.fastopen}" if self.fastopen is not None else ""
        locations = (
            f'location = /small {{ default_type text/plain; return 200 "ok\\n"; }} '
            f"location = /big {{ alias {self.big_file}; }}"
        )
        return textwrap.dedent(f"""\
            daemon off; master_process on; worker_processes {NGINX_WORKERS};
            worker_rlimit_nofile 65536;
            pid {d}/nginx.pid; error_log {d}/nginx-error.log warn;
            events {{ worker_connections 40000; }}
            http {{
              access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
              default_type application/octet-stream;
              client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
              uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
              server {{ listen 127.0.0.1:{self.plain_port} backlog=4096; {locations} }}
              server {{
                listen 127.0.0.1:{self.pp_port} proxy_protocol backlog=4096{fastopen};
                set_real_ip_from 127.0.0.0/8; real_ip_header proxy_protocol;
                {locations}
              }}
              server {{ listen 127.0.0.1:{self.status_port}; location = /status {{ stub_status; }} }}
            }}
        """)

    def start(self) -> None:
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        argv = [
            "nginx",
            "-p",
            f"{self.workdir}/",
            "-c",
            str(conf),
            "-e",
            str(self.workdir / "nginx-error.log"),
        ]
        self.proc = CHILDREN.start_server(argv, self.workdir / "nginx.out")
        wait_until(lambda: serves_small(self.plain_port) and serves_small_status(self), "nginx")

    def active_connections(self) -> int:
        status, body = http_get(self.status_port, "/status")
        match = re.search(rb"Active connections:\s*(\d+)", body)
        if status != 200 or match is None:
            raise RuntimeError(f"nginx stub_status answered {status}: {body[:200]!r}")
        return int(match.group(1)) - 1  # minus the status request itself

    def renew_workers(self) -> None:
        """SIGHUP: fresh workers, so each contender meets nginx in the same state.

        A long-lived worker keeps the memory it once needed (glibc does not return it), so without this
        the second ``direct`` round would measure 0 MiB for its idle connections.
        """
        assert self.proc is not None
        master, old = self.proc.pid, children_of(self.proc.pid, recursive=False)
        self.proc.send_signal(signal.SIGHUP)

        def renewed() -> bool:
            workers = children_of(master, recursive=False)
            return len(workers) == NGINX_WORKERS and not workers & old and serves_small(self.plain_port)

        wait_until(renewed, "nginx workers after SIGHUP")

    def stop(self) -> None:
        if self.proc is not None:
            CHILDREN.stop(self.proc)
            self.proc = None


def serves_small_status(nginx: Nginx) -> bool:
    with contextlib.suppress(OSError, RuntimeError, http.client.HTTPException):
        return nginx.active_connections() >= 0
    return False


@dataclass
class Contender:
    """One way to reach nginx: ``port`` is where clients connect, ``pid`` whose tree RSS counts."""

    name: str
    port: int
    pid: int
    proc: subprocess.Popen[bytes] | None
    log: Path | None


def start_haproxy(
    workdir: Path,
    nginx: Nginx,
    maxconn: int,
    frontend: str = "",
    name: str = "haproxy",
    threads: int = 1,
    server_options: str = "",
) -> Contender:
    """``frontend``: extra lines for the frontend section (e.g. a stick table and a rate rule);
    ``threads``: ``nbthread``; ``server_options``: more keywords on the server line (e.g. ``tfo``)."""
    port = free_port()
    server = " ".join(["server nginx", f"127.0.0.1:{nginx.pp_port} send-proxy-v2", *server_options.split()])
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(
        textwrap.dedent(f"""\
        global
            nbthread {threads}
            maxconn {maxconn}
            maxpipes 256
        defaults
            mode tcp
            timeout connect 5s
            timeout client 120s
            timeout server 120s
            option splice-request
            option splice-response
        frontend bench
            bind 127.0.0.1:{port}
            backlog 4096
            {textwrap.indent(frontend, " " * 12).strip()}
            default_backend nginx
        backend nginx
            {server}
    """)
    )
    log = workdir / f"{name}.log"
    proc = CHILDREN.start_server(["haproxy", "-db", "-f", str(cfg)], log)
    _wait_ready(name, proc, port, log)
    return Contender(name, port, proc.pid, proc, log)


def start_edge(
    workdir: Path,
    nginx: Nginx,
    workers: int,
    settings: Mapping[str, object] | None = None,
    name: str = "",
    relay: str | None = None,
    src: Path | None = None,
) -> Contender:
    """``settings``: extra listener settings (e.g. rate limits); ``name`` defaults to ``edge-<N>w``;
    ``relay``: the edge's ``relay`` mode (default: the config's default, ``auto``); ``src``: the
    ``src/`` of another build of the edge to run (a baseline), default this repository's."""
    name = name or f"edge-{workers}w"
    port = free_port()
    config: dict[str, object] = {
        "pop": "bench",
        "workers": workers,
        **({"relay": relay} if relay else {}),
        "drain_timeout": "5s",
        "metrics": {"address": "127.0.0.1", "port": free_port()},
        "listeners": [
            {
                "name": "bench",
                "address": "127.0.0.1",
                "port": port,
                "proxy_protocol": "v2",
                "backends": [{"address": "127.0.0.1", "port": nginx.pp_port}],
                "max_connections": 200_000,
                "max_connections_per_source": 100_000,
                **(settings or {}),
            }
        ],
    }
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / f"{name}.log"
    paths = [str(src or REPO / "src"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in paths if path))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(cfg)]
    proc = CHILDREN.start_server(argv, log, cwd=REPO, env=env)
    _wait_ready(name, proc, port, log, log_event="edge_started")
    return Contender(name, port, proc.pid, proc, log)


def _wait_ready(name: str, proc: subprocess.Popen[bytes], port: int, log: Path, log_event: str = "") -> None:
    """Accepts TCP, logged its start event, and answers ``GET /small`` through to nginx."""

    def ready() -> bool:
        if CHILDREN.has_exited(proc):
            raise RuntimeError(f"{name} exited with {CHILDREN.stop(proc)}:\n{tail(log)}")
        return accepts_tcp(port) and log_event in log.read_text(errors="replace") and serves_small(port)

    try:
        wait_until(ready, name)
    except TimeoutError as error:
        raise RuntimeError(f"{error}; log:\n{tail(log)}") from None


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def make_big_file(directory: Path) -> Path:
    """1 GiB of random bytes on tmpfs, written from a repeated 64 MiB block (about a second)."""
    path = directory / "big.bin"
    block = os.urandom(64 << 20)
    with path.open("wb") as out:
        for _ in range(BIG_FILE_BYTES // len(block)):
            out.write(block)
    directory.chmod(0o755)  # nginx workers run as nobody when the benchmark runs as root
    path.chmod(0o644)
    return path
