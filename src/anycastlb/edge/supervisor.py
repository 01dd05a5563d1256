"""The edge agent's supervisor: forks the data-plane workers and owns signals, reload and metrics.

Lifecycle, one step per comment in :meth:`Supervisor.run`:

1. validate the config and test-bind every listener, so a typo or a taken port fails before any
   worker starts, with a message that names it;
2. fork the health process (probes; it writes verdicts to a shared-memory board) and N workers;
   each worker opens its own ``SO_REUSEPORT`` sockets, runs an epoll loop and reads the board;
3. loop on signals and the metrics socket (no threads, so forking a replacement worker is safe):
   SIGHUP → re-read the file, validate, test-bind new listeners, send it to every worker (a bad
   file changes nothing); SIGCHLD → respawn a worker or health process that died;
   SIGTERM/SIGINT → drain;
4. drain: every worker stops accepting and finishes its connections up to ``drain_timeout``;
   exit 0 once all have exited.
"""

import contextlib
import http.server
import logging
import os
import select
import signal
import socket
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, multiprocess
from prometheus_client.exposition import MetricsHandler

from anycastlb.dataplane.limits import SharedCounters
from anycastlb.dataplane.sockets import open_listener
from anycastlb.dataplane.worker import Worker
from anycastlb.health.process import run_health_process
from anycastlb.model.config import ConfigError, EdgeConfig, MetricsEndpoint, load_config
from anycastlb.wire.framing import write_message
from anycastlb.wire.health_board import HealthBoard

__all__ = ["Supervisor"]

log = logging.getLogger("anycastlb.edge")

RELOADS = Counter("anycastlb_config_reloads", "Configuration reloads by result (ok, invalid)", ["result"])
WORKERS = Gauge("anycastlb_workers", "Running data-plane worker processes", multiprocess_mode="max")
RESPAWNS = Counter("anycastlb_worker_respawns", "Workers that died and were started again")
HEALTH_RESPAWNS = Counter("anycastlb_health_respawns", "Health processes that died and were started again")
_GRACE_AFTER_DRAIN = 5.0
_READY_TIMEOUT = 10.0


def _wait_ready(pipes: list[int], timeout: float) -> int:
    """Wait until each worker said its listeners are open (or died); returns how many are ready."""
    deadline = time.monotonic() + timeout
    ready = 0
    waiting = set(pipes)
    while waiting and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select(list(waiting), [], [], left)
        for fd in readable:
            ready += os.read(fd, 16) == b"ready"  # EOF without the word: the worker died starting
            waiting.discard(fd)
            os.close(fd)
    for fd in waiting:
        os.close(fd)
    return ready


class _MetricsServer(http.server.HTTPServer):
    def __init__(self, endpoint: MetricsEndpoint) -> None:
        self.address_family = socket.AF_INET6 if endpoint.address.version == 6 else socket.AF_INET
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        handler = MetricsHandler.factory(registry)
        handler.timeout = 2  # type: ignore[attr-defined]  # a stuck scraper must not hold the loop
        super().__init__((str(endpoint.address), endpoint.port), handler)


def _check_listeners(config: EdgeConfig, already_open: set[tuple[str, int, str]]) -> None:
    """Bind every new listener once, so failures surface here and not inside N workers."""
    for listener in config.listeners:
        if listener.endpoint not in already_open:
            open_listener(listener).close()


