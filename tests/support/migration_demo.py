"""``scripts/demo``'s provider-migration step: every node of a cluster replaced by nodes in another
provider's network under a steady load, with the real controller, control plane, edge and nginx
nodes (tests/support/migration_world.py); prints what each step took and what the clients saw.

Run as root from the repository's root: ``python3 -m tests.support.migration_demo [--rate N]``.
It lives beside the tests because the Kubernetes API it drives is the tests' stand-in (no
kube-apiserver can be installed on these machines). Exit code 0 when the clients noticed nothing.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from anycastlb.lab.migration_counts import render_counts
from anycastlb.lab.netns import missing_capability
from tests.support.migration_world import migration_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rate", type=float, default=100.0, help="new connections per second")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds of load between the steps")
    parser.add_argument("--nodes", type=int, default=3, help="nodes per provider")
    args = parser.parse_args(argv)
    missing = missing_capability()
    if missing is not None:
        print(f"migration demo skipped: {missing}")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="anycastlb-migration-"))
    print(
        f"provider migration: {args.nodes} nodes on provider A (direct) -> {args.nodes} on provider B "
        f"(behind NAT, through WireGuard tunnels), {args.rate:.0f} new connections/s plus one long-lived "
        "connection per old node"
    )
    with migration_world(workdir, f"md{os.getpid() % 100000}", args.nodes, args.nodes) as world:
        served_by = ", ".join(node.name for node in world.old)
        print(f"Service {world.vip}:80 (nodePort {world.node_port}) served by {served_by}")
        migration = world.migration(
            rate=args.rate, hold=args.hold, progress=lambda line: print(f"  step done: {line}", flush=True)
        )
        counts = migration.run()
    for line in render_counts(counts):
        print(line)
    print(f"(logs in {workdir})")
    return 0 if counts.ok else 1


if __name__ == "__main__":
    sys.exit(main())
