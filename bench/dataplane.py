"""Data-plane benchmark: a client straight to nginx, HAProxy, and our edge agent with 1 and 2 workers.

What is measured, per contender and round (all traffic on 127.0.0.1):

- **bulk 1 / 4 streams, Gbit/s**: curl downloads a 1 GiB file (tmpfs, nginx ``sendfile``) again and
  again for ``--seconds``; the last download is cut by ``--max-time`` and its bytes still count.
  Figure = all bytes / wall time. Streams are separate curl processes (separate connections).
- **conn/s**: ``wrk -t1 -c50 -H 'Connection: close'`` on a 3-byte response, so every request is a
  new TCP connection (and, through a proxy, a new backend connection plus a PROXY v2 header).
  Socket errors and non-2xx answers are reported and flag the run.
- **latency p50/p99, ms**: an open-loop generator (fixed schedule, :data:`LATENCY_RATE` req/s, not
  waiting for answers) times connect + ``GET /small`` + complete response. wrk cannot hold a rate
  and wrk2 is not packaged, and a closed loop hides queueing; the Python client adds its own
  overhead, but it is the same client for every contender, so differences are the proxies'.
- **RSS per 10k idle connections, MiB**: 10,000 connections (fewer if the fd limit cannot fit them;
  then scaled) that each sent an unfinished request line (the proxy has connected to nginx; nginx
  waits for the rest). Figure = growth of the summed
  VmRSS of the proxy's process tree. For ``direct`` it is nginx itself (master + worker). Taken
  first, on a freshly started proxy (fresh nginx workers for ``direct``), before any traffic.

Why side by side in one run: the machine is small (2 cores) and shared, so absolute numbers drift
by tens of percent between minutes. Every round runs all contenders in rotated order against the
same nginx, and the report gives medians over rounds, ratios to HAProxy and to direct, and every
raw value. Client, proxy and nginx share the same cores: the figures compare CPU efficiency
under contention, not line rate.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import datetime
import http.client
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIG_FILE_BYTES = 1 << 30
LATENCY_RATE = 500  # req/s: well inside what the direct path sustains on 2 cores
IDLE_UNIT = 10_000  # the RSS figure is per this many idle connections
NGINX_WORKERS = 1  # see bench/README.md: 2 workers only steal CPU from the proxy on 2 cores
CONTENDERS = ("direct", "haproxy", "edge-1w", "edge-2w")
SMALL_REQUEST = b"GET /small HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class FigureSpec:
    key: str
    title: str
    unit: str
    higher_is_better: bool


FIGURES = (
    FigureSpec("bulk1", "bulk, 1 stream", "Gbit/s", True),
    FigureSpec("bulk4", "bulk, 4 streams", "Gbit/s", True),
    FigureSpec("cps", "new connections", "conn/s", True),
    FigureSpec("p50", f"latency p50 @ {LATENCY_RATE}/s", "ms", False),
    FigureSpec("p99", f"latency p99 @ {LATENCY_RATE}/s", "ms", False),
    FigureSpec("rss", f"RSS per {IDLE_UNIT // 1000}k idle conns", "MiB", False),
)


@dataclass
class Sample:
    """One contender's figures in one round; ``flags`` name the figures whose run had errors."""

    values: dict[str, float] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


@dataclass
class Results:
    """Per contender, one :class:`Sample` per round, and every anomaly noticed on the way."""

    contenders: tuple[str, ...] = CONTENDERS
    idle_count: int = IDLE_UNIT
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.samples = {name: [] for name in self.contenders}

    def note(self, round_no: int, contender: str, text: str) -> None:
        message = f"round {round_no}, {contender}: {text}"
        self.anomalies.append(message)
        print(f"  ! {message}", flush=True)


