"""The control plane under test: a fresh store per run (a SQLite file, or a new database on the
private PostgreSQL server), ``anycastlb control`` as a child process on it, the fixtures every
phase needs (a pool, tenants, PoPs), and the process's memory and CPU time from /proc."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.support.control_plane import ADMIN_TOKEN, ControlProcess
from tests.support.postgres import PostgresServer, postgres_binaries

__all__ = [
    "STORES",
    "ControlUnderTest",
    "Outcome",
    "control_plane",
    "lb_body",
    "store_versions",
]

STORES = ("sqlite", "postgresql")
POOL_NETWORK = "10.64.0.0/16"  # 65,534 addresses: far more than any run allocates at once
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout)\b")  # "sqlite3.OperationalError: …"
_LISTENER = {"port": 443, "backends": [{"address": "10.0.0.11", "port": 30443}]}


def lb_body(name: str) -> dict[str, Any]:
    """A load balancer with one listener and the default IP request: one dynamic IPv4."""
    return {"name": name, "listeners": [_LISTENER]}


def store_versions() -> str:
    pg = postgres_binaries()
    version = "not installed"
    if pg is not None:
        done = subprocess.run(
            [str(pg / "postgres"), "--version"], capture_output=True, text=True, check=False
        )
        version = done.stdout.strip()
    return f"SQLite {sqlite3.sqlite_version}; {version}"


@dataclass
class ControlUnderTest:
    store: str
    process: ControlProcess

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def client(self, token: str = ADMIN_TOKEN) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def admin_post(self, path: str, body: dict[str, Any]) -> Any:
        with self.client() as admin:
            response = admin.post(path, json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        return response.json()

    def tenant(self, name: str) -> str:
        """Create a tenant; return an API token of it."""
        self.admin_post("/v1/tenants", {"name": name})
        return str(self.admin_post(f"/v1/tenants/{name}/tokens", {})["secret"])

    def pops(self, prefix: str, count: int) -> list[tuple[str, str]]:
        """Register ``count`` PoPs; return (name, credential) pairs."""
        names = [f"{prefix}{index:03d}" for index in range(count)]
        return [(name, str(self.admin_post("/v1/pops", {"name": name})["token"]["secret"])) for name in names]

    def memory_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the control plane process."""
        found = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found["VmRSS"], found["VmHWM"]

    def check_listening(self, timeout: float = 20.0) -> None:
        """Wait until the listening socket on our port is this process's. Other people's tests
        start control planes on free ports too, with the same test admin token: if another one took
        our port first, its /healthz answered for ours and every figure would be someone else's."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.process is None or self.process.process.poll() is not None:
                raise RuntimeError(f"the control plane exited:\n{self.process.log_path.read_text()[-2000:]}")
            if _listening_inode(self.process.port) in _socket_inodes(self.pid):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.process.port} is not the control plane's (another process?)")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU time the control plane process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _listening_inode(port: int) -> int | None:
    """The inode of the socket listening on 127.0.0.1:``port`` (state 0A in /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            return int(fields[9])
    return None


def _socket_inodes(pid: int) -> set[int]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                found.add(int(target[8:-1]))
    return found


def server_errors(log: Path) -> Counter[str]:
    """The exceptions the control plane logged (the last line of each traceback), by message."""
    found: Counter[str] = Counter()
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            if _EXCEPTION.match(line):
                found[line[:160]] += 1
    return found


@dataclass
class Outcome:
    """How a control plane run ended: exceptions in its log, whether it died, where its log is kept."""

    errors: Counter[str] = field(default_factory=Counter)
    exit_code: int | None = None  # set if the process had exited before we stopped it
    kept_log: Path | None = None


@contextmanager
def control_plane(
    store: str, workdir: Path, postgres: PostgresServer | None, outcome: Outcome
) -> Iterator[ControlUnderTest]:
    """A started control plane on an empty store with one platform pool; stopped on exit. Fills
    ``outcome``; its log is copied out of ``workdir`` if it logged exceptions or died (the workdir is
    removed at the end of the run)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if store == "sqlite":
        database = f"sqlite:///{workdir / 'control.db'}"
    else:
        assert postgres is not None
        database = postgres.new_database()
    process = ControlProcess(workdir, database=database)
    process.start()
    try:
        control = ControlUnderTest(store, process)
        control.check_listening()
        control.admin_post("/v1/pools", {"name": "bench", "networks": [POOL_NETWORK], "owner": None})
        yield control
    finally:
        outcome.exit_code = process.process.poll() if process.process is not None else None
        process.stop()
        outcome.errors = server_errors(process.log_path)
        if outcome.errors or outcome.exit_code is not None:
            outcome.kept_log = Path(tempfile.gettempdir()) / f"anycastlb-{workdir.name}-{os.getpid()}.log"
            shutil.copyfile(process.log_path, outcome.kept_log)
