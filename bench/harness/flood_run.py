"""One flood run: a contender, an attacker at full speed from one source, victims on a schedule."""

from __future__ import annotations

import json
import statistics
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .measure import nearest_rank, open_loop
from .processes import CHILDREN
from .servers import Contender, Nginx, start_edge, start_haproxy

ATTACKER = "127.0.0.2"
VICTIMS = tuple(f"127.0.0.{host}" for host in range(10, 20))  # other sources, /32 apart
VICTIM_RATE = 200  # requests/s over all victims: 20/s each, well under a per-source limit of 100/s
SOURCE_RATE = 100  # the per-source limit when it is on: new connections/s (burst: one second's worth)
WARMUP = 1.0  # seconds of flood before the victims start
FLOOD_CLIENT = Path(__file__).resolve().parent / "flood_client.py"


@dataclass(frozen=True)
class Scenario:
    name: str
    proxy: str  # edge | haproxy
    flood: bool
    limit: bool


SCENARIOS = (
    Scenario("edge, no flood", "edge", flood=False, limit=True),
    Scenario("edge, flood, limit off", "edge", flood=True, limit=False),
    Scenario("edge, flood, limit on", "edge", flood=True, limit=True),
    Scenario("haproxy, no flood", "haproxy", flood=False, limit=True),
    Scenario("haproxy, flood, limit off", "haproxy", flood=True, limit=False),
    Scenario("haproxy, flood, limit on", "haproxy", flood=True, limit=True),
)

# HAProxy's nearest equivalent: a stick table of per-source connection rates. It counts refused
# attempts too (our limit counts only admitted ones), so a flooding source gets almost nothing through.
HAPROXY_LIMIT = f"""\
stick-table type ip size 100k expire 10s store conn_rate(1s)
tcp-request connection track-sc0 src
tcp-request connection reject if {{ sc_conn_rate(0) gt {SOURCE_RATE} }}
"""


@dataclass
class Outcome:
    """The victims' view of one run, and what the attacker got."""

    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    flood: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def start(scenario: Scenario, workdir: Path, nginx: Nginx) -> Contender:
    slug = scenario.name.replace(", ", "-").replace(" ", "-")
    if scenario.proxy == "haproxy":
        frontend = HAPROXY_LIMIT if scenario.limit else ""
        return start_haproxy(workdir, nginx, maxconn=5_000, frontend=frontend, name=slug)
    settings = {"new_connections_per_second_per_source": SOURCE_RATE} if scenario.limit else {}
    return start_edge(workdir, nginx, workers=2, settings=settings, name=slug)


def run_flood(port: int, seconds: float, into: dict[str, float]) -> None:
    argv = [sys.executable, str(FLOOD_CLIENT), str(port), ATTACKER, f"{seconds:g}"]
    done = CHILDREN.run(argv, timeout=seconds + 30)
    if done.returncode != 0:
        into["error"] = done.returncode
        print(f"  ! flood client exit {done.returncode}: {done.stderr.strip()[-300:]}", flush=True)
        return
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    into.update({key: value / seconds for key, value in counts.items() if key != "seconds"})


def measure(port: int, scenario: Scenario, seconds: float) -> Outcome:
    flood: dict[str, float] = {}
    attacker = None
    if scenario.flood:
        attacker = threading.Thread(target=run_flood, args=(port, seconds + WARMUP + 0.5, flood), daemon=True)
        attacker.start()
        threading.Event().wait(WARMUP)
    outcomes, worst_lag = open_loop(port, VICTIM_RATE, seconds, VICTIMS)
    if attacker is not None:
        attacker.join()
    times = sorted(o * 1000 for o in outcomes if isinstance(o, float))
    failures = [o for o in outcomes if isinstance(o, str)]
    notes = [f"victims: {len(failures)} failed: {sorted(set(failures))}"] if failures else []
    if worst_lag > 0.05:
        notes.append(f"the victims' generator fell {worst_lag * 1000:.0f} ms behind its schedule")
    p50 = nearest_rank(times, 0.50) if times else float("nan")
    p99 = nearest_rank(times, 0.99) if times else float("nan")
    return Outcome(p50, p99, len(failures), len(outcomes), flood, notes)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
