"""A router (BIRD) and one PoP (the edge with its BGP speaker) in network namespaces, for tests.

    router ──veth── switch (a bridge) ──veth── pop

The bridge makes the PoP's death silent to the router (its own link keeps carrier), as a switch
does in real life. The PoP has the VIP on ``lo`` and an nginx node on its loopback. Everything is
created with a per-test prefix and removed at the end.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import yaml

VIP, VIP6 = "198.18.0.10", "2001:db8::10"
ROUTER_IP, POP_IP = "10.99.0.1", "10.99.0.2"
ROUTER_IP6, POP_IP6 = "fd00:99::1", "fd00:99::2"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def netns_usable() -> str | None:
    """None if network namespaces can be created here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None or shutil.which("bird") is None:
        return "needs iproute2 and bird2 (scripts/setup installs them)"
    name = f"alb-probe{os.getpid()}"  # concurrent runs (pytest-xdist workers) probe side by side
    probe = ip("netns", "add", name, check=False)
    if probe.returncode != 0:
        return f"ip netns add failed: {probe.stderr.strip()}"
    ip("netns", "del", name, check=False)
    return None


class BgpPair:
    def __init__(self, workdir: Path, prefix: str, *, bfd: bool = False, hold_time: int = 3) -> None:
        self.dir = workdir
        self.router, self.switch, self.pop = f"{prefix}-r", f"{prefix}-s", f"{prefix}-p"
        self.bfd = bfd
        self.hold_time = hold_time
        self.bird_socket = workdir / "bird.ctl"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.edge: subprocess.Popen[bytes] | None = None
        self.edge_log = workdir / "edge.log"
        self._log_file: IO[bytes] | None = None

    # ---- topology -------------------------------------------------------------------------------

    def build(self) -> "BgpPair":
        self._remove_namespaces()  # a killed run of a process with the same pid may have left them
        for ns in (self.router, self.switch, self.pop):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        for ns, address, name in ((self.router, ROUTER_IP, "r"), (self.pop, POP_IP, "p")):
            ip("link", "add", f"{self.pop}-{name}", "type", "veth", "peer", "name", f"{self.pop}-{name}s")
            ip("link", "set", f"{self.pop}-{name}", "netns", ns)
            ip("link", "set", f"{self.pop}-{name}s", "netns", self.switch)
            ip("-n", self.switch, "link", "set", f"{self.pop}-{name}s", "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", f"{self.pop}-{name}")
            address6 = ROUTER_IP6 if name == "r" else POP_IP6
            ip("-n", ns, "addr", "add", f"{address6}/64", "dev", f"{self.pop}-{name}", "nodad")
            ip("-n", ns, "link", "set", f"{self.pop}-{name}", "up")
        ip("-n", self.pop, "addr", "add", f"{VIP}/32", "dev", "lo")
        ip("-n", self.pop, "addr", "add", f"{VIP6}/128", "dev", "lo")
        return self

    def cut_pop_silently(self) -> None:
        """The PoP's switch port goes dark; the router's own link stays up (no carrier loss)."""
        ip("-n", self.switch, "link", "set", f"{self.pop}-ps", "down")

    def destroy(self) -> None:
        if self.edge is not None and self.edge.poll() is None:
            self.edge.kill()
            self.edge.wait()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        self._remove_namespaces()
        if self._log_file is not None:
            self._log_file.close()

    def _remove_namespaces(self) -> None:
        for ns in (self.router, self.switch, self.pop):
            for pid in ip("netns", "pids", ns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):  # it exited after it was listed
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", ns, check=False)

    # ---- programs -------------------------------------------------------------------------------

    @staticmethod
    def inside(ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def start_router(self) -> None:
        bfd = "bfd on;" if self.bfd else ""
        timers = "min rx interval 100 ms; min tx interval 100 ms; multiplier 3;"
        bfd_protocol = f'protocol bfd {{ interface "*" {{ {timers} }}; }}' if self.bfd else ""
        config = self.dir / "bird.conf"
        config.write_text(
            textwrap.dedent(f"""
            router id {ROUTER_IP};
            protocol device {{ scan time 1; }}
            protocol kernel {{ ipv4 {{ export all; import none; }}; scan time 1; }}
            protocol kernel {{ ipv6 {{ export all; import none; }}; scan time 1; }}
            {bfd_protocol}
            protocol bgp pop {{
              local {ROUTER_IP} as 65000; neighbor {POP_IP} as 65001;
              hold time {self.hold_time}; keepalive time 1; connect retry time 1; connect delay time 1;
              error wait time 1, 5; error forget time 10; {bfd}
              ipv4 {{ import all; export none; }};
              ipv6 {{ import all; export none; }};
            }}
            """)
        )
        bird = shutil.which("bird") or "/usr/sbin/bird"
        self.processes.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.router,
                    bird,
                    "-f",
                    "-c",
                    str(config),
                    "-s",
                    str(self.bird_socket),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def start_node(self, port: int = 8081) -> subprocess.Popen[bytes]:
        conf = self.dir / "nginx.conf"
        conf.write_text(
            f"daemon off; master_process off; worker_processes 1; pid {self.dir}/nginx.pid;"
            f" error_log {self.dir}/nginx.err warn; events {{ worker_connections 256; }}"
            f" http {{ access_log off; server {{ listen 127.0.0.1:{port} proxy_protocol;"
            f' location / {{ return 200 "ok\\n"; }} }} }}'
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        process = subprocess.Popen(
            [*self.inside(self.pop), nginx, "-c", str(conf), "-e", str(self.dir / "nginx.err")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def edge_config(self, **bgp: Any) -> dict[str, Any]:
        return {
            "pop": "fra",
            "workers": 1,
            "drain_timeout": "5s",
            "metrics": None,
            "listeners": [
                {
                    "name": "web",
                    "address": VIP,
                    "port": 80,
                    "backends": [{"address": "127.0.0.1", "port": 8081}],
                    "health": {"type": "http", "path": "/", "interval": "100ms", "timeout": "100ms"},
                }
            ],
            "bgp": {
                "local_as": 65001,
                "router_id": POP_IP,
                "peers": [
                    {
                        "address": ROUTER_IP,
                        "remote_as": 65000,
                        "local_address": POP_IP,
                        "hold_time": f"{self.hold_time}s",
                        "bfd": self.bfd,
                    }
                ],
                "withdraw_delay": "1s",
                **bgp,
            },
        }

    def start_edge(
        self, config: dict[str, Any], wrapper: Sequence[str] = (), env: dict[str, str] | None = None
    ) -> None:
        """Run the edge in the PoP's namespace; ``wrapper`` goes before it (e.g. setpriv), ``env``
        is added to the environment."""
        path = self.dir / "edge.yaml"
        path.write_text(yaml.safe_dump(config))
        environment = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
        environment.update(env or {})
        self._log_file = self.edge_log.open("ab")
        edge = [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(path)]
        self.edge = subprocess.Popen(
            [*self.inside(self.pop), *wrapper, *edge],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=environment,
        )

    # ---- observing --------------------------------------------------------------------------------

    def route_present(self, vip: str = VIP) -> bool:
        family = "-6" if ":" in vip else "-4"
        return "via" in ip("-n", self.router, family, "route", "show", vip).stdout

    def wait_route(self, present: bool, timeout: float, vip: str = VIP) -> float:
        """Seconds until the router's kernel route to the VIP is (or is no longer) there."""
        started = time.monotonic()
        while self.route_present(vip) != present:
            if time.monotonic() - started > timeout:
                raise TimeoutError(
                    f"route to {vip} {'never appeared' if present else 'still there'} after {timeout}s;"
                    f" edge log:\n{self.log()[-3000:]}"
                )
            time.sleep(0.002)
        return time.monotonic() - started

    def log(self) -> str:
        return self.edge_log.read_text(errors="replace") if self.edge_log.exists() else ""