# --------------------------------------------------------------------------- child processes


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the benchmark dies (even by SIGKILL)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Children:
    """Every process the benchmark starts, so that all of them are stopped on any exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()

    def start_server(
        self, argv: Sequence[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A long-lived server leading its own session and process group (Ctrl-C reaches only us)."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - called from the main thread only
            )
        self._add(proc)
        return proc

    def run(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """A short-lived client (curl, wrk); safe to call from threads."""
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            self._discard(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, out.decode(), err.decode())

    def _add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.add(proc)

    def _discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(proc)

    @staticmethod
    def has_exited(proc: subprocess.Popen[bytes]) -> bool:
        """Without reaping it: while it is an unreaped zombie its pid (= its group id) cannot be reused."""
        if proc.returncode is not None:
            return True
        with contextlib.suppress(ChildProcessError):
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        return True

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left of its process group."""
        if not self.has_exited(proc):
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not self.has_exited(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.returncode is None:  # not reaped yet, so the group id is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # workers that outlived their leader
        code = proc.wait()
        self._discard(proc)
        return code

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for proc in running:
            self.stop(proc, grace=5.0)


CHILDREN = Children()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------- small helpers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(0.05)


def accepts_tcp(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def serves_small(port: int) -> bool:
    with contextlib.suppress(OSError, http.client.HTTPException):
        return http_get(port, "/small") == (200, b"ok\n")
    return False


def children_of(root: int, recursive: bool) -> set[int]:
    """Child pids of ``root`` (all descendants if ``recursive``), from ``/proc/*/stat``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        if recursive:
            frontier.extend(children)
    return found


def tree_rss_kib(root: int) -> int:
    """Summed VmRSS of ``root`` and all its descendants (nginx workers, edge workers)."""
    total = 0
    for pid in {root} | children_of(root, recursive=True):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def raise_file_limit(wanted: int = 65_536) -> None:
    """10k idle connections need 10k fds here and 20k in a proxy (children inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------- the servers


@dataclass
class Nginx:
    """The one backend: a plain port (``direct``), a PROXY-protocol port, and a stub_status port."""

    workdir: Path
    big_file: Path
    plain_port: int = field(default_factory=free_port)
    pp_port: int = field(default_factory=free_port)
    status_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        d = self.workdir
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
                listen 127.0.0.1:{self.pp_port} proxy_protocol backlog=4096;
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


def start_haproxy(workdir: Path, nginx: Nginx, maxconn: int) -> Contender:
    port = free_port()
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(
        textwrap.dedent(f"""\
        global
            nbthread 1
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
            default_backend nginx
        backend nginx
            server nginx 127.0.0.1:{nginx.pp_port} send-proxy-v2
    """)
    )
    log = workdir / "haproxy.log"
    proc = CHILDREN.start_server(["haproxy", "-db", "-f", str(cfg)], log)
    _wait_ready("haproxy", proc, port, log)
    return Contender("haproxy", port, proc.pid, proc, log)


def start_edge(workdir: Path, nginx: Nginx, workers: int) -> Contender:
    port = free_port()
    config = {
        "pop": "bench",
        "workers": workers,
        "relay": "splice",
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
            }
        ],
    }
    cfg = workdir / f"edge-{workers}w.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / f"edge-{workers}w.log"
    paths = [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in paths if path))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(cfg)]
    proc = CHILDREN.start_server(argv, log, cwd=REPO, env=env)
    _wait_ready(f"edge-{workers}w", proc, port, log, log_event="edge_started")
    return Contender(f"edge-{workers}w", port, proc.pid, proc, log)


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


# --------------------------------------------------------------------------- the measurements


def bulk_gbits(port: int, streams: int, seconds: float) -> tuple[float, list[str]]:
    """Each stream downloads /big with curl in a loop until ``seconds`` are spent; Gbit/s overall."""
    totals = [0] * streams
    errors: list[str] = []
    start = time.monotonic()
    deadline = start + seconds

    def stream(index: int) -> None:
        while (remaining := deadline - time.monotonic()) > 0.05:
            argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"]
            argv += ["--max-time", f"{remaining:.3f}", f"http://127.0.0.1:{port}/big"]
            done = CHILDREN.run(argv, timeout=remaining + 10)
            status, _, size = done.stdout.strip().partition(" ")
            totals[index] += int(size or 0)
            if done.returncode not in (0, 28) or status != "200":  # 28: --max-time cut it, as designed
                errors.append(f"curl exit {done.returncode}, HTTP {status} {done.stderr.strip()}")
                return

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(totals) * 8 / (time.monotonic() - start) / 1e9, errors


