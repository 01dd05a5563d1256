"""The edge agent's supervisor: forks the data-plane workers and owns signals, reload and metrics.

Lifecycle, one step per comment in :meth:`Supervisor.run`:

1. validate the config and test-bind every listener, so a typo or a taken port fails before any
   worker starts, with a message that names it;
2. fork the helper processes: with ``tunnels`` first the tunnels helper (it brings up the
   WireGuard interfaces and says "ready", so the first checks already go through them), then
   health (probes; it writes verdicts to a shared-memory board),
   with a ``bgp:`` block the announcer (reads the board, drives the BGP speaker), and in
   ``--control`` mode the follower (watches the control plane, writes ``pending.json``, sends us
   SIGHUP, reports status); then N workers: each opens its own ``SO_REUSEPORT`` sockets, runs an
   epoll loop and reads the board;
3. loop on signals and the metrics socket (no threads, so forking a replacement is safe):
   SIGHUP → ask the config source (the file, or base.yaml + the pending desired state), validate,
   test-bind new listeners, send it to every child, tell the source (which promotes the pending
   state to last-known-good, or records it as rejected; a bad config changes nothing);
   SIGCHLD → respawn a child that died; SIGTERM/SIGINT → drain. Nothing ends this loop but a
   drain: a reload that raises anything keeps the previous config (``reload_rejected``), a turn
   that raises (a bug, a failed fork, a full metrics disk) is logged and counted
   (:mod:`anycastlb.internal_errors`) and the next turn retries what is missing;
4. drain, in the order the network needs: the announcer withdraws every VIP and the supervisor
   waits ``bgp.withdraw_delay`` for routers to move traffic elsewhere; then every worker stops
   accepting and finishes its connections up to ``drain_timeout``; then the helpers stop (the BGP
   sessions close) and the supervisor exits 0.
"""

import contextlib
import http.server
import logging
import os
import select
import signal
import socket
import socketserver
import time
from collections.abc import Callable, Iterable
from typing import NoReturn

from prometheus_client import CollectorRegistry, Counter, Gauge, multiprocess
from prometheus_client.exposition import MetricsHandler

from anycastlb.dataplane.limits import KEY_BYTES, SharedCounters
from anycastlb.dataplane.rate_limits import RateWindows
from anycastlb.dataplane.sockets import ListenError, open_listener
from anycastlb.dataplane.worker import Worker
from anycastlb.edge.announcer import run_announcer
from anycastlb.edge.config_metrics import ConfigStateCollector
from anycastlb.edge.config_source import ConfigSource
from anycastlb.edge.follower import FollowerSettings, run_follower
from anycastlb.edge.metrics_dir import private_dir
from anycastlb.edge.scrape import SettledFilesCollector
from anycastlb.edge.syn_check import check_syn_posture
from anycastlb.edge.tunnels import check_tunnels, run_tunnels_helper
from anycastlb.health.process import run_health_process
from anycastlb.internal_errors import survived
from anycastlb.model.config import ConfigError, EdgeConfig, MetricsEndpoint
from anycastlb.tunnel.metrics import TunnelCollector
from anycastlb.wire.framing import write_message
from anycastlb.wire.health_board import HealthBoard

__all__ = ["Supervisor"]

log = logging.getLogger("anycastlb.edge")

RELOADS = Counter(
    "anycastlb_config_reloads",
    "Configuration reloads by result (ok; invalid: the config was refused and the previous one runs)",
    ["result"],
)
WORKERS = Gauge("anycastlb_workers", "Running data-plane worker processes", multiprocess_mode="max")
RESPAWNS = Counter("anycastlb_worker_respawns", "Workers that died and were started again")
HELPER_RESPAWNS = Counter(
    "anycastlb_helper_respawns",
    "Helper processes (health, bgp, control) that died and were started again",
    ["helper"],
)
_GRACE_AFTER_DRAIN = 5.0
_READY_TIMEOUT = 10.0
_TUNNELS_READY_TIMEOUT = 15.0  # one wireguard-go start per interface, on a busy host


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


def _child(crash_event: str, body: Callable[[], int]) -> NoReturn:
    """In a forked child: run ``body`` and exit with its code; never return into the supervisor."""
    code = 1
    try:
        code = body()
    except BaseException:
        log.exception(crash_event)
    finally:
        logging.shutdown()
        os._exit(code)


