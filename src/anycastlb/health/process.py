"""The health process: one per edge agent, forked by the supervisor beside the workers.

Why a process of its own. Probes are many small waits, which asyncio does well and the workers'
bare epoll loop (built for the relay) does not; in a separate process a slow probe, a parsing bug or
a crash never stalls a connection, and the supervisor restarts it like any worker. Why not one per
worker: N times the probes against every node, and workers that disagree about who is up.

Channels, all created by the supervisor before it forks:
- config: a pipe of length-prefixed JSON, the same message the workers get (EOF: the supervisor
  is gone, so exit);
- passive reports: the receiving end of a datagram socket that every worker writes to;
- the health board: shared memory this process writes and every worker reads.
"""

import asyncio
import logging
import os
import signal
import socket
import time

from anycastlb.health.monitor import HealthMonitor, ProbeFunction
from anycastlb.health.probes import run_probe
from anycastlb.internal_errors import survived
from anycastlb.model.config import EdgeConfig
from anycastlb.wire.framing import ConfigPipeReader
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import PassiveReport

__all__ = ["run_health_process"]

log = logging.getLogger("anycastlb.health")

_REPORTS_PER_TURN = 256  # bounded, so a flood of reports cannot starve the probes


def run_health_process(
    config: EdgeConfig,
    control_fd: int,
    board: HealthBoard,
    reports: socket.socket,
    probe: ProbeFunction = run_probe,
) -> int:
    """Run until SIGTERM or until the supervisor goes away; returns the exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the supervisor
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return asyncio.run(_serve(config, control_fd, board, reports, probe))


async def _serve(
    config: EdgeConfig, control_fd: int, board: HealthBoard, reports: socket.socket, probe: ProbeFunction
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    monitor = HealthMonitor(board, probe)
    monitor.configure(config)
    log.info("health_started targets=%d listeners=%d", len(monitor.targets), len(config.listeners))
    control = ConfigPipeReader(control_fd)

    def on_control() -> None:
        messages = control.read()
        if messages is None:
            log.warning("supervisor_gone part=health action=exit")
            stop.set()
            return
        for message in messages:
            try:
                monitor.configure(EdgeConfig.model_validate_json(message))
            except Exception as error:
                survived(log, "health", "keep-previous-config", error)
                continue
            log.info("health_config_applied targets=%d", len(monitor.targets))

    def on_reports() -> None:
        started = time.monotonic()  # every report sent before this is in the queue: read them all
        for _ in range(_REPORTS_PER_TURN):
            try:
                datagram = reports.recv(4096)
            except BlockingIOError:
                monitor.reports_through = started
                break
            try:
                monitor.passive(PassiveReport.decode(datagram))
            except (ValueError, UnicodeDecodeError) as error:
                log.error("passive_report_invalid error=%r", str(error))
            except Exception as error:
                survived(log, "health", "report-ignored", error)
        try:
            monitor.publish()
        except Exception as error:
            survived(log, "health", "publish-later", error)

    os.set_blocking(control_fd, False)
    reports.setblocking(False)
    loop.add_reader(control_fd, on_control)
    loop.add_reader(reports.fileno(), on_reports)
    await stop.wait()
    loop.remove_reader(control_fd)
    loop.remove_reader(reports.fileno())
    await monitor.close()
    log.info("health_stopped")
    return 0