def connection_rate(port: int, seconds: float) -> tuple[float, list[str]]:
    """``wrk`` with ``Connection: close``; returns requests/s and any errors it reported."""
    argv = [
        "wrk",
        "-t1",
        "-c50",
        f"-d{seconds:g}s",
        "-H",
        "Connection: close",
        f"http://127.0.0.1:{port}/small",
    ]
    done = CHILDREN.run(argv, timeout=seconds + 30)
    rate = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    errors = [line.strip() for line in done.stdout.splitlines() if "errors" in line or "Non-2xx" in line]
    if done.returncode != 0 or rate is None:
        errors.append(f"wrk exit {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return (float(rate.group(1)) if rate else 0.0), errors


async def _timed_request(port: int) -> float | str:
    """Seconds for connect + GET /small + the complete response, or what went wrong."""
    start = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(SMALL_REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
        elapsed = time.perf_counter() - start
        return elapsed if head.startswith(b"HTTP/1.1 200") else head.split(b"\r\n", 1)[0].decode()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        return type(error).__name__
    finally:
        if writer is not None:
            writer.close()


async def _open_loop(port: int, rate: int, seconds: float) -> tuple[list[float | str], float]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks: list[asyncio.Task[float | str]] = []
    worst_lag = 0.0
    for index in range(int(rate * seconds)):
        due = start + index / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        worst_lag = max(worst_lag, loop.time() - due)
        tasks.append(asyncio.create_task(_timed_request(port)))
    return list(await asyncio.gather(*tasks)), worst_lag


def latency_ms(port: int, seconds: float) -> tuple[float, float, list[str]]:
    """p50 and p99 (nearest rank) of an open-loop run at :data:`LATENCY_RATE` requests/s."""
    outcomes, worst_lag = asyncio.run(_open_loop(port, LATENCY_RATE, seconds))
    times = sorted(o * 1000 for o in outcomes if isinstance(o, float))
    failures = [o for o in outcomes if isinstance(o, str)]
    errors = [f"{len(failures)} of {len(outcomes)} failed: {sorted(set(failures))}"] if failures else []
    if worst_lag > 0.05:
        errors.append(f"the generator fell {worst_lag * 1000:.0f} ms behind its schedule")
    if not times:
        return float("nan"), float("nan"), errors
    return nearest_rank(times, 0.50), nearest_rank(times, 0.99), errors


def nearest_rank(ordered: Sequence[float], quantile: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(quantile * len(ordered)) - 1))]


def idle_connection_count() -> int:
    """10,000, or fewer if a one-process proxy could not hold them: it needs two fds per connection.

    The limit is inherited from us; without CAP_SYS_RESOURCE (containers) it cannot be raised.
    """
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return min(IDLE_UNIT, (hard - 1_000) // 2 // 500 * 500)


def idle_rss_mib(contender: Contender, nginx: Nginx, count: int) -> tuple[float, list[str]]:
    """RSS growth of the contender's process tree while it holds ``count`` unfinished requests."""
    with contextlib.suppress(TimeoutError):  # the readiness probe's connection may still be closing
        wait_until(lambda: nginx.active_connections() == 0, "nginx without connections", 10)
    baseline_active = nginx.active_connections()
    before = tree_rss_kib(contender.pid)
    held: list[socket.socket] = []
    errors: list[str] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", contender.port), timeout=10)
            held.append(sock)
            sock.sendall(b"GET /small HTTP/1.1\r\n")  # no final CRLF: the request never completes
        target = baseline_active + count
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: nginx.active_connections() >= target, "idle connections at nginx", 30)
        time.sleep(1.0)  # let the proxy finish bookkeeping (timers, buffers) before sampling
        reached = nginx.active_connections() - baseline_active
        after = tree_rss_kib(contender.pid)
    except OSError as error:
        return float("nan"), [f"opened {len(held)} idle connections, then {error!r}"]
    finally:
        for sock in held:
            sock.close()
    if reached < count:
        errors.append(f"only {reached} of {count} idle connections reached nginx")
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: nginx.active_connections() <= baseline_active + 50, "idle connections closed", 30)
    return (after - before) / 1024 * IDLE_UNIT / max(1, min(reached, len(held))), errors


# --------------------------------------------------------------------------- one round


@dataclass
class Bench:
    """What every round shares: the temp dir, the one nginx, the run length and the results."""

    workdir: Path
    nginx: Nginx
    seconds: float
    results: Results


def start_contender(bench: Bench, name: str) -> Contender:
    if name == "direct":
        assert bench.nginx.proc is not None
        return Contender("direct", bench.nginx.plain_port, bench.nginx.proc.pid, None, None)
    if name == "haproxy":
        return start_haproxy(bench.workdir, bench.nginx, maxconn=bench.results.idle_count + 200)
    return start_edge(bench.workdir, bench.nginx, workers=int(name.removeprefix("edge-").removesuffix("w")))


