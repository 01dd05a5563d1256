"""The asyncio shell around the state machines: runs the probes, applies verdicts, publishes views.

Theory of operation. Every distinct probe target (what is checked and how: the check block but its
``initial``, the address, the port and the PROXY header) gets one :class:`BackendHealth` machine
and one driver task, however many listeners share it; listeners are members of targets. A machine
outlives any config that keeps its target; ``initial`` only places a new machine, so it is no part
of the target (two listeners that differ only there share the first one's machine). The driver sleeps until
the machine's ``next_probe_at`` and starts each probe as its own task, so a probe that hangs never
delays the next one (the late-probe rule in ``state.py`` depends on that). Every verdict that
changes something is logged, counted, and published at once as a whole :class:`HealthView` on the
board the workers read. Passive reports from the workers go to the same machines.

The clock is ``time.monotonic``: the workers compare ``reports_through`` with their own monotonic
time, which is the same clock system-wide.

A probe that raises (a bug: probes turn network trouble into results) is no evidence: the verdict
stays, the error is logged and counted (``internal_errors``) and the target is probed again on
schedule. A driver turn that raises does the same after one interval, so no target stops being
checked silently.
"""

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from anycastlb.health.metrics import (
    BACKEND_UP,
    BACKEND_WEIGHT,
    CHECK_SECONDS,
    LISTENER_SERVING,
    PASSIVE_FAILURES,
    TRANSITIONS,
)
from anycastlb.health.result import ProbeResult
from anycastlb.health.state import BackendHealth, Change, CheckPolicy
from anycastlb.internal_errors import survived
from anycastlb.model.config import EdgeConfig, HealthCheck, Listener, ProxyProtocolVersion
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import HealthView, ListenerHealth, PassiveReport

__all__ = ["HealthMonitor", "ProbeFunction"]

log = logging.getLogger("anycastlb.health")

ProbeFunction = Callable[[HealthCheck, str, int, ProxyProtocolVersion], Awaitable[ProbeResult]]
"""``(check, address, port, proxy_protocol) -> ProbeResult``; never raises for network trouble."""

_TargetKey = tuple[str, str, int, ProxyProtocolVersion]
_NOT_KEYED: Final[set[str]] = {"initial"}  # check fields that do not tell targets apart


@dataclass(eq=False)
class _Target:
    """One probe target and the listener backends that share its verdicts."""

    check: HealthCheck
    address: str
    port: int
    proxy_protocol: ProxyProtocolVersion
    machine: BackendHealth
    members: list[tuple[str, str]] = field(default_factory=list)  # (listener, backend key)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    driver: "asyncio.Task[None] | None" = None
    probes: "set[asyncio.Task[None]]" = field(default_factory=set)
    transition: str = ""  # why it last went down or up ("" until it does): the PoP reports it


def _policy(check: HealthCheck) -> CheckPolicy:
    return CheckPolicy(
        interval=check.interval,
        timeout=check.timeout,
        rise=check.rise,
        fall=check.fall,
        passive_fall=check.passive_fall,
        initial_up=check.initial == "up",
    )


