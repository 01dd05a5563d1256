"""What the tunnels cost the existing desired-state path: rendering a PoP's state, this tree vs a
reference tree (``git archive`` of another commit), side by side.

Why: every PoP's state is now rendered with its tunnels (control/render.py keeps each load
balancer's backend /24 blocks and reads the clusters a PoP serves); a platform without tunnels
must not pay for that. Each run is a fresh child process per tree with the same workload: a
SQLite store, ``--pops`` PoPs, ``--lbs`` load balancers of ``--backends`` backends each (no
cluster: the existing path). Measured in the child, in-process, per render:

- ``warm``: one load balancer changed (its fragment re-rendered), the PoP's state joined again:
  what each PoP pays after a change;
- ``cold``: a new renderer, every fragment rendered: a control plane that just started.

Rounds alternate the trees (reference first, then this tree, then the other way round); the table
quotes the median over rounds of each round's median, and the ratio this/reference.

    python3 bench/render_cost.py --reference main --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, tempfile, time
from fastapi.testclient import TestClient
from anycastlb.control.api.app import create_app
from anycastlb.control.api.runtime import Runtime
from anycastlb.control.render import DesiredRenderer
from anycastlb.control.server import platform_addresses
from anycastlb.control.store.engine import open_store

pops, lbs, backends, repeats = (int(x) for x in sys.argv[1:5])
db = tempfile.mkdtemp(prefix="alb-render-")
store = open_store(f"sqlite:///{db}/c.db")
lab = platform_addresses("127.0.0.1", [], ["10.0.0.0/8"])
runtime = Runtime(store=store, admin_token="t" * 32, platform=lab)
client = TestClient(create_app(runtime))
auth = {"Authorization": "Bearer " + "t" * 32}
def ok(method, path, body=None):
    r = client.request(method, path, json=body, headers=auth)
    assert r.status_code < 300, r.text
client.request("POST", "/v1/pools", json={"name": "p", "networks": ["203.0.112.0/20"]}, headers=auth)
ok("POST", "/v1/tenants", {"name": "acme"})
for index in range(pops):
    ok("POST", "/v1/pops", {"name": f"pop{index}"})
def spec(name, port):
    nodes = [
        {"address": f"10.{i // 250}.{i % 250}.{port % 200 + 1}", "port": 30000 + port}
        for i in range(backends)
    ]
    return {"name": name, "listeners": [{"port": 443, "backends": nodes}]}
for index in range(lbs):
    ok("POST", "/v1/tenants/acme/loadbalancers", spec(f"lb{index}", index))
renderer = DesiredRenderer()
with store.readers() as session:
    renderer.render(session, "pop0")
warm, cold = [], []
for round_ in range(repeats):
    ok("PUT", "/v1/tenants/acme/loadbalancers/lb0", spec("lb0", 1000 + round_))
    with store.readers() as session:
        started = time.perf_counter()
        renderer.render(session, "pop0")
        warm.append(time.perf_counter() - started)
        fresh = DesiredRenderer()
        started = time.perf_counter()
        fresh.render(session, "pop0")
        cold.append(time.perf_counter() - started)
print(json.dumps({"warm": warm, "cold": cold}))
"""


def _reference_tree(commit: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True
    ).stdout
    path = into / "reference.tar"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _run(src: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(args.pops), str(args.lbs), str(args.backends), str(args.repeats)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child on {src} failed:\n{done.stderr[-2000:]}")
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", default="main", help="commit or branch to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pops", type=int, default=10)
    parser.add_argument("--lbs", type=int, default=300)
    parser.add_argument("--backends", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20, help="renders per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alb-render-ref-") as tmp:
        trees = {"reference": _reference_tree(args.reference, Path(tmp)), "this": ROOT / "src"}
        medians: dict[str, dict[str, list[float]]] = {name: {"warm": [], "cold": []} for name in trees}
        for round_ in range(args.rounds):
            order = ["reference", "this"] if round_ % 2 == 0 else ["this", "reference"]
            for name in order:
                got = _run(trees[name], args)
                for kind in ("warm", "cold"):
                    medians[name][kind].append(statistics.median(got[kind]))
    print(
        f"render of one PoP's state: {args.lbs} load balancers x {args.backends} backends, {args.pops} PoPs, "
        f"{args.rounds} rounds x {args.repeats} renders, reference {args.reference}"
    )
    print(f"{'':6} {'reference ms':>13} {'this ms':>9} {'ratio':>6}")
    for kind in ("warm", "cold"):
        ref = statistics.median(medians["reference"][kind]) * 1000
        this = statistics.median(medians["this"][kind]) * 1000
        print(f"{kind:6} {ref:13.2f} {this:9.2f} {this / ref:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