def measure(bench: Bench, contender: Contender) -> Iterator[tuple[str, float, list[str]]]:
    """Yields (figure key, value, errors) in a fixed order.

    RSS first, on the fresh process: memory that earlier traffic left behind (freed but kept by the
    allocator) would otherwise absorb part of the growth, by an amount that varies from run to run.
    """
    yield ("rss", *idle_rss_mib(contender, bench.nginx, bench.results.idle_count))
    for key, streams in (("bulk1", 1), ("bulk4", 4)):
        yield (key, *bulk_gbits(contender.port, streams, bench.seconds))
    yield ("cps", *connection_rate(contender.port, bench.seconds))
    p50, p99, errors = latency_ms(contender.port, bench.seconds)
    yield "p50", p50, errors
    yield "p99", p99, []


def run_contender(bench: Bench, name: str, round_no: int) -> None:
    sample = Sample()
    bench.results.samples[name].append(sample)
    bench.nginx.renew_workers()
    try:
        contender = start_contender(bench, name)
    except RuntimeError as failure:
        bench.results.note(round_no, name, f"did not start: {failure}")
        return
    try:
        for key, value, errors in measure(bench, contender):
            sample.values[key] = value
            print(f"  {name:8} {key:5} {value:10.3f}", flush=True)
            for error in errors:
                sample.flags.add(key)
                bench.results.note(round_no, name, f"{key}: {error}")
    finally:
        stop_contender(contender, round_no, bench.results)


def stop_contender(contender: Contender, round_no: int, results: Results) -> None:
    if contender.proc is None:
        return
    early = CHILDREN.has_exited(contender.proc)
    code = CHILDREN.stop(contender.proc)
    if early:
        results.note(round_no, contender.name, f"exited before it was stopped, code {code}")
    elif code not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
        results.note(round_no, contender.name, f"exit code {code} after SIGTERM")
    assert contender.log is not None
    bad = [
        line
        for line in contender.log.read_text(errors="replace").splitlines()
        if re.search(r" (ERROR|WARNING|CRITICAL) |Traceback|\[ALERT\]|\[WARNING\]", line)
    ]
    for line in bad[:5]:
        results.note(round_no, contender.name, f"log: {line.strip()}")
    contender.log.write_text("")  # a fresh log for the next round's readiness check


def rotated(contenders: tuple[str, ...], round_no: int) -> list[str]:
    """Round 1 runs the contenders in the given order, round 2 starts with the second, and so on."""
    shift = (round_no - 1) % len(contenders)
    return list(contenders[shift:] + contenders[:shift])


# --------------------------------------------------------------------------- the report


def median(sample_list: list[Sample], key: str) -> float | None:
    values = [s.values[key] for s in sample_list if key in s.values and s.values[key] == s.values[key]]
    return statistics.median(values) if values else None


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def ratio(value: float | None, reference: float | None) -> str:
    return "-" if value is None or not reference else f"{value / reference:.2f}x"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def summary_tables(results: Results) -> str:
    names = results.contenders
    medians = {name: {f.key: median(results.samples[name], f.key) for f in FIGURES} for name in names}
    header = ["figure", *names]
    sections = []
    for title, reference in (("Medians", None), ("÷ haproxy", "haproxy"), ("÷ direct", "direct")):
        rows = []
        for spec in FIGURES:
            label = f"{spec.title} ({spec.unit}, {'higher' if spec.higher_is_better else 'lower'} is better)"
            cells = [
                fmt(medians[name][spec.key])
                if reference is None
                else ratio(medians[name][spec.key], medians.get(reference, {}).get(spec.key))
                for name in names
            ]
            rows.append([label if reference is None else spec.title, *cells])
        sections.append(f"**{title}**\n\n" + markdown_table(header, rows))
    note = "Ratios are the contender's median ÷ the reference's; for latency and RSS, below 1 is better."
    return "\n\n".join([*sections, note])


def raw_table(results: Results) -> str:
    rows = []
    for name in results.contenders:
        for round_no, sample in enumerate(results.samples[name], 1):
            cells = [fmt(sample.values.get(f.key)) + (" ⚠" if f.key in sample.flags else "") for f in FIGURES]
            rows.append([name, str(round_no), *cells])
    header = ["contender", "round", *(f"{f.key} ({f.unit})" for f in FIGURES)]
    return markdown_table(header, rows) + "\n\n⚠ = that run reported errors (see anomalies)."


def environment() -> str:
    def version(argv: list[str]) -> str:
        with contextlib.suppress(OSError):
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        return "not found"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    return "\n".join(
        [
            f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- nproc: {os.cpu_count()} ({cpu}); kernel: {platform.release()}",
            f"- load average before the run: {os.getloadavg()[0]:.2f}",
            f"- {version(['haproxy', '-v'])}; {version(['nginx', '-v'])}; {version(['wrk', '-v'])}",
            f"- {version(['curl', '--version'])}; Python {platform.python_version()}",
        ]
    )