class HealthMonitor:
    """Checks every backend of a PoP's config and keeps the board current."""

    def __init__(self, board: HealthBoard, probe: ProbeFunction, rng: random.Random | None = None) -> None:
        self.board = board
        self.probe = probe
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.targets: dict[_TargetKey, _Target] = {}
        self.members: dict[tuple[str, str], _Target] = {}
        self.listeners: dict[str, list[tuple[str, _Target]]] = {}
        self.serving: dict[str, bool] = {}
        # Reports sent before this process started were for a predecessor; nothing to wait for.
        self.reports_through = time.monotonic()

    # ---- configuration -----------------------------------------------------------------------

    def configure(self, config: EdgeConfig) -> None:
        """Check what ``config`` lists; machines of unchanged targets keep their state."""
        now = time.monotonic()
        targets: dict[_TargetKey, _Target] = {}
        self.members, self.listeners = {}, {}
        for listener in config.listeners:
            members = self.listeners[listener.name] = []
            for backend in listener.backends:
                if backend.weight == 0:
                    continue  # drained by configuration: the data plane never picks it
                key = self._target_key(listener, str(backend.address), backend.port)
                target = targets.get(key)
                if target is None:
                    target = self.targets.get(key)
                    if target is None:
                        machine = BackendHealth(_policy(listener.health), backend.weight, now, self.rng)
                        target = _Target(listener.health, key[1], key[2], key[3], machine)
                    target.members = []
                    targets[key] = target
                target.members.append((listener.name, backend.key))
                self.members[(listener.name, backend.key)] = target
                members.append((backend.key, target))
        for key, target in self.targets.items():
            if key not in targets:
                self._stop(target)
        self.targets = targets
        for target in targets.values():
            if target.driver is None and target.check.type != "none":
                target.driver = asyncio.get_running_loop().create_task(self._drive(target))
            for listener_name, backend_key in target.members:
                self._export(listener_name, backend_key, target.machine)
        self.serving = {name: s for name, s in self.serving.items() if name in self.listeners}
        self.publish()

    @staticmethod
    def _target_key(listener: Listener, address: str, backend_port: int) -> _TargetKey:
        check = listener.health
        send_proxy = check.send_proxy
        if send_proxy is None:  # auto: the traffic port requires the header, so the check sends it
            send_proxy = check.type != "k8s" and check.port is None
        proxy: ProxyProtocolVersion = listener.proxy_protocol if send_proxy else "none"
        # Without ``initial``: it only sets where a new machine starts, so a check that changes in
        # it alone (a controller turning tunnels on) keeps every proven verdict instead of
        # restarting each backend unproven, which with ``initial: down`` would stop serving.
        return (check.model_dump_json(exclude=_NOT_KEYED), address, check.port or backend_port, proxy)

    def _stop(self, target: _Target) -> None:
        if target.driver is not None:
            target.driver.cancel()
        for probe in target.probes:
            probe.cancel()

    async def close(self) -> None:
        """Cancel every driver and probe, and wait for them to finish."""
        tasks: list[asyncio.Task[None]] = []
        for target in self.targets.values():
            self._stop(target)
            tasks += [task for task in (target.driver, *target.probes) if task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- probing -------------------------------------------------------------------------------

    async def _drive(self, target: _Target) -> None:
        while True:
            try:
                await self._drive_turn(target)
            except Exception as error:
                survived(log, "health", "probe-again-after-interval", error)
                await asyncio.sleep(target.check.interval)

    async def _drive_turn(self, target: _Target) -> None:
        """Wait until the next probe is due and start it."""
        machine = target.machine
        now = time.monotonic()
        due = machine.next_probe_at()
        if due > now:
            target.wake.clear()
            wait = None if math.isinf(due) else due - now
            # Not wait_for: on Python 3.11 it swallows a cancel that arrives after the event was
            # set but before this task resumed, and the driver would outlive close() and _stop().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await target.wake.wait()
            return
        token = machine.probe_started(now)
        probe = asyncio.get_running_loop().create_task(self._probe(target, token))
        target.probes.add(probe)
        probe.add_done_callback(target.probes.discard)

    async def _probe(self, target: _Target, token: int) -> None:
        check = target.check
        try:
            result = await self.probe(check, target.address, target.port, target.proxy_protocol)
        except Exception as error:
            survived(log, "health", "keep-verdict", error)
            target.machine.probe_abandoned(token)
            target.wake.set()
            return
        change = target.machine.probe_finished(token, result, time.monotonic())
        target.wake.set()  # the schedule may have moved (a failure rechecks at once)
        try:
            CHECK_SECONDS.labels(check.type, "ok" if result.ok else "fail").observe(result.latency)
            if change is not None:
                self._changed(target, change)
        except Exception as error:
            survived(log, "health", "verdict-taken", error)

    # ---- evidence from the data plane -------------------------------------------------------------

    def passive(self, report: PassiveReport) -> None:
        """A worker's client connect failed; a report for a backend we do not check is ignored."""
        target = self.members.get((report.listener, report.backend))
        if target is None:
            log.debug("passive_report_ignored listener=%s backend=%s", report.listener, report.backend)
            return
        PASSIVE_FAILURES.labels(report.listener, report.backend, report.reason).inc()
        change = target.machine.passive_failure(report.reason)
        target.wake.set()
        if change is not None:
            self._changed(target, change, publish=False)

    # ---- verdicts ----------------------------------------------------------------------------------

    def _changed(self, target: _Target, change: Change, *, publish: bool = True) -> None:
        if change.kind != "weight":
            target.transition = f"{change.kind}: {change.reason}"
        for listener_name, backend_key in target.members:
            members = self.listeners.get(listener_name, [])
            up = sum(1 for _, member in members if member.machine.up)
            event = "backend_weight" if change.kind == "weight" else f"backend_{change.kind}"
            log_level = logging.WARNING if change.kind == "down" else logging.INFO
            log.log(
                log_level,
                "%s listener=%s backend=%s reason=%r weight=%d healthy=%d/%d",
                event,
                listener_name,
                backend_key,
                change.reason,
                change.weight,
                up,
                len(members),
            )
            if change.kind != "weight":
                TRANSITIONS.labels(listener_name, backend_key, change.kind).inc()
            self._export(listener_name, backend_key, target.machine)
        if publish:
            self.publish()

    @staticmethod
    def _export(listener_name: str, backend_key: str, machine: BackendHealth) -> None:
        BACKEND_UP.labels(listener_name, backend_key).set(1 if machine.up else 0)
        BACKEND_WEIGHT.labels(listener_name, backend_key).set(machine.weight)

    def view(self) -> HealthView:
        """Every listener's verdicts as the workers need them."""
        listeners: dict[str, ListenerHealth] = {}
        for name, members in self.listeners.items():
            down = frozenset(key for key, target in members if not target.machine.up)
            weights = {key: target.machine.weight for key, target in members if target.check.type == "k8s"}
            reasons = {key: target.transition for key, target in members if target.transition}
            listeners[name] = ListenerHealth(
                serving=len(down) < len(members), down=down, weights=weights, reasons=reasons
            )
        return HealthView(time.monotonic(), self.reports_through, listeners)

    def publish(self) -> None:
        """Write the current view to the board, and log listeners that start or stop serving."""
        view = self.view()
        self.board.publish(view.encode())
        for name, health in view.listeners.items():
            if self.serving.get(name) != health.serving:
                if name in self.serving or not health.serving:
                    log.log(
                        logging.INFO if health.serving else logging.WARNING,
                        "listener_serving listener=%s serving=%s",
                        name,
                        str(health.serving).lower(),
                    )
                self.serving[name] = health.serving
                LISTENER_SERVING.labels(name).set(1 if health.serving else 0)
