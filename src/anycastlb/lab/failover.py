"""Fail a PoP while a client keeps connecting; measure what the client and the router saw.

Modes (``--mode``):

- ``drain``: SIGTERM to the PoP's edge. It withdraws the VIP, keeps accepting for
  ``withdraw_delay`` while the router moves traffic away, then finishes its connections and exits.
  Expected: no failed connection.
- ``kill``: SIGKILL to the edge's supervisor and its children at once, as a crash would; ExaBGP must
  die with them (``PR_SET_PDEATHSIG``). The kernel closes the BGP session, so the router drops the
  route at once; the hold time (3 s) bounds it. Connections in the gap are refused.
- ``cut``: the PoP loses its cable to every node (``ip link set cluster down`` inside it). Its health
  checks fail, its listener stops serving, it withdraws.
- ``silent``: the PoP's switch port goes dark: it dies silently for the router (no carrier loss, no
  TCP reset). BFD (3 x 100 ms) or else the hold timer (3 s) moves the route.

With ``restore`` the PoP is then brought back (edge started again, or cable plugged back) and the
return of the traffic is measured the same way. The client runs in the client namespace
(:mod:`anycastlb.lab.probe_client`); the router's table is read every 2 ms from ``/proc``.
"""

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from anycastlb.lab.anycast import AnycastLab
from anycastlb.lab.faults import (
    drain_edge,
    edge_processes,
    kill_edge,
    restart_edge,
    set_cluster_link,
    set_transit_port,
)
from anycastlb.lab.netns import LabError, inside
from anycastlb.lab.processes import checkout_env
from anycastlb.lab.procfs import next_hop
from anycastlb.lab.timeline import Attempt, Movement, RouteChange, measure_movement
from anycastlb.lab.topology import HTTP_PORT

__all__ = [
    "CLIENT_TIMEOUT",
    "MODES",
    "MODE_MEANINGS",
    "ClientRun",
    "FailoverResult",
    "Mode",
    "Progress",
    "RouteWatcher",
    "client_requests",
    "run_failover",
]

Mode = Literal["drain", "kill", "cut", "silent"]
MODES: tuple[Mode, ...] = ("drain", "kill", "cut", "silent")
# What each mode does to the PoP, in the words the report and --help use (the module docstring has more).
MODE_MEANINGS: dict[Mode, str] = {
    "drain": "SIGTERM to its edge: it withdraws the VIP first, then finishes its connections and exits",
    "kill": "SIGKILL to its edge, as a crash: the kernel closes the BGP session",
    "cut": "its cable to the cluster's nodes is unplugged: its health checks fail and it withdraws the VIP",
    "silent": "its switch port to the router goes dark: only BFD or the BGP hold timer notices",
}
Progress = Callable[[str], None]  # told what step runs now, e.g. to print it while the fault lasts
_BASELINE = 20  # successful requests through the PoP before the fault
_MAX_HOLD_DOWN = 8.0  # bgp.max_hold_down in the lab's edge.yaml: the longest a return may be held
CLIENT_TIMEOUT = 2.0  # the lab client's connect and read timeout (probe_client --timeout)


