"""Flood benchmark: other clients' latency and errors while one source opens connections at full speed.

Per round, every scenario once, in rotated order, each on a freshly started proxy in front of one
nginx (the shared harness in ``bench/harness/``):

- the **attacker** (``harness/flood_client.py``, one process, source 127.0.0.2) keeps 64 connections
  in flight, each ``GET /small`` and close, for as long as the victims run (plus a 1 s warm-up);
- the **victims** (sources 127.0.0.10-19, in turn) send :data:`VICTIM_RATE` requests/s on a fixed
  schedule (open loop: a slow proxy cannot lower its own load), each a new connection; figures are
  their p50/p99 of connect + request + complete answer, and how many failed (reset, timeout, non-200).

Scenarios: the edge (2 workers) with no flood, flooded with the per-source rate limit off, and on
(100 new connections/s per source); HAProxy (``nbthread 1``, as in ``bench/dataplane.py``) the same
three ways, its limit a stick table on ``sc_conn_rate``. Client, attacker, proxy and nginx share the
machine's cores: the point is how much of it one source can take from everyone else.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for ``bench.harness``

from bench.harness.flood_run import SCENARIOS, SOURCE_RATE, VICTIM_RATE, Outcome, measure, median, start
from bench.harness.processes import CHILDREN, start_bench
from bench.harness.rounds import rotated
from bench.harness.servers import Nginx
from bench.harness.session import Finished, run_session


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all scenarios (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="victims' run per scenario (default 5)")
    parser.add_argument("--output", type=Path, default=None, help="also write the markdown report here")
    return parser.parse_args(argv)


def run(settings: argparse.Namespace, workdir: Path) -> dict[str, list[Outcome]]:
    results: dict[str, list[Outcome]] = {scenario.name: [] for scenario in SCENARIOS}
    (workdir / "unused-big-file").write_bytes(b"")
    nginx = Nginx(workdir, workdir / "unused-big-file")
    nginx.start()
    try:
        for round_no in range(1, settings.rounds + 1):
            by_name = {scenario.name: scenario for scenario in SCENARIOS}
            print(f"round {round_no}/{settings.rounds}", flush=True)
            for name in rotated(tuple(by_name), round_no):
                scenario = by_name[name]
                contender = start(scenario, workdir, nginx)
                try:
                    outcome = measure(contender.port, scenario, settings.seconds)
                finally:
                    assert contender.proc is not None
                    CHILDREN.stop(contender.proc)
                results[scenario.name].append(outcome)
                flood = outcome.flood
                print(
                    f"  {scenario.name:26} p50 {outcome.p50_ms:7.2f} p99 {outcome.p99_ms:8.2f} ms "
                    f"errors {outcome.errors:4}/{outcome.requests}  flood {flood.get('attempts', 0):7.0f}/s "
                    f"served {flood.get('served', 0):7.0f}/s reset {flood.get('reset', 0):7.0f}/s",
                    flush=True,
                )
                for note in outcome.notes:
                    print(f"    ! {note}", flush=True)
    finally:
        nginx.stop()
    return results


def report(results: dict[str, list[Outcome]], command: str, env: str, elapsed: float) -> str:
    lines = [
        f"`{command}` ({elapsed / 60:.1f} min)",
        "",
        env,
        "",
        f"Victims: {VICTIM_RATE} req/s from 10 sources; attacker: one source, 64 in flight; limit on = "
        f"{SOURCE_RATE} new connections/s per source. Medians over rounds; raw values per round after /.",
        "",
        "| scenario | victims p50 ms | victims p99 ms | victims failed (of each run) | attacker tried/s "
        "| attacker served/s | attacker reset/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, outcomes in results.items():

        def column(values: list[float], digits: int) -> str:
            raw = " / ".join(f"{value:.{digits}f}" for value in values)
            return f"**{median(values):.{digits}f}** ({raw})"

        flood = [outcome.flood for outcome in outcomes]
        requests = outcomes[0].requests if outcomes else 0
        p50, p99 = column([o.p50_ms for o in outcomes], 2), column([o.p99_ms for o in outcomes], 2)
        lines.append(
            f"| {name} | {p50} | {p99} | {column([float(o.errors) for o in outcomes], 0)} of {requests} "
            f"| {median([f.get('attempts', 0.0) for f in flood]):.0f} "
            f"| {median([f.get('served', 0.0) for f in flood]):.0f} "
            f"| {median([f.get('reset', 0.0) for f in flood]):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    missing = [tool for tool in ("nginx", "haproxy") if shutil.which(tool) is None]
    if missing:
        print(f"missing: {' '.join(missing)}; apt-get install -y nginx-light haproxy", file=sys.stderr)
        return 2
    command = start_bench("bench/flood.py", argv)

    def finish(done: Finished[dict[str, list[Outcome]]]) -> None:
        text = report(done.result, command, done.env, done.duration)
        print("\n" + text)
        if settings.output is not None:
            settings.output.write_text(text)

    return run_session(lambda session: run(settings, session.temp_dir()), finish)


if __name__ == "__main__":
    sys.exit(main())
