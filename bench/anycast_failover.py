"""Anycast failover in the lab: how fast traffic leaves a failing PoP and comes back, and what it costs.

    python3 bench/anycast_failover.py [--rounds 10] [--output docs/benchmarks-anycast.md]

Needs root (network namespaces). It builds the lab (`anycastlb lab up`: a BIRD router, PoPs fra and
par running the edge with BGP, three nginx nodes), fails fra again and again under a client loop
(one new connection every 2 ms from the client namespace), and measures from the client's records
and the router's kernel table (read every 2 ms):

- drain (SIGTERM): failed connections, split into those open at the instant the router switched
  (plain anycast resets them: par has no such connection) and every other one (target 0);
- kill (SIGKILL of the edge and its children): time until the router's route moved (target <= 50 ms);
- cut (fra loses every backend): time until fra's withdrawal moved the route (target <= 300 ms);
- silent (fra's switch port dies): with BFD (target <= 350 ms), and, in a second lab without BFD,
  with the 3 s hold timer as the reference (target <= 3 s);
- recovery: time from the PoP's return until the route is back (target <= 2 s);
- long-lived connections: N keep-alive connections through fra, fra drained, one more request on
  each after the route moved: how many survive (plain anycast: none; the other PoP resets them).

Modes are interleaved round by round. Medians and p99 (the max below 100 samples) are reported.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from anycastlb.lab.anycast import AnycastLab
from anycastlb.lab.failover import FailoverResult, Mode, run_failover
from anycastlb.lab.faults import drain_edge, restart_edge
from anycastlb.lab.netns import inside, missing_capability
from anycastlb.lab.timeline import open_across, switched_to


@dataclass
class Samples:
    """Per mode: what each failover measured."""

    route_moved: list[float] = field(default_factory=list)
    traffic_moved: list[float] = field(default_factory=list)
    route_back: list[float] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # failed connections not open at the switch
    cut_by_switch: list[int] = field(default_factory=list)  # failed, and open at the switch
    open_at_switch: list[int] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    held_down: list[int] = field(default_factory=list)
    never: int = 0

    def add(self, result: FailoverResult) -> None:
        moved, back = result.moved, result.returned
        if moved.route_after is None:
            self.never += 1
        else:
            self.route_moved.append(moved.route_after)
        if moved.traffic_after is not None:
            self.traffic_moved.append(moved.traffic_after)
        if back is not None and back.route_after is not None:
            self.route_back.append(back.route_after)
        switch = switched_to(result.routes, "par")
        open_ones = open_across(result.attempts, switch) if switch is not None else []
        cut = [a for a in moved.failed if a in open_ones]
        self.failed.append(len(moved.failed) - len(cut))
        self.cut_by_switch.append(len(cut))
        self.open_at_switch.append(len(open_ones))
        self.attempts.append(moved.attempts)
        self.held_down.append(len(result.held_down))


def _p(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"{statistics.median(values) * 1000:.0f} / {_p(values, 0.99) * 1000:.0f} / {max(values) * 1000:.0f}"
    )


def _long_lived(lab: AnycastLab, count: int) -> tuple[int, int]:
    """(survivors, count) of keep-alive connections through fra across a drain of fra."""
    script = Path(__file__).resolve().parent / "harness" / "long_lived_client.py"
    argv = inside(lab.topology.client, [sys.executable, str(script), lab.topology.vip, str(count)])
    client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert client.stdin is not None and client.stdout is not None
    if client.stdout.readline().strip() != "ready":
        raise RuntimeError("the long-lived client did not get its connections up")
    drain_edge(lab, "fra")
    deadline = time.monotonic() + 10
    while lab.kernel_pop() != "par" and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # fra keeps its listeners for withdraw_delay (1 s); its connections would live
    client.stdin.write("go\n")
    client.stdin.flush()
    answer = client.stdout.readline().split()
    client.wait(timeout=10)
    restart_edge(lab, "fra")
    while lab.kernel_pop() != "fra" and time.monotonic() < deadline + 20:
        time.sleep(0.05)
    return int(answer[1]), int(answer[3])


LONG_LIVED: list[tuple[int, int]] = []  # (alive, of) per drain with long-lived connections


def _run_lab(
    name: str, bfd: bool, modes: Sequence[Mode], rounds: int, root: Path, long_lived: int = 0
) -> dict[str, Samples]:
    lab = AnycastLab(name, root, bfd=bfd)
    samples: dict[str, Samples] = {mode: Samples() for mode in modes}
    try:
        up = lab.up()
        print(f"lab {name} (bfd={'on' if bfd else 'off'}) up in {up.seconds:.1f}s", flush=True)
        for round_number in range(1, rounds + 1):
            for mode in modes:
                result = run_failover(lab, "fra", mode)
                samples[mode].add(result)
                moved = result.moved.route_after
                back = result.returned.route_after if result.returned else None
                print(
                    f"  round {round_number:2} {mode:6} route moved "
                    f"{'never' if moved is None else f'{moved * 1000:5.0f} ms'}, back "
                    f"{'never' if back is None else f'{back * 1000:5.0f} ms'}, "
                    f"failed {len(result.moved.failed)} of {result.moved.attempts}",
                    flush=True,
                )
                time.sleep(0.5)
        for _ in range(long_lived):
            alive, count = _long_lived(lab, 20)
            LONG_LIVED.append((alive, count))
            print(f"  long-lived connections across a drain of fra: {alive} of {count} survived", flush=True)
            time.sleep(0.5)
    finally:
        lab.down()
    return samples


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _rows(label: str, table: dict[str, Samples]) -> list[str]:
    rows = []
    for mode, s in table.items():
        never = f" (never x{s.never})" if s.never else ""
        rows.append(
            f"| {mode} | {label} | {len(s.attempts)} | {_ms(s.route_moved)}{never} | {_ms(s.traffic_moved)} "
            f"| {_ms(s.route_back)} | {sum(s.failed)} of {sum(s.attempts)} "
            f"| {sum(s.cut_by_switch)} / {sum(s.open_at_switch)} | {sum(s.held_down)} |"
        )
    return rows


def _targets(with_bfd: dict[str, Samples], without: dict[str, Samples]) -> list[tuple[str, str, bool]]:
    def p99(name: str, values: Sequence[float], limit: float) -> tuple[str, str, bool]:
        value = _p(values, 0.99)
        return (name, f"{value * 1000:.0f} ms", value <= limit)

    targets: list[tuple[str, str, bool]] = []
    if "drain" in with_bfd:
        failed = sum(with_bfd["drain"].failed)
        targets.append(("drain: failed connections not open at the switch = 0", str(failed), failed == 0))
    checks = (
        ("kill", with_bfd, "kill -9: route moved <= 50 ms (p99)", 0.05),
        ("cut", with_bfd, "last backend lost: withdrawn, route moved <= 300 ms (p99)", 0.3),
        ("silent", with_bfd, "silent death with BFD <= 350 ms (p99)", 0.35),
        ("silent", without, "silent death without BFD, hold time 3 s: <= 3 s (p99)", 3.0),
    )
    for mode, table, name, limit in checks:
        if mode in table and table[mode].route_moved:
            targets.append(p99(name, table[mode].route_moved, limit))
    backs = [value for samples in with_bfd.values() for value in samples.route_back]
    if backs:
        targets.append(p99("recovery after the PoP returns <= 2 s (p99, all modes)", backs, 2.0))
    return targets


def report(command: str, with_bfd: dict[str, Samples], without: dict[str, Samples], seconds: float) -> str:
    pressure_file = Path("/proc/pressure/cpu")
    pressure = pressure_file.read_text().splitlines()[0] if pressure_file.exists() else "n/a"
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    lines = [
        "# Anycast failover in the lab",
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s).",
        f"Machine: {cores} cores; CPU pressure after the run: `{pressure}`.",
        "",
        "Times in ms as median / p99 / max (p99 is the max below 100 samples). The client opens one new",
        "connection every 2 ms from the client namespace; the router's kernel table is read every 2 ms.",
        "",
        "| fault | lab | runs | route moved | traffic moved | route back after the PoP returned "
        "| failed (other) | failed (open at the switch) / open at the switch | held down |",
        "|---|---|---|---|---|---|---|---|---|",
        *_rows("BFD", with_bfd),
        *_rows("no BFD", without),
        "",
        f"Long-lived keep-alive connections through fra, one more request each after a drain moved the"
        f" route: {sum(a for a, _ in LONG_LIVED)} of {sum(c for _, c in LONG_LIVED)} survived"
        f" ({len(LONG_LIVED)} drains). par has no such connections and resets them: plain anycast's limit.",
        "",
        "| target | reached | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {what} | {value} | {_verdict(ok)} |" for what, value, ok in _targets(with_bfd, without)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--modes", default="drain,kill,cut,silent")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks-anycast.md"))
    args = parser.parse_args()
    problem = missing_capability()
    if problem is not None:
        print(f"cannot run: {problem}", file=sys.stderr)
        return 2
    modes: list[Mode] = [m for m in ("drain", "kill", "cut", "silent") if m in args.modes.split(",")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="anycastlb-bench-") as root:
        with_bfd = _run_lab("bnb", True, modes, args.rounds, Path(root), long_lived=3)
        without = _run_lab("bnn", False, ["silent"], args.rounds, Path(root)) if "silent" in modes else {}
    command = "python3 bench/anycast_failover.py " + " ".join(sys.argv[1:])
    text = report(command.strip(), with_bfd, without, time.monotonic() - started)
    print(text)
    args.output.write_text(text)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