class Supervisor:
    """Runs one PoP's data plane from a config file."""

    def __init__(self, config_path: Path, config: EdgeConfig) -> None:
        self.config_path = config_path
        self.config = config
        self.counters = SharedCounters(config.workers)
        self.workers: dict[int, tuple[int, int]] = {}  # index -> (pid, control pipe write end)
        self.health: tuple[int, int] | None = None  # the health process: (pid, control pipe write end)
        self.health_board = HealthBoard()
        # Workers report failed connects to the health process: many writers, one reader, datagrams.
        self.reports_in, self.reports_out = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.reports_out.setblocking(False)
        self.draining = False
        self._signals: list[int] = []

    def run(self) -> int:
        # 1. Validate and test-bind.
        _check_listeners(self.config, set())
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(handled, lambda *_: None)  # delivered through the wake-up fd
        metrics = _MetricsServer(self.config.metrics) if self.config.metrics else None
        # 2. Fork the health process and the workers.
        self._spawn_health()
        ready = [self._spawn(index) for index in range(self.config.workers)]
        ready_workers = _wait_ready(ready, timeout=_READY_TIMEOUT)
        log.info(
            "edge_started pop=%s workers=%d ready=%d listeners=%d metrics=%s",
            self.config.pop,
            self.config.workers,
            ready_workers,
            len(self.config.listeners),
            f"{self.config.metrics.address}:{self.config.metrics.port}" if self.config.metrics else "off",
        )
        # 3. Serve signals and scrapes until drained.
        poller = select.poll()
        poller.register(wake_read, select.POLLIN)
        if metrics:
            poller.register(metrics.fileno(), select.POLLIN)
        drain_deadline = 0.0
        while self.workers or self.health:
            for fd, _ in poller.poll(1000):
                if fd == wake_read:
                    with contextlib.suppress(BlockingIOError):
                        self._signals.extend(os.read(wake_read, 64))
                elif metrics is not None:
                    metrics.handle_request()
            self._reap()
            while self._signals:
                signum = self._signals.pop(0)
                if signum == signal.SIGHUP and not self.draining:
                    self.reload()
                elif signum in (signal.SIGTERM, signal.SIGINT) and not self.draining:
                    # 4. Drain.
                    self.draining = True
                    drain_deadline = time.monotonic() + self.config.drain_timeout + _GRACE_AFTER_DRAIN
                    log.info(
                        "drain_requested pop=%s timeout=%.1fs", self.config.pop, self.config.drain_timeout
                    )
                    self._signal_workers(signal.SIGTERM)
                    if self.health:
                        os.kill(self.health[0], signal.SIGTERM)
            if self.draining and time.monotonic() > drain_deadline:
                log.error("drain_overrun action=kill workers=%d", len(self.workers))
                self._signal_workers(signal.SIGKILL)
        if metrics:
            metrics.server_close()
        log.info("edge_stopped pop=%s", self.config.pop)
        return 0

    def _spawn(self, index: int) -> int:
        """Fork worker ``index``; returns a pipe that becomes readable once its listeners are open."""
        control_read, control_write = os.pipe2(os.O_CLOEXEC)
        ready_read, ready_write = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(control_write)
                os.close(ready_read)
                self._close_siblings()
                self.reports_in.close()
                os.set_blocking(control_read, False)
                self.counters.bind_worker(index)
                worker = Worker(
                    self.config, index, self.counters, control_read, self.health_board, self.reports_out
                )
                os.write(ready_write, b"ready")
                os.close(ready_write)
                code = worker.run()
            except BaseException:
                log.exception("worker_crashed worker=%d", index)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(control_read)
        os.close(ready_write)
        self.workers[index] = (pid, control_write)
        WORKERS.set(len(self.workers))
        return ready_read

    def _close_siblings(self) -> None:
        """In a child: close the control pipes of the other children (their EOF must mean our death)."""
        for _, other_write in self.workers.values():
            os.close(other_write)
        if self.health is not None:
            os.close(self.health[1])

    def _spawn_health(self) -> None:
        """Fork the health process; it starts probing at once and publishes its first view."""
        control_read, control_write = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # the health process
            code = 1
            try:
                os.close(control_write)
                self._close_siblings()
                self.reports_out.close()
                code = run_health_process(self.config, control_read, self.health_board, self.reports_in)
            except BaseException:
                log.exception("health_crashed")
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(control_read)
        self.health = (pid, control_write)

    def _reap_health(self, pid: int, status: int, control_write: int) -> None:
        os.close(control_write)
        self.health = None
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        code = os.waitstatus_to_exitcode(status)
        if self.draining:
            log.info("health_stopped pid=%d code=%d", pid, code)
            return
        log.error("health_died pid=%d code=%d action=respawn (workers keep the last verdicts)", pid, code)
        HEALTH_RESPAWNS.inc()
        time.sleep(0.2)  # a health process that dies at start must not turn into a fork storm
        self._spawn_health()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.health is not None and pid == self.health[0]:
                self._reap_health(pid, status, self.health[1])
                continue
            for index, (worker_pid, control_write) in list(self.workers.items()):
                if worker_pid != pid:
                    continue
                os.close(control_write)
                del self.workers[index]
                multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
                self.counters.reset_worker(index)
                code = os.waitstatus_to_exitcode(status)
                if self.draining:
                    log.info("worker_drained worker=%d pid=%d code=%d", index, pid, code)
                else:
                    log.error("worker_died worker=%d pid=%d code=%d action=respawn", index, pid, code)
                    RESPAWNS.inc()
                    time.sleep(0.2)  # a worker that dies at start must not turn into a fork storm
                    if _wait_ready([self._spawn(index)], timeout=_READY_TIMEOUT):
                        log.info("worker_replaced worker=%d", index)
            WORKERS.set(len(self.workers))

    def _signal_workers(self, signum: int) -> None:
        for pid, _ in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def reload(self) -> bool:
        """Re-read the config file; apply it only if it is entirely valid."""
        try:
            config = load_config(self.config_path)
            if config.workers != self.config.workers:
                log.warning(
                    "reload_workers_ignored running=%d wanted=%d (restart to change)",
                    self.config.workers,
                    config.workers,
                )
                config = config.model_copy(update={"workers": self.config.workers})
            _check_listeners(config, {listener.endpoint for listener in self.config.listeners})
        except (ConfigError, OSError) as error:
            RELOADS.labels("invalid").inc()
            log.error("reload_rejected keeping=previous-config error=%r", str(error))
            return False
        self.config = config
        payload = config.model_dump_json().encode()
        receivers = [(f"worker={index}", write_end) for index, (_, write_end) in self.workers.items()]
        if self.health is not None:
            receivers.append(("part=health", self.health[1]))
        for who, control_write in receivers:
            try:
                write_message(control_write, payload)
            except OSError as error:
                log.error("reload_send_failed %s error=%r", who, error.strerror)
        RELOADS.labels("ok").inc()
        log.info("reload_applied listeners=%d", len(config.listeners))
        return True