def report(results: Results, command: str, env: str, duration: float, settings: argparse.Namespace) -> str:
    anomalies = "\n".join(f"- {line}" for line in results.anomalies) or "- none"
    return textwrap.dedent("""\
        # Data-plane benchmark: direct, HAProxy, anycastlb edge

        Command: `{command}` ({rounds} round(s) of {seconds:g}s per figure, contenders interleaved and rotated
        each round; medians over rounds; run took {duration:.0f}s).

        {env}

        Everything runs on one machine over 127.0.0.1: client (curl, wrk, a Python open-loop generator),
        proxy and one nginx ({workers} worker, `sendfile on`, 1 GiB file on /dev/shm) share the CPUs. `direct`
        goes to nginx's plain port; `haproxy` (`mode tcp`, `nbthread 1`, splice both ways) and the edge
        (`relay: splice`) send PROXY v2 to nginx's `proxy_protocol` port. RSS for `direct` is nginx's own;
        it is measured holding {idle} idle connections (RLIMIT_NOFILE hard limit {nofile}: a one-process
        proxy needs two fds per connection) and scaled to 10k.
        How each figure is taken: `bench/README.md` and the docstring of `bench/dataplane.py`.

        {summary}

        ## Raw values per round

        {raw}

        ## Anomalies

        {anomalies}
    """).format(
        command=command,
        rounds=settings.rounds,
        seconds=settings.seconds,
        duration=duration,
        env=env,
        workers=NGINX_WORKERS,
        idle=f"{results.idle_count:,}",
        nofile=f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,}",
        summary=summary_tables(results),
        raw=raw_table(results),
        anomalies=anomalies,
    )


# --------------------------------------------------------------------------- main


def make_temp_dir(parent: Path) -> Path:
    """``anycastlb-bench-<pid>-*``; first removes those left by runs that were SIGKILLed (dead pid)."""
    for stale in parent.glob("anycastlb-bench-*-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"anycastlb-bench-{os.getpid()}-", dir=parent))


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


def run(settings: argparse.Namespace, workdir: Path, shm: Path) -> Results:
    results = Results(settings.contenders, idle_count=idle_connection_count())
    bench = Bench(workdir, Nginx(workdir, make_big_file(shm)), settings.seconds, results)
    bench.nginx.start()
    try:
        for round_no in range(1, settings.rounds + 1):
            order = rotated(settings.contenders, round_no)
            print(f"round {round_no}/{settings.rounds}: {', '.join(order)}", flush=True)
            for name in order:
                run_contender(bench, name, round_no)
    finally:
        bench.nginx.stop()
    return bench.results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all contenders (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each timed run (default 5)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round of 2 s runs, no --output")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="markdown report (default docs/benchmarks-dataplane.md; --quick writes none)",
    )
    parser.add_argument(
        "--contenders",
        type=lambda text: tuple(name.strip() for name in text.split(",")),
        default=CONTENDERS,
        help=f"comma-separated subset of {','.join(CONTENDERS)} (default: all)",
    )
    settings = parser.parse_args(argv)
    if unknown := set(settings.contenders) - set(CONTENDERS):
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")
    if settings.quick:
        settings.rounds, settings.seconds = 1, 2.0
    elif settings.output is None:
        settings.output = REPO / "docs" / "benchmarks-dataplane.md"
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    missing = [tool for tool in ("nginx", "haproxy", "wrk", "curl") if shutil.which(tool) is None]
    if missing:
        print(
            f"missing: {' '.join(missing)}; apt-get install -y nginx-light haproxy wrk curl", file=sys.stderr
        )
        return 2
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    atexit.register(CHILDREN.stop_all)
    raise_file_limit()
    command = shlex.join(["python3", "bench/dataplane.py", *(sys.argv[1:] if argv is None else argv)])
    env, started = environment(), time.monotonic()
    workdir, shm = (make_temp_dir(parent) for parent in (Path(tempfile.gettempdir()), Path("/dev/shm")))
    try:
        results = run(settings, workdir, shm)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every child process and removing temp files", file=sys.stderr)
        return 130
    finally:
        CHILDREN.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
    text = report(results, command, env, time.monotonic() - started, settings)
    print("\n" + text)
    if settings.output is not None:
        settings.output.parent.mkdir(parents=True, exist_ok=True)
        settings.output.write_text(text)
        print(f"written to {settings.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