class RouteWatcher:
    """Records every change of the router's next hop for the VIP (as a PoP name), every 2 ms."""

    def __init__(self, lab: AnycastLab, every: float = 0.002) -> None:
        self.lab = lab
        self.every = every
        self.table = lab.route_table_path()
        self.changes: list[RouteChange] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="route-watcher", daemon=True)

    def current(self) -> str | None:
        return self.changes[-1].pop if self.changes else None

    def _read(self) -> str | None:
        try:
            hop = next_hop(self.table.read_text(), self.lab.topology.vip)
        except OSError:
            return None
        return None if hop is None else self.lab.topology.pop_by_transit_address(hop) or hop

    def _run(self) -> None:
        previous: float | None = None
        while not self._stop.is_set():
            pop = self._read()
            now = time.monotonic()
            if not self.changes or self.changes[-1].pop != pop:
                self.changes.append(RouteChange(now, pop, since=previous))
            previous = now
            time.sleep(self.every)

    def wait_for(self, wanted: Callable[[str | None], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not wanted(self.current()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def __enter__(self) -> "RouteWatcher":
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _probe_argv(lab: AnycastLab, *extra: str) -> list[str]:
    topology = lab.topology
    argv = [sys.executable, "-m", "anycastlb.lab.probe_client", topology.vip, str(HTTP_PORT), *extra]
    for address in topology.client_addresses:
        argv += ["--source", address]
    for pop in topology.pops:
        argv += ["--pop", f"{pop.cluster_address}={pop.name}"]
    return inside(topology.client, argv)


def client_requests(lab: AnycastLab, count: int) -> list[Attempt]:
    """``count`` requests from the client namespace to the VIP, one after the other."""
    done = subprocess.run(
        _probe_argv(lab, "--count", str(count), "--pause", "0"),
        capture_output=True,
        text=True,
        check=False,
        timeout=30 + 3 * count,
        env=checkout_env(),
    )
    if done.returncode != 0:
        raise LabError(f"the lab client failed: {done.stderr.strip()[-500:]}")
    return [Attempt.from_json(line) for line in done.stdout.splitlines() if line.strip()]


class ClientRun:
    """The client loop, running in the client namespace while the caller breaks things."""

    def __init__(self, lab: AnycastLab, pause: float = 0.002) -> None:
        self.attempts: list[Attempt] = []
        self.process = subprocess.Popen(
            _probe_argv(lab, "--pause", str(pause), "--timeout", str(CLIENT_TIMEOUT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=checkout_env(),
        )
        self._reader = threading.Thread(target=self._read, name="client-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.attempts.append(Attempt.from_json(line))

    def wait_for(self, condition: Callable[[list[Attempt]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.attempts):
            if self.process.poll() is not None or time.monotonic() > deadline:
                errors = {a.error for a in self.attempts[-20:] if not a.ok}
                raise LabError(f"{what} within {timeout:.0f}s (recent client errors: {errors or 'none'})")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        stderr = self.process.stderr.read() if self.process.stderr else ""
        if self.process.stderr:
            self.process.stderr.close()
        if self.process.stdout:
            self.process.stdout.close()
        if self.process.returncode not in (0, -15) or "Traceback" in stderr:
            raise LabError(
                f"the lab client crashed (exit {self.process.returncode}): {stderr.strip()[-500:]}"
            )

    def __enter__(self) -> "ClientRun":
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class FailoverResult:
    pop: str
    mode: Mode
    moved: Movement  # from the fault until the restore
    returned: Movement | None  # from the restore until the end (None without restore)
    survivors: tuple[str, ...]  # kill: processes still alive in the PoP's namespace 1 s later
    held_down: tuple[str, ...]  # the edge's vip_held_down lines after the restore (flap dampening)
    attempts: tuple[Attempt, ...]
    routes: tuple[RouteChange, ...]
    edge_log: str  # where the PoP's edge logged (for the vip_withdrawn/announced lines)
    client_timeout: float = CLIENT_TIMEOUT  # bounds the traffic figure after a request timed out


def _fault(lab: AnycastLab, pop: str, mode: Mode) -> None:
    if mode == "drain":
        drain_edge(lab, pop)
    elif mode == "kill":
        kill_edge(lab, pop)
    elif mode == "silent":
        set_transit_port(lab, pop, up=False)
    else:
        set_cluster_link(lab, pop, up=False)


def _wait_for_bfd(lab: AnycastLab, pop: str, timeout: float) -> None:
    """Until the router's BFD session with ``pop`` is Up: without it a silent death costs the hold time."""
    address = lab.topology.pop(pop).transit_address
    deadline = time.monotonic() + timeout
    while True:
        sessions = lab.birdc("show", "bfd", "sessions")
        if any(line.split()[:1] == [address] and " Up " in f" {line} " for line in sessions.splitlines()):
            return
        if time.monotonic() > deadline:
            raise LabError(f"the router's BFD session with {pop} ({address}) is not up:\n{sessions}")
        time.sleep(0.05)


def _survivors(lab: AnycastLab, pop: str) -> tuple[str, ...]:
    found = []
    for pid in edge_processes(lab, pop):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        found.append(f"{pid} {command}")
    return tuple(found)


def run_failover(
    lab: AnycastLab,
    pop: str,
    mode: Mode,
    *,
    restore: bool = True,
    settle: float = 1.0,
    timeout: float = 15.0,
    pause: float = 0.002,
    progress: Progress | None = None,
) -> FailoverResult:
    """Fail ``pop`` in ``mode`` under client load; measure the move (and the return). ``progress``
    hears each step as it starts: a run takes several seconds and a silent one would look hung."""
    say = progress or (lambda _: None)
    lab.topology.pop(pop)  # a KeyError names the PoPs
    if not lab.processes():
        raise LabError(f"lab {lab.topology.name} is not up: `anycastlb lab up` builds it")
    if (now_at := lab.kernel_pop()) != pop:
        advice = (
            f"failing {pop} would move no traffic; fail {now_at}"
            if now_at
            else "`anycastlb lab status` shows why; `anycastlb lab up` restores the lab"
        )
        raise LabError(f"the router forwards the VIP to {now_at or 'nowhere'}, not to {pop}: {advice}")
    restored_at: float | None = None
    edge_log = lab.pop_dir(pop) / "edge.log"
    log_offset = 0
    with RouteWatcher(lab) as watcher, ClientRun(lab, pause) as client:
        say(f"client started; waiting for {_BASELINE} answers through {pop}")
        client.wait_for(
            lambda attempts: sum(a.pop == pop for a in attempts) >= _BASELINE,
            timeout=10,
            what=f"the client did not reach the VIP through {pop} {_BASELINE} times",
        )
        if mode == "silent" and lab.topology.bfd:
            say(f"waiting for the router's BFD session with {pop}")
            _wait_for_bfd(lab, pop, timeout)  # a PoP restarted by an earlier fault may not have it yet
        say(f"failing {pop} ({mode}): {MODE_MEANINGS[mode]}")
        fault_at = time.monotonic()
        _fault(lab, pop, mode)
        say(f"waiting for the router to move the VIP away from {pop} (at most {timeout:.0f}s)")
        moved = watcher.wait_for(lambda hop: hop is not None and hop != pop, timeout)
        # The client is sequential: a request in flight at the fault can hang for its whole
        # timeout (a silent death drops its packets). Keep the PoP failed until that one has
        # given up and newer ones have had ``settle`` to reach the PoP that took over; with 1 s
        # the moved traffic was sometimes never seen.
        keep = max(settle, fault_at + CLIENT_TIMEOUT + settle - time.monotonic())
        where = (
            f"route moved to {watcher.current()}" if moved else f"route did not move within {timeout:.0f}s"
        )
        say(f"{where}; keeping {pop} failed {keep:.1f}s more for the client's requests in flight")
        time.sleep(keep)
        survivors = _survivors(lab, pop) if mode == "kill" else ()
        if restore:
            say(f"restoring {pop}")
            log_offset = edge_log.stat().st_size
            if mode == "cut":
                set_cluster_link(lab, pop, up=True)
            elif mode == "silent":
                set_transit_port(lab, pop, up=True)
            else:
                restart_edge(lab, pop)
            restored_at = time.monotonic()
            back_within = timeout + _MAX_HOLD_DOWN
            say(f"waiting for the route back to {pop} (at most {back_within:.0f}s: flap dampening may wait)")
            back = watcher.wait_for(lambda hop: hop == pop, back_within)
            returned_to = "is back at" if back else "did not come back to"
            say(f"route {returned_to} {pop}; measuring {settle:.1f}s more")
            time.sleep(settle)
        end = time.monotonic()
    attempts, routes = tuple(client.attempts), tuple(watcher.changes)
    movement = measure_movement(attempts, routes, fault_at, restored_at or end, lambda p: p != pop)
    returned = (
        None
        if restored_at is None
        else measure_movement(attempts, routes, restored_at, end, lambda p: p == pop, in_flight=False)
    )
    held = _held_down_lines(edge_log, log_offset) if restored_at is not None else ()
    return FailoverResult(pop, mode, movement, returned, survivors, held, attempts, routes, str(edge_log))


def _held_down_lines(edge_log: Path, offset: int) -> tuple[str, ...]:
    with edge_log.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return tuple(line for line in text.splitlines() if "vip_held_down" in line)
