"""What the WireGuard tunnel costs: the edge to a node directly vs through the tunnel.

    PYTHONPATH=src python3 bench/tunnel_cost.py [--rounds 5] [--seconds 3] [--size-mb 256]

Builds the tunnel lab (anycastlb/lab/tunnel_lab.py, ``direct=True``): client, PoP, NAT, two nodes,
network namespaces on this host. One edge (1 worker, PROXY v2) with two listeners on the VIP:
``:80`` to the nodes' private addresses (routed through the NAT namespace: the "direct" path) and
``:81`` to their tunnel addresses (wireguard-go on the PoP, started by the edge, and on the node,
started by ``anycastlb tunnel-agent``: the "tunnel" path). Both paths cross the same veths and the
same NAT namespace; the tunnel adds encryption, encapsulation and two userspace hops.

Each round runs both paths, in alternating order, and each path:

- bulk: one ``curl`` download of a ``--size-mb`` file (nginx ``sendfile``) through the edge:
  Gbit/s, and CPU seconds per GB of the edge's process tree (its workers, helpers and the PoP's
  wireguard-go) plus the node agents' trees (the nodes' wireguard-go), from ``/proc/PID/stat``,
  and the part of it the wireguard-go processes (both ends) spent;
- rate: ``wrk`` with ``Connection: close`` for ``--seconds`` (16 connections, 2 threads): new
  connections per second.

A third contender, ``direct-unguarded``, is the direct path with the edge's tunnel guard
(tunnel/guard.py: an nftables input and forward chain that every packet of the PoP passes) deleted
for its run and put back after: what the guard costs the PoP's other traffic.

Prints the median (and min-max) of the rounds per path and the tunnel/direct and
direct/direct-unguarded ratios. The machine's other load moves every figure; the ratio of
interleaved rounds is what to read.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for ``bench.harness``

from anycastlb.lab.netns import inside, run_inside
from anycastlb.lab.tunnel_lab import NODE_PORT, VIP, TunnelLab
from anycastlb.tunnel.guard import GUARD_TABLE, guard_ruleset
from bench.harness.cpu import process_cpu, tree_cpu
from bench.harness.processes import children_of, start_bench

PATHS = {"direct": 80, "direct-unguarded": 80, "tunnel": 81}


def _listener(name: str, port: int, addresses: list[str]) -> dict[str, object]:
    return {
        "name": name,
        "address": VIP,
        "port": port,
        "proxy_protocol": "v2",
        "backends": [{"address": address, "port": NODE_PORT} for address in addresses],
        "health": {"type": "tcp", "interval": "1s", "timeout": "500ms"},
    }


def _wireguard_go(lab: TunnelLab, edge_pid: int) -> set[int]:
    """The wireguard-go processes: the PoP's (under the edge) and the nodes' (under the agents)."""
    roots = [edge_pid, *(node.agent.pid for node in lab.nodes if node.agent is not None)]
    found = set()
    for pid in {p for root in roots for p in children_of(root, recursive=True)}:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "wireguard-go":
                found.add(pid)
        except OSError:
            continue
    return found


def _cpu(lab: TunnelLab, edge_pid: int, wireguard: set[int]) -> tuple[float, float]:
    """(the edge's tree + the agents' trees, of which wireguard-go), CPU seconds so far."""
    total = tree_cpu(edge_pid).total
    for node in lab.nodes:
        if node.agent is not None:
            total += tree_cpu(node.agent.pid).total
    return total, sum(process_cpu(pid).total for pid in wireguard)


def bulk(lab: TunnelLab, edge_pid: int, port: int, size: int) -> tuple[float, float, float]:
    """(Gbit/s, CPU seconds per GB, of which wireguard-go) of one download."""
    wireguard = _wireguard_go(lab, edge_pid)
    before = _cpu(lab, edge_pid, wireguard)
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}"]
    done = run_inside(lab.client, [*argv, f"http://{VIP}:{port}/files/big"], timeout=300)
    after = _cpu(lab, edge_pid, wireguard)
    got, seconds = done.stdout.split()
    if int(got) != size:
        raise RuntimeError(f"downloaded {got} of {size} bytes through :{port}")
    gigabytes = size / 1e9
    return (
        size * 8 / float(seconds) / 1e9,
        (after[0] - before[0]) / gigabytes,
        (after[1] - before[1]) / gigabytes,
    )


def rate(lab: TunnelLab, port: int, seconds: int) -> float:
    """New connections per second (each request on a new connection)."""
    argv = ["wrk", "-t2", "-c16", f"-d{seconds}s", "-H", "Connection: close", f"http://{VIP}:{port}/"]
    done = run_inside(lab.client, argv, timeout=seconds + 60)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", done.stdout)
    if errors and int(errors.group(1)) + int(errors.group(4)):
        raise RuntimeError(f"wrk through :{port} had connect errors or timeouts:\n{done.stdout}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if found is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{done.stdout}")
    return float(found.group(1))


def _line(label: str, values: list[float], unit: str) -> str:
    return f"{label:<28} {statistics.median(values):10.3f} {unit:<10} ({min(values):.3f}-{max(values):.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3, help="length of each rate run")
    parser.add_argument("--size-mb", type=int, default=256, help="size of the bulk download")
    args = parser.parse_args(argv)
    command = start_bench("bench/tunnel_cost.py", argv)
    size = args.size_mb * 1024 * 1024
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="anycastlb-bench-tunnel-"))
    lab = TunnelLab(tag=f"b{os.getpid() % 100000}", workdir=workdir, direct=True)
    results: dict[str, dict[str, list[float]]] = {
        p: {"gbps": [], "cpu": [], "wg": [], "cps": []} for p in PATHS
    }
    try:
        lab.build()
        tunnel_addresses = [node.tunnel_address for node in lab.nodes]
        private_addresses = [node.private_address for node in lab.nodes]
        config = lab.edge_config(
            [_listener("direct", 80, private_addresses), _listener("tunnel", 81, tunnel_addresses)]
        )
        edge = lab.start_edge(config)
        for node in lab.nodes:
            lab.start_agent(node)
            lab.start_nginx(node)
            assert node.web is not None
            with (node.web.www / "big").open("wb") as big:
                big.truncate(size)  # sparse: served from the page cache, no disk in the way
        for path, port in PATHS.items():  # warm-up, also waits for the handshakes (first request)
            lab.wait(functools.partial(rate_ok, lab, port), f"the {path} path")
        for turn in range(args.rounds):
            paths = list(PATHS)
            order = paths[turn % len(paths) :] + paths[: turn % len(paths)]  # rotated: no fixed slot
            for path in order:
                if path == "direct-unguarded":
                    run_inside(lab.pop, ["nft", "delete", "table", "inet", GUARD_TABLE])
                try:
                    gbps, cpu, wireguard = bulk(lab, edge.pid, PATHS[path], size)
                    results[path]["gbps"].append(gbps)
                    results[path]["cpu"].append(cpu)
                    results[path]["wg"].append(wireguard)
                    results[path]["cps"].append(rate(lab, PATHS[path], args.seconds))
                finally:
                    if path == "direct-unguarded":  # the edge's guard back, as it wrote it
                        script = guard_ruleset([lab.pop_interface_name])
                        subprocess.run(
                            inside(lab.pop, ["nft", "-f", "-"]), input=script, text=True, check=True
                        )
            print(f"round {turn + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        lab.down()
    print(f"$ {command}")
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(f"{os.cpu_count()} CPUs, {load}; median (min-max) of {args.rounds} rounds")
    for path in PATHS:
        print(_line(f"{path}: bulk", results[path]["gbps"], "Gbit/s"))
        print(_line(f"{path}: CPU per GB", results[path]["cpu"], "s/GB"))
        print(_line(f"{path}:   of which wireguard-go", results[path]["wg"], "s/GB"))
        print(_line(f"{path}: new connections", results[path]["cps"], "conn/s"))
    for over, under in (("tunnel", "direct"), ("direct", "direct-unguarded")):
        for figure, name in (("gbps", "throughput"), ("cpu", "CPU per GB"), ("cps", "connections/s")):
            ratios = [a / b for a, b in zip(results[over][figure], results[under][figure], strict=True) if b]
            if not ratios:  # a figure below the clock's tick in every round: download more
                print(f"{over}/{under} {name:<16} n/a (a zero figure; raise --size-mb)")
                continue
            print(
                f"{over}/{under} {name:<16} {statistics.median(ratios):6.2f}x (median of the rounds' ratios)"
            )
    return 0


def _restore_guard(lab: TunnelLab) -> None:
    """The edge's guard back as it wrote it (it rewrites the table only when its tunnels change)."""
    script = guard_ruleset([lab.pop_interface_name])
    subprocess.run(inside(lab.pop, ["nft", "-f", "-"]), input=script, text=True, check=True)


def rate_ok(lab: TunnelLab, port: int) -> bool:
    done = run_inside(
        lab.client, ["curl", "-sS", "-m", "2", "-o", "/dev/null", f"http://{VIP}:{port}/"], check=False
    )
    return done.returncode == 0


if __name__ == "__main__":
    raise SystemExit(main())
