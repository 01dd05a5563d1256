"""One worker process: a bare epoll loop that accepts, connects and relays without blocking.

Theory of operation. Each worker opens its own ``SO_REUSEPORT`` socket per listener, so the
kernel spreads new connections over workers with no shared accept lock. The loop is
deliberately not asyncio: a probe on this machine class measured asyncio Streams at 0.4x and
Protocols at 0.5x the connection rate of a plain epoll loop, because a Task or Future per
connection costs more than the whole relay. Here a connection is one object with two bound
methods registered as epoll handlers, timers are a heap with lazy cancellation, and idle
timeouts are a once-a-second sweep. Metrics are plain ints folded into Prometheus on that sweep.

Lifecycle: ``run()`` → loop until drained → exit code. The supervisor talks to a worker through
a pipe (length-prefixed JSON of the whole validated config: reload is "apply this") and signals
(SIGTERM: drain). A closed control pipe means the supervisor died: drain and exit, so a worker
never outlives its agent.

Failing safe. A handler that raises (a bug, an input nobody foresaw) costs only the connection it
belongs to: the loop closes that one with a reset, logs and counts it (``internal_errors``), and
goes on with the rest of the batch. The guard is one ``try`` around each batch, resumed after the
event that raised, not one per event.
"""

import contextlib
import errno
import functools
import heapq
import logging
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable

from anycastlb.dataplane.admission import Admission
from anycastlb.dataplane.backend_set import BackendSet, BackendTarget
from anycastlb.dataplane.connection import RELAY, Connection
from anycastlb.dataplane.flow import Flow
from anycastlb.dataplane.limits import SharedCounters
from anycastlb.dataplane.metrics import ListenerStats
from anycastlb.dataplane.pipes import PipePool
from anycastlb.dataplane.rate_limits import RateWindows
from anycastlb.dataplane.refusal_log import RefusalLog
from anycastlb.dataplane.sockets import ListenError, open_listener
from anycastlb.internal_errors import survived
from anycastlb.model.config import EdgeConfig, Listener
from anycastlb.wire.framing import ConfigPipeReader
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import HealthView, ListenerHealth, PassiveReport

__all__ = ["ListenerRuntime", "Worker"]

log = logging.getLogger("anycastlb.dataplane")

_ACCEPT_BATCH = 64
_COPY_BUFFER = 65536  # relay: auto treats a flow that fills this in one read as bulk
_SWEEP_SECONDS = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_LINGER_RESET = struct.pack("ii", 1, 0)  # close() then sends RST: a refusal is never a clean end


class ListenerRuntime:
    """A listener as one worker runs it: its socket, backends, stats and limits."""

    __slots__ = ("admission", "backends", "config", "destination", "family", "health", "sock", "stats")

    def __init__(
        self,
        config: Listener,
        sock: socket.socket,
        stats: ListenerStats,
        health: ListenerHealth | None,
        admission: Admission,
    ) -> None:
        self.sock = sock
        self.stats = stats
        self.family = sock.family
        self.config = config
        self.health = health
        self.backends = BackendSet(config, health=health)
        # A VIP bound to a specific address is the PROXY header's destination: no getsockname() needed.
        self.destination = (str(config.address), config.port) if not config.address.is_unspecified else None
        self.admission = admission

    def update(self, config: Listener) -> None:
        """Apply a new config for the same endpoint; open connections keep their backend."""
        if config.backlog != self.config.backlog:
            self.sock.listen(config.backlog)
        self.backends = BackendSet(config, previous=self.backends, health=self.health)
        self.admission = self.admission.updated(config)
        self.config = config

    def apply_health(self, health: ListenerHealth | None, reports_through: float) -> None:
        """Take a new health view; only a weight change builds a new Maglev table."""
        if health is None:
            if self.health is not None:
                self.backends = BackendSet(self.config, previous=self.backends)
        elif self.health is not None and health.weights == self.health.weights:
            self.backends.apply_view(health, reports_through)
        else:
            self.backends = BackendSet(self.config, previous=self.backends, health=health)
            self.backends.apply_view(health, reports_through)
        self.health = health


