"""``anycastlb demo``: one PoP's edge in front of three nginx "worker nodes", on loopback.

It shows, with real processes, what the edge promises: every node sees the real client address
(PROXY v2), each client sticks to one node (Maglev), a dead node costs clients nothing (retry on
the next candidate), and SIGTERM drains and exits 0. The netns anycast lab with BGP replaces it
once the BGP issue lands.
"""

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.ports import free_port, wait_for_port

__all__ = ["run_demo"]

CLIENTS = [f"127.0.10.{n}" for n in range(1, 13)]


def _get(port: int, source: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        connection.request("GET", "/", headers={"Connection": "close"})
        return connection.getresponse().read().decode().strip()
    except OSError as error:
        return f"FAILED: {error}"
    finally:
        connection.close()


def _round(console: Console, title: str, port: int, before: dict[str, str] | None = None) -> dict[str, str]:
    table = Table(title=title)
    for column in ("client", "answered by", "client address the node saw", "moved?"):
        table.add_column(column)
    seen: dict[str, str] = {}
    for client in CLIENTS:
        body = _get(port, client)
        parts = dict(part.split("=", 1) for part in body.split() if "=" in part)
        node = parts.get("node", body)
        seen[client] = node
        moved = "" if before is None else ("yes" if before[client] != node else "no")
        table.add_row(client, node, parts.get("client", "-"), moved)
    console.print(table)
    return seen


def _metrics(url: str, prefixes: tuple[str, ...]) -> list[str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        text: str = response.read().decode()
    return [line for line in text.splitlines() if line.startswith(prefixes)]


def _show_health_log(console: Console, log: Path, event: str, timeout: float = 5.0) -> bool:
    """Wait for the edge's health process to log ``event``; print the line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text(errors="replace").splitlines() if f" {event} " in line]
        if lines:
            console.print("  edge log: " + lines[-1].split(" anycastlb.health ", 1)[-1], highlight=False)
            return True
        time.sleep(0.02)
    console.print(f"  [red]no {event} logged within {timeout:.0f}s[/]")
    return False


def run_demo() -> int:
    """Run the demo; returns 0 when every promise held."""
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="anycastlb-demo-"))
    nodes = [NginxBackend(workdir, f"node-{letter}") for letter in "abc"]
    edge_port, metrics_port = free_port(), free_port()
    config = {
        "pop": "demo",
        "workers": 2,
        "metrics": {"address": "127.0.0.1", "port": metrics_port},
        "listeners": [
            {
                "name": "web",
                "address": "127.0.0.1",
                "port": edge_port,
                "proxy_protocol": "v2",
                "backends": [{"address": "127.0.0.1", "port": node.port, "weight": 1} for node in nodes],
                "health": {"type": "http", "path": "/", "interval": "100ms", "timeout": "100ms"},
            }
        ],
    }
    (workdir / "edge.yaml").write_text(yaml.safe_dump(config))
    edge: subprocess.Popen[bytes] | None = None
    ok = True
    try:
        for node in nodes:
            node.start()
        env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
        log = (workdir / "edge.log").open("wb")
        edge = subprocess.Popen(
            [sys.executable, "-m", "anycastlb.cli", "edge", "--config", str(workdir / "edge.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_for_port("127.0.0.1", edge_port)
        console.print(
            f"[bold]edge[/] listening on 127.0.0.1:{edge_port} -> 3 nginx nodes with proxy_protocol"
        )
        first = _round(console, "12 clients through the edge (PROXY v2, Maglev)", edge_port)
        ok &= all(not node.startswith("FAILED") for node in first.values())
        victim = max(set(first.values()), key=list(first.values()).count)
        console.print(
            f"\n[bold red]SIGKILL {victim}[/] (the clients it served must move, the others must stay)"
        )
        victim_node = next(node for node in nodes if node.name == victim)
        victim_node.stop()
        second = _round(console, f"the same clients after {victim} died", edge_port, before=first)
        ok &= all(not node.startswith("FAILED") and node != victim for node in second.values())
        ok &= all(second[c] == first[c] for c in CLIENTS if first[c] != victim)
        ok &= _show_health_log(console, workdir / "edge.log", "backend_down")
        console.print(f"\n[bold green]restart {victim}[/] (after rise=2 good checks its clients return)")
        victim_node.start()
        ok &= _show_health_log(console, workdir / "edge.log", "backend_up")
        third = _round(console, f"the same clients after {victim} came back", edge_port, before=second)
        ok &= third == first
        time.sleep(1.1)  # workers publish metrics once a second
        console.print("\n[bold]metrics[/] (excerpt)")
        for line in _metrics(
            f"http://127.0.0.1:{metrics_port}/metrics",
            (
                "anycastlb_connections_total",
                "anycastlb_connect_retries_total",
                "anycastlb_backend_connect_errors_total",
                "anycastlb_backend_connections_total",
                "anycastlb_backend_up",
                "anycastlb_health_transitions_total",
            ),
        ):
            console.print("  " + line, soft_wrap=True, highlight=False)
        edge.send_signal(signal.SIGTERM)
        code = edge.wait(timeout=40)
        console.print(f"\nSIGTERM -> edge drained and exited with code {code}")
        ok &= code == 0
    finally:
        if edge is not None and edge.poll() is None:
            edge.kill()
            edge.wait()
        for node in nodes:
            node.stop()
    console.print("[bold green]demo ok[/]" if ok else f"[bold red]demo FAILED[/] (logs in {workdir})")
    return 0 if ok else 1
