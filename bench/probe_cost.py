"""CPU cost of one health probe in the health process: how many targets one edge can check.

    python3 bench/probe_cost.py [--probes 2000] [--concurrency 50]

Starts one nginx with ``proxy_protocol`` on loopback and runs tcp and http probes (with the PROXY
header the port requires) against it, in batches of ``concurrency``; prints the CPU time of this
process per probe (user + system, from getrusage) and the rate reached. Two runs of each, to show
the noise.
"""

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from anycastlb.health.probes import run_probe
from anycastlb.lab.nginx import NginxBackend
from anycastlb.model.config import HealthCheck


async def measure(port: int, probes: int, concurrency: int) -> None:
    checks = (("tcp", HealthCheck(type="tcp")), ("http", HealthCheck(type="http", path="/")))
    for kind, check in checks:
        for _ in range(2):
            before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            done = 0
            while done < probes:
                batch = [run_probe(check, "127.0.0.1", port, "v2") for _ in range(concurrency)]
                results = await asyncio.gather(*batch)
                failed = [r for r in results if not r.ok]
                if failed:
                    raise SystemExit(f"{kind} probe failed: {failed[0].reason}")
                done += len(results)
            after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            user = after.ru_utime - before.ru_utime
            print(
                f"{kind:5} {done} probes: {cpu / done * 1e6:4.0f} us CPU each "
                f"(user {user / done * 1e6:.0f} us), {done / wall:,.0f} probes/s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, NginxBackend(Path(workdir), "node") as node:
        asyncio.run(measure(node.port, args.probes, args.concurrency))


if __name__ == "__main__":
    main()
