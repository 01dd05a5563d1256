"""The announcer process: follows the health board and keeps the BGP speaker announcing what the PoP
can serve. Forked by the supervisor when ``edge.yaml`` has a ``bgp:`` block.

Why a process of its own, reading the same board as the workers: the announce decision needs only
the per-listener ``serving`` flags the health process publishes, and a speaker that hangs or
crashes must not delay a health verdict (nor the reverse). The board is checked every 5 ms: a
withdrawal leaves at most 5 ms after the health process wrote the verdict.

Signals: SIGUSR1 = drain (withdraw every VIP, keep the sessions up so the withdrawals propagate);
SIGTERM = stop (the speaker's sessions close). A closed control pipe means the supervisor died:
stop, so the routers withdraw our routes.

Failing safe: this process dying would take ExaBGP with it (``PR_SET_PDEATHSIG``) and flap every
session, so a turn, a reconfiguration or a control message that raises is logged and counted
(``internal_errors``) and the announcements stay as they were until the next turn succeeds.
"""

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

from anycastlb.bgp.exabgp_speaker import ExaBgpSpeaker
from anycastlb.bgp.metrics import DRAINING
from anycastlb.bgp.policy import AnnouncePolicy, FlapDamper
from anycastlb.edge.vips import vip_attributes, vip_listeners, vip_serving
from anycastlb.internal_errors import survived
from anycastlb.model.bgp import BgpConfig
from anycastlb.model.config import EdgeConfig
from anycastlb.wire.framing import ConfigPipeReader
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import HealthView

__all__ = ["run_announcer"]

log = logging.getLogger("anycastlb.bgp")

_BOARD_POLL = 0.005


class _Announcer:
    def __init__(self, config: EdgeConfig, bgp: BgpConfig, board: HealthBoard, workdir: Path) -> None:
        self.config = config
        self.board = board
        self.workdir = workdir
        self.speaker = ExaBgpSpeaker(bgp, workdir)
        self.policy = AnnouncePolicy(FlapDamper(bgp.hold_down, bgp.max_hold_down))
        self.draining = False
        self.view: HealthView | None = None
        self.generation = -1
        self.wake_at: float | None = None
        self.changed = asyncio.Event()

    async def reconfigure(self, config: EdgeConfig) -> None:
        try:
            await self._reconfigure(config)
        except Exception as error:
            survived(log, "bgp", "keep-previous-config", error)

    async def _reconfigure(self, config: EdgeConfig) -> None:
        if config.bgp is None:
            log.warning("bgp_block_removed action=withdraw-all (restart the edge to stop the speaker)")
            self.draining = True
        elif config.bgp != self.config.bgp:
            log.info("bgp_config_changed action=restart-speaker")
            await self.speaker.stop()
            self.speaker = ExaBgpSpeaker(config.bgp, self.workdir)
            await self.speaker.start()
        self.config = config
        self.changed.set()

    async def decide(self) -> None:
        bgp = self.config.bgp
        if bgp is None:
            await self.speaker.set(frozenset())
            return
        vips = vip_listeners(self.config)
        serving = vip_serving(vips, self.view)
        attributes = vip_attributes(bgp, list(vips))
        held_before = set(self.policy.held_down)
        now = time.monotonic()
        announcements, self.wake_at = self.policy.decide(serving, attributes, self.draining, now)
        for prefix, until in self.policy.held_down.items():
            if prefix not in held_before:
                log.warning("vip_held_down prefix=%s for=%.1fs reason=flapping", prefix, until - now)
        await self.speaker.set(announcements)

    def read_board(self) -> bool:
        """Take a new health view if there is one; True if it changed."""
        if self.board.generation() == self.generation:
            return False
        snapshot = self.board.read()
        if snapshot is None:
            return False
        self.generation, payload = snapshot
        self.view = HealthView.decode(payload)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        await self.speaker.start()
        while not stop.is_set():
            try:
                due = self.read_board() or self.changed.is_set()
                if self.wake_at is not None and time.monotonic() >= self.wake_at:
                    due = True
                if due:
                    self.changed.clear()
                    await self.decide()
            except Exception as error:
                survived(log, "bgp", "keep-announcements", error)
                self.changed.set()  # decide again next turn
                await asyncio.sleep(1.0)  # a fault that repeats every turn must not spin
            await asyncio.sleep(_BOARD_POLL)
        await self.speaker.stop()


def run_announcer(
    config: EdgeConfig, bgp: BgpConfig, control_fd: int, board: HealthBoard, workdir: Path
) -> int:
    """Run until SIGTERM or until the supervisor goes away; returns the exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return asyncio.run(_serve(config, bgp, control_fd, board, workdir))


async def _serve(
    config: EdgeConfig, bgp: BgpConfig, control_fd: int, board: HealthBoard, workdir: Path
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    announcer = _Announcer(config, bgp, board, workdir)
    control = ConfigPipeReader(control_fd)
    pending: set[asyncio.Task[None]] = set()

    def drain() -> None:
        if not announcer.draining:
            log.info("drain_withdraw vips=%d", len(vip_listeners(announcer.config)))
            announcer.draining = True
            DRAINING.set(1)
            announcer.changed.set()

    def on_control() -> None:
        messages = control.read()
        if messages is None:
            log.warning("supervisor_gone part=bgp action=stop")
            stop.set()
            return
        for message in messages:
            try:
                config = EdgeConfig.model_validate_json(message)
            except Exception as error:
                survived(log, "bgp", "keep-previous-config", error)
                continue
            task = loop.create_task(announcer.reconfigure(config))
            pending.add(task)
            task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, drain)
    os.set_blocking(control_fd, False)
    loop.add_reader(control_fd, on_control)
    log.info("announcer_started vips=%d", len(vip_listeners(config)))
    await announcer.run(stop)
    loop.remove_reader(control_fd)
    log.info("announcer_stopped")
    return 0