class Worker:
    """The event loop of one worker process."""

    def __init__(
        self,
        config: EdgeConfig,
        index: int,
        counters: SharedCounters,
        control_fd: int,
        health_board: HealthBoard | None = None,
        health_reports: socket.socket | None = None,
        rates: RateWindows | None = None,
    ) -> None:
        self.index = index
        self.health_board = health_board
        self.health_reports = health_reports
        self.health_view: HealthView | None = None
        self._health_generation = 0
        self.counters = counters
        self.rates = rates if rates is not None else RateWindows(config.workers, counters.key)
        self.refusals = RefusalLog()
        self.control_fd = control_fd
        self.now = time.monotonic()
        self.epoll = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self._stale: set[int] = set()
        self.timers: list[tuple[float, int, Connection]] = []
        self._again: list[tuple[Connection, Flow]] = []
        self._timer_seq = 0
        self.connections: set[Connection] = set()
        self.accepting: Connection | None = None  # the one a listener handler is starting
        self.listeners: dict[tuple[str, int, str], ListenerRuntime] = {}
        self.stats: dict[str, ListenerStats] = {}
        # relay: splice = always splice; copy = never; auto = copy first, splice once a flow is bulk.
        can_splice = hasattr(os, "splice")
        self.relay = config.relay if can_splice else "copy"
        self.scratch = memoryview(bytearray(_COPY_BUFFER if self.relay == "auto" else config.pipe_size))
        self.pipes = PipePool(config.pipe_size)
        self.config = config
        self._conn_prefix = int.from_bytes(os.urandom(3), "big") << 40 | (index & 0xFF) << 32
        self._conn_seq = 0
        self._control = ConfigPipeReader(control_fd)
        self._draining_until: float | None = None
        self._next_sweep = self.now + _SWEEP_SECONDS
        self._paused: list[ListenerRuntime] = []
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_fd = wake_read
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, lambda *_: None)  # delivered through the wake-up fd
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the supervisor, which drains us
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.register(wake_read, select.EPOLLIN, self._on_signal)
        self.register(control_fd, select.EPOLLIN, self._on_control)
        self.read_health()
        self.apply(config)

    # ---- epoll bookkeeping used by connections -------------------------------------------------

    def register(self, fd: int, mask: int, handler: Callable[[int], None]) -> None:
        self.epoll.register(fd, mask)
        self.handlers[fd] = handler

    def pump_later(self, connection: Connection, flow: Flow) -> None:
        """A flow used up its turn with bytes still waiting: edge-triggered epoll will not repeat
        itself, so the loop pumps it again right after this round of events."""
        self._again.append((connection, flow))

    def unregister(self, fd: int) -> None:
        self.epoll.unregister(fd)
        self.forget(fd)

    def forget(self, fd: int) -> None:
        """Drop the handler of an fd about to be closed; later events in this batch are stale."""
        if self.handlers.pop(fd, None) is not None:
            self._stale.add(fd)

    def add_timer(self, deadline: float, connection: Connection) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (deadline, self._timer_seq, connection))

    # ---- configuration ---------------------------------------------------------------------------

    def apply(self, config: EdgeConfig) -> None:
        """Make the worker serve ``config``: keep unchanged sockets, open new, close removed ones."""
        self.config = config
        wanted = {listener.endpoint: listener for listener in config.listeners}
        for endpoint, runtime in list(self.listeners.items()):
            if endpoint not in wanted:
                self.unregister(runtime.sock.fileno())
                runtime.sock.close()
                del self.listeners[endpoint]
                log.info("listener_closed listener=%s worker=%d", runtime.config.name, self.index)
        for endpoint, listener in wanted.items():
            existing = self.listeners.get(endpoint)
            if existing is not None:
                existing.stats = self._stats_for(listener.name)
                existing.update(listener)
                continue
            if self._draining_until is not None:
                continue
            try:
                sock = open_listener(listener)
            except ListenError as error:
                log.error(
                    "listener_failed listener=%s worker=%d error=%r", listener.name, self.index, str(error)
                )
                continue
            view = self.health_view
            health = view.listeners.get(listener.name) if view is not None else None
            admission = Admission(listener, self.counters, self.rates)
            runtime = ListenerRuntime(listener, sock, self._stats_for(listener.name), health, admission)
            self.listeners[endpoint] = runtime
            self.register(sock.fileno(), select.EPOLLIN, functools.partial(self._on_listener_event, runtime))
            log.info(
                "listener_open listener=%s address=%s port=%d worker=%d",
                listener.name,
                listener.address,
                listener.port,
                self.index,
            )

    def _stats_for(self, name: str) -> ListenerStats:
        stats = self.stats.get(name)
        if stats is None:
            stats = self.stats[name] = ListenerStats(name)
        return stats

    def _on_control(self, _events: int) -> None:
        messages = self._control.read()
        if messages is None:
            log.warning("supervisor_gone worker=%d action=drain", self.index)
            self.unregister(self.control_fd)
            self.start_drain()
            return
        for message in messages:
            self.apply(EdgeConfig.model_validate_json(message))
            log.info("config_applied worker=%d listeners=%d", self.index, len(self.config.listeners))

    def _on_signal(self, _events: int) -> None:
        with contextlib.suppress(BlockingIOError):
            signals = os.read(self._wake_fd, 64)
            if signal.SIGTERM in signals:
                self.start_drain()

    # ---- health ---------------------------------------------------------------------------------

    def read_health(self) -> None:
        """Take the health process's latest view from the board, if it changed."""
        board = self.health_board
        if board is None:
            return
        snapshot = board.read()
        if snapshot is None:
            return  # being written right now: the next loop iteration sees the generation again
        self._health_generation, payload = snapshot
        try:
            view = HealthView.decode(payload)
        except (ValueError, KeyError, TypeError) as error:
            log.error("health_view_invalid worker=%d error=%r", self.index, str(error))
            return
        self.health_view = view
        for runtime in self.listeners.values():
            runtime.apply_health(view.listeners.get(runtime.config.name), view.reports_through)

    def backend_failed(self, runtime: ListenerRuntime, target: BackendTarget, reason: str) -> None:
        """A client connect failed: tell the health process, and stop using the backend here at once."""
        passive_fall = runtime.config.health.passive_fall
        if passive_fall == 0:
            return
        if passive_fall == 1:
            runtime.backends.eject_locally(target, time.monotonic())
        if self.health_reports is not None:
            report = PassiveReport(runtime.config.name, target.key, reason).encode()
            try:
                self.health_reports.send(report)
            except OSError:
                pass  # the health process is busy or being replaced; its probes will see it too

    # ---- accepting ----------------------------------------------------------------------------------

    def _on_listener_event(self, runtime: ListenerRuntime, _events: int) -> None:
        self._accept(runtime)

    def _accept(self, runtime: ListenerRuntime) -> None:
        listen_sock = runtime.sock
        stats = runtime.stats
        admit = runtime.admission.admit
        now = self.now
        for _ in range(_ACCEPT_BATCH):
            try:
                client, peer = listen_sock.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in _OUT_OF_RESOURCES:
                    self._pause(runtime, error)
                return
            refused, source_bucket = admit(peer[0], now)
            if refused:
                self._refuse(runtime, client, peer[0], refused)
                continue
            client.setblocking(False)
            stats.accepted += 1
            stats.active += 1
            self._conn_seq += 1
            connection = Connection(
                self, runtime, client, peer, source_bucket, self._conn_prefix | self._conn_seq
            )
            self.connections.add(connection)
            self.accepting = connection
            connection.start()
            self.accepting = None

    def _refuse(self, runtime: ListenerRuntime, client: socket.socket, source: str, reason: str) -> None:
        """Reset a connection a limit refused: no backend was chosen or contacted for it."""
        runtime.stats.reject(reason)
        self.refusals.note(runtime.config.name, reason, source, self.now)
        with contextlib.suppress(OSError):  # the client may have reset it already
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        client.close()

    def _pause(self, runtime: ListenerRuntime, error: OSError) -> None:
        """Out of file descriptors or memory: stop accepting for a moment instead of spinning."""
        log.error(
            "accept_paused listener=%s worker=%d error=%r", runtime.config.name, self.index, error.strerror
        )
        with contextlib.suppress(OSError):
            self.epoll.modify(runtime.sock.fileno(), 0)
        self._paused.append(runtime)

    def connection_closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        runtime = connection.listener
        runtime.stats.active -= 1
        runtime.admission.release(connection.source_bucket)

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start_drain(self) -> None:
        """Stop accepting (taking what is already queued first) and let open connections finish."""
        if self._draining_until is not None:
            return
        self._draining_until = self.now + self.config.drain_timeout
        for runtime in self.listeners.values():
            self._accept(runtime)  # a closed SO_REUSEPORT socket resets its queue: empty it first
            self.unregister(runtime.sock.fileno())
            runtime.sock.close()
        self.listeners.clear()
        log.info("drain_started worker=%d open_connections=%d", self.index, len(self.connections))

    def _sweep(self) -> None:
        """Once a second: idle timeouts, byte counts, metrics, paused listeners."""
        now = self.now
        for connection in list(self.connections):
            connection.harvest()
            idle_timeout = connection.listener.config.idle_timeout
            if connection.state == RELAY and now - connection.last_active > idle_timeout:
                connection.listener.stats.idle_closed += 1
                connection.close()
        for runtime in self._paused:
            with contextlib.suppress(OSError):
                self.epoll.modify(runtime.sock.fileno(), select.EPOLLIN)
        self._paused.clear()
        for line in self.refusals.lines(now):
            log.warning("%s worker=%d", line, self.index)
        self.flush_stats()

    def flush_stats(self) -> None:
        for stats in self.stats.values():
            stats.flush()
        for runtime in self.listeners.values():
            for target in runtime.backends.targets:
                target.stats.flush()

    def _pump_again(self) -> None:
        again, self._again = self._again, []
        batch = iter(again)
        connection: Connection | None = None
        while True:
            try:
                for connection, flow in batch:
                    if connection.state == RELAY and flow in (connection.c2b, connection.b2c):
                        connection.pump(flow)
            except Exception as error:  # one connection's fault: see "Failing safe"
                self._failed(connection, error)
            else:
                return

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        """Call each event's handler; a handler that raises costs only its own connection."""
        handlers = self.handlers
        stale = self._stale
        stale.clear()
        batch = iter(events)
        handler: Callable[[int], None] | None = None
        while True:
            try:
                for fd, mask in batch:
                    if fd in stale:
                        continue  # the fd was closed (and maybe reused) earlier in this batch
                    handler = handlers.get(fd)
                    if handler is not None:
                        handler(mask)
            except Exception as error:  # one connection's fault: see "Failing safe"
                self._failed(getattr(handler, "__self__", handler), error)
            else:
                return

    def _expire(self, now: float) -> None:
        timers = self.timers
        connection: Connection | None = None
        while True:
            try:
                while timers and timers[0][0] <= now:
                    expired, _, connection = heapq.heappop(timers)
                    connection.on_timer(expired)
            except Exception as error:  # one connection's fault: see "Failing safe"
                self._failed(connection, error)
            else:
                return

    def _failed(self, culprit: object, error: Exception) -> None:
        """A handler raised: drop the one connection it belongs to; the loop and the rest go on."""
        if isinstance(culprit, functools.partial):  # a listener's: the connection it was starting
            culprit, self.accepting = self.accepting, None
        connection = culprit if isinstance(culprit, Connection) else None
        survived(log, "worker", "reset-connection" if connection is not None else "continue", error)
        if connection is None:
            return
        try:
            connection.close(reset=True)
        except Exception:
            for sock in (connection.client, connection.backend):
                if sock is not None:
                    with contextlib.suppress(Exception):
                        self.forget(sock.fileno())
                        sock.close()
            if connection in self.connections:
                with contextlib.suppress(Exception):
                    self.connection_closed(connection)

    def run(self) -> int:
        """Serve until drained; returns the process exit code."""
        poll = self.epoll.poll
        board = self.health_board
        timers = self.timers
        while True:
            if self._draining_until is not None and (
                not self.connections or self.now >= self._draining_until
            ):
                break
            deadline = self._next_sweep
            if timers and timers[0][0] < deadline:
                deadline = timers[0][0]
            events = poll(0.0 if self._again else max(0.0, deadline - self.now))
            self.now = now = time.monotonic()
            if board is not None and board.generation() != self._health_generation:
                try:
                    self.read_health()  # before this batch's accepts, so they see the new verdicts
                except Exception as error:
                    survived(log, "worker", "keep-health-view", error)
            self._dispatch(events)
            if self._again:
                self._pump_again()
            if timers and timers[0][0] <= now:
                self._expire(now)
            if now >= self._next_sweep:
                self._next_sweep = now + _SWEEP_SECONDS
                try:
                    self._sweep()
                except Exception as error:
                    survived(log, "worker", "next-sweep", error)
        left = len(self.connections)
        for connection in list(self.connections):
            connection.close(reset=True)
        self.flush_stats()
        log.info("worker_exit worker=%d connections_cut=%d", self.index, left)
        return 0