class _MetricsServer(http.server.HTTPServer):
    def __init__(
        self, endpoint: MetricsEndpoint, config_state: ConfigStateCollector, tunnels: TunnelCollector
    ) -> None:
        self.address_family = socket.AF_INET6 if endpoint.address.version == 6 else socket.AF_INET
        registry = CollectorRegistry()
        SettledFilesCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(config_state)
        registry.register(tunnels)  # runs `wg show` per scrape only while the config has tunnels
        handler = MetricsHandler.factory(registry)
        handler.timeout = 2  # type: ignore[attr-defined]  # a stuck scraper must not hold the loop
        super().__init__((str(endpoint.address), endpoint.port), handler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup of the address: where DNS is unreachable
        (a PoP namespace, an isolated host) it costs 5 s of start-up, for a name nobody reads."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


def _check_listeners(
    config: EdgeConfig, already_open: set[tuple[str, int, str]], *, isolate: bool
) -> tuple[EdgeConfig, dict[str, str]]:
    """Bind every new listener once, so failures surface here and not inside N workers.

    ``isolate``: leave a listener that cannot bind out (returned with why) instead of refusing the
    whole config by raising."""
    failures: dict[str, str] = {}
    for listener in config.listeners:
        if listener.endpoint in already_open:
            continue
        try:
            open_listener(listener).close()
        except ListenError as error:
            if not isolate:
                raise
            failures[listener.name] = str(error)
    if not failures:
        return config, failures
    kept = tuple(listener for listener in config.listeners if listener.name not in failures)
    return config.model_copy(update={"listeners": kept}), failures


class Supervisor:
    """Runs one PoP's data plane from a config source (a file, or the control plane's state on disk)."""

    def __init__(
        self, source: ConfigSource, config: EdgeConfig, follow: FollowerSettings | None = None
    ) -> None:
        self.source = source
        self.config = config
        self.follow = follow
        # The limit tables' bucket key: drawn once per agent, before any fork, so every worker (a
        # respawned one is forked from us too) and the follower hash alike; a reload never redraws it.
        bucket_key = os.urandom(KEY_BYTES)
        self.counters = SharedCounters(config.workers, bucket_key)
        self.rates = RateWindows(config.workers, bucket_key)
        self.workers: dict[int, tuple[int, int]] = {}  # index -> (pid, control pipe write end)
        # "tunnels"/"health"/"bgp"/"control" -> (pid, control pipe)
        self.helpers: dict[str, tuple[int, int]] = {}
        self.health_board = HealthBoard()
        self.run_dir = private_dir("run")
        # Workers report failed connects to the health process: many writers, one reader, datagrams.
        self.reports_in, self.reports_out = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.reports_out.setblocking(False)
        self.draining = False
        self._drain_workers_at: float | None = None  # when the withdrawals have had their time
        self._signals: list[int] = []
        # Children that died (or could not be forked again yet): started again by the next turn.
        self._missing_workers: set[int] = set()
        self._missing_helpers: set[str] = set()

    def _metrics_server(self) -> _MetricsServer | None:
        if self.config.metrics is None:
            return None
        # computed per scrape from the config in force (a reload swaps self.config) and the board
        config_state = ConfigStateCollector(lambda: self.config, self.health_board)
        return _MetricsServer(self.config.metrics, config_state, TunnelCollector(lambda: self.config.tunnels))

    def run(self) -> int:
        # 1. Validate and test-bind.
        self.config, failures = _check_listeners(self.config, set(), isolate=self.source.isolates_listeners)
        self.source.unbound(failures)
        check_syn_posture(self.config)
        check_tunnels(self.config)
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(handled, lambda *_: None)  # delivered through the wake-up fd
        metrics = self._metrics_server()
        # 2. Fork the helpers and the workers.
        ready_workers = self._spawn_children()
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
        while self.workers or self.helpers or (self._missing_workers or self._missing_helpers):
            try:
                for fd, _ in poller.poll(self._poll_timeout_ms()):
                    if fd == wake_read:
                        with contextlib.suppress(BlockingIOError):
                            self._signals.extend(os.read(wake_read, 64))
                    elif metrics is not None:
                        metrics.handle_request()
                self._reap()
                self._respawn_missing()
                while self._signals:
                    signum = self._signals.pop(0)
                    if signum == signal.SIGHUP and not self.draining:
                        self.reload()
                    elif signum in (signal.SIGTERM, signal.SIGINT) and not self.draining:
                        self._start_drain()  # 4. Drain.
                if self.draining:
                    drain_deadline = self._drain_step(time.monotonic(), drain_deadline)
            except Exception as error:
                survived(log, "supervisor", "next-turn", error)
                time.sleep(0.1)  # a fault that repeats every turn must not spin a core
        if metrics:
            metrics.server_close()
        log.info("edge_stopped pop=%s", self.config.pop)
        return 0

    def _spawn_children(self) -> int:
        """Fork the helpers, then the workers; returns how many workers are ready."""
        self._start_tunnels()
        self._spawn_helper("health")
        if self.config.bgp is not None:
            self._spawn_helper("bgp")
        if self.follow is not None:
            self._spawn_helper("control")
        ready = [self._spawn(index) for index in range(self.config.workers)]
        return _wait_ready(ready, timeout=_READY_TIMEOUT)

    def _start_tunnels(self) -> None:
        """Fork the tunnels helper if the config has tunnels and it does not run; wait (bounded)
        until it has brought them up. An edge without tunnels starts nothing and pays nothing."""
        if not self.config.tunnels or "tunnels" in self.helpers or "tunnels" in self._missing_helpers:
            return
        ready = self._spawn_helper("tunnels", ready=True)
        if ready is not None and not _wait_ready([ready], timeout=_TUNNELS_READY_TIMEOUT):
            log.error("tunnels_not_ready timeout=%.0fs action=continue", _TUNNELS_READY_TIMEOUT)

    def _start_drain(self) -> None:
        self.draining = True
        self._missing_workers.clear()
        self._missing_helpers.clear()
        delay = 0.0
        bgp = self.helpers.get("bgp")
        if bgp is not None and self.config.bgp is not None:
            delay = self.config.bgp.withdraw_delay
            with contextlib.suppress(ProcessLookupError):
                os.kill(bgp[0], signal.SIGUSR1)  # withdraw every VIP, keep the sessions up
        if "control" in self.helpers:
            self._signal([self.helpers["control"]], signal.SIGUSR1)  # report draining at once
        log.info(
            "drain_requested pop=%s withdraw_delay=%.1fs timeout=%.1fs",
            self.config.pop,
            delay,
            self.config.drain_timeout,
        )
        self._drain_workers_at = time.monotonic() + delay

    def _drain_step(self, now: float, deadline: float) -> float:
        """Move the drain on: withdrawals → connections → helpers; returns the connections' deadline."""
        if self._drain_workers_at is not None and now >= self._drain_workers_at:
            self._drain_workers_at = None
            log.info("drain_connections pop=%s timeout=%.1fs", self.config.pop, self.config.drain_timeout)
            self._signal(self.workers.values(), signal.SIGTERM)
            return now + self.config.drain_timeout + _GRACE_AFTER_DRAIN
        if self._drain_workers_at is None and not self.workers:
            self._signal(self.helpers.values(), signal.SIGTERM)  # the last connection is done
        if deadline and now > deadline and (self.workers or self.helpers):
            log.error("drain_overrun action=kill workers=%d helpers=%d", len(self.workers), len(self.helpers))
            self._signal([*self.workers.values(), *self.helpers.values()], signal.SIGKILL)
        return deadline

    def _poll_timeout_ms(self) -> int:
        if self._drain_workers_at is None:
            return 1000
        return max(0, min(1000, int((self._drain_workers_at - time.monotonic()) * 1000) + 1))

    def _spawn(self, index: int) -> int:
        """Fork worker ``index``; returns a pipe that becomes readable once its listeners are open."""
        control_read, control_write = os.pipe2(os.O_CLOEXEC)
        ready_read, ready_write = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # the worker

            def work() -> int:
                os.close(control_write)
                os.close(ready_read)
                self._close_siblings()
                self.reports_in.close()
                os.set_blocking(control_read, False)
                self.counters.bind_worker(index)
                self.rates.bind_worker(index)
                worker = Worker(
                    self.config,
                    index,
                    self.counters,
                    control_read,
                    self.health_board,
                    self.reports_out,
                    rates=self.rates,
                )
                os.write(ready_write, b"ready")
                os.close(ready_write)
                return worker.run()

            _child(f"worker_crashed worker={index}", work)
        os.close(control_read)
        os.close(ready_write)
        self.workers[index] = (pid, control_write)
        WORKERS.set(len(self.workers))
        return ready_read

    def _close_siblings(self) -> None:
        """In a child: close the control pipes of the other children (their EOF must mean our death)."""
        for _, other_write in [*self.workers.values(), *self.helpers.values()]:
            os.close(other_write)

    def _helper_main(self, name: str, ready: int | None) -> Callable[[int], int]:
        """What a helper process runs, given the read end of its control pipe."""
        if name == "tunnels":
            self.reports_in.close()
            self.reports_out.close()
            return lambda control: run_tunnels_helper(self.config, control, ready)
        if name == "health":
            self.reports_out.close()
            return lambda control: run_health_process(
                self.config, control, self.health_board, self.reports_in
            )
        self.reports_in.close()
        self.reports_out.close()
        if name == "control":
            follow = self.follow
            if follow is None:
                raise RuntimeError("the control helper needs --control")
            return lambda control: run_follower(
                follow, self.config, control, self.health_board, self.counters
            )
        bgp = self.config.bgp
        if bgp is None:
            raise RuntimeError("the bgp helper needs a bgp: block")
        workdir = self.run_dir / "bgp"
        return lambda control: run_announcer(self.config, bgp, control, self.health_board, workdir)

    def _spawn_helper(self, name: str, *, ready: bool = False) -> int | None:
        """Fork a helper process (``tunnels``, ``health``, ``bgp`` or ``control``) with its own
        control pipe; with ``ready``, returns a pipe that becomes readable once it is ready."""
        control_read, control_write = os.pipe2(os.O_CLOEXEC)
        ready_read, ready_write = os.pipe2(os.O_CLOEXEC) if ready else (None, None)
        pid = os.fork()
        if pid == 0:

            def work() -> int:
                os.close(control_write)
                if ready_read is not None:
                    os.close(ready_read)
                self._close_siblings()
                return self._helper_main(name, ready_write)(control_read)

            _child(f"helper_crashed helper={name}", work)
        os.close(control_read)
        if ready_write is not None:
            os.close(ready_write)
        self.helpers[name] = (pid, control_write)
        return ready_read

    def _reap_helper(self, name: str, pid: int, status: int) -> None:
        os.close(self.helpers.pop(name)[1])
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        code = os.waitstatus_to_exitcode(status)
        if self.draining:
            log.info("helper_stopped helper=%s pid=%d code=%d", name, pid, code)
            return
        self._missing_helpers.add(name)
        log.error("helper_died helper=%s pid=%d code=%d action=respawn", name, pid, code)
        HELPER_RESPAWNS.labels(name).inc()

    def _respawn_missing(self) -> None:
        """Start the children that died; one that cannot be forked (out of memory or pids) raises
        and stays missing, so the next turn tries again."""
        for name in sorted(self._missing_helpers):
            time.sleep(0.2)  # a helper that dies at start must not turn into a fork storm
            self._spawn_helper(name)
            self._missing_helpers.discard(name)
        for index in sorted(self._missing_workers):
            time.sleep(0.2)  # a worker that dies at start must not turn into a fork storm
            ready = self._spawn(index)
            self._missing_workers.discard(index)
            if _wait_ready([ready], timeout=_READY_TIMEOUT):
                log.info("worker_replaced worker=%d", index)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            helper = next((name for name, (helper_pid, _) in self.helpers.items() if helper_pid == pid), None)
            if helper is not None:
                self._reap_helper(helper, pid, status)
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
                    self._missing_workers.add(index)
                    log.error("worker_died worker=%d pid=%d code=%d action=respawn", index, pid, code)
                    RESPAWNS.inc()
            WORKERS.set(len(self.workers))

    @staticmethod
    def _signal(children: Iterable[tuple[int, int]], signum: int) -> None:
        for pid, _ in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def reload(self) -> bool:
        """Ask the source for the config; apply it only if it is entirely valid and can bind.

        Whatever goes wrong before the config is sent (a bad file, a bug) leaves the running
        config untouched; what goes wrong after it (recording it) is logged and counted."""
        try:
            config = self.source.load()
            check_tunnels(config)
            if config.workers != self.config.workers:
                log.warning(
                    "reload_workers_ignored running=%d wanted=%d (restart to change)",
                    self.config.workers,
                    config.workers,
                )
                config = config.model_copy(update={"workers": self.config.workers})
            config, failures = _check_listeners(
                config,
                {listener.endpoint for listener in self.config.listeners},
                isolate=self.source.isolates_listeners,
            )
        except Exception as error:
            if not isinstance(error, (ConfigError, OSError)):
                survived(log, "reload", "keep-previous-config", error)
                error = ConfigError(f"cannot use the config: {type(error).__name__}: {error}")
            self._rejected(str(error))
            return False
        self.config = config
        self._start_tunnels()  # the first config with tunnels forks the helper (the send below: a no-op)
        payload = config.model_dump_json().encode()
        receivers = [(f"worker={index}", write_end) for index, (_, write_end) in self.workers.items()]
        receivers += [(f"helper={name}", write_end) for name, (_, write_end) in self.helpers.items()]
        for who, control_write in receivers:
            try:
                write_message(control_write, payload)
            except OSError as error:
                log.error("reload_send_failed %s error=%r", who, error.strerror)
        try:
            # Unbound first: the follower reports as soon as it sees the promoted version, and that
            # report must already name the listeners this version could not bind.
            self.source.unbound(failures)
            self.source.applied(config)  # sent to every child: the control source promotes it
            RELOADS.labels("ok").inc()
        except Exception as error:
            survived(log, "reload", "config-runs-unrecorded", error)
        log.info("reload_applied listeners=%d", len(config.listeners))
        return True

    def _rejected(self, error: str) -> None:
        log.error("reload_rejected keeping=previous-config error=%r", error)
        try:
            RELOADS.labels("invalid").inc()
            self.source.rejected(error)
        except Exception as failure:
            survived(log, "reload", "rejection-unrecorded", failure)
