"""One worker process: the compiled core relays, this Python shell runs everything around it.

Theory of operation. Each worker opens its own ``SO_REUSEPORT`` socket per listener, so the kernel
spreads new connections over workers with no shared accept lock. Every connection lives in the
compiled core (``_core.pyx``): accept, limits, first bytes, Maglev pick, connect, PROXY header,
relay and close happen there without the interpreter. This shell decides *what* the core serves and
publishes what it counted:

- configuration: the supervisor sends the whole validated config down a pipe (reload is "apply
  this"); each listener becomes a snapshot the core swaps in for its socket, while open connections
  keep the one they started with;
- sharing: listeners that name hostnames share their endpoint's one socket as a group
  (``sni_group.py``); the core routes each connection to a member by its SNI and the member's
  own snapshot serves it from there, so each member keeps its backends, limits and counters;
- health: the health process's board (shared memory) is read when its generation moves (the core
  returns when it does); a new weight builds a new Maglev table, anything else only flips the
  backends' down flags in the core;
- once a second: idle timeouts and byte counts (the core's sweep), and the core's counters folded
  into Prometheus, with the refused sources logged (``refusal_log``);
- drain: SIGTERM or a closed control pipe stops accepting and lets open connections finish until
  ``drain_timeout``, then resets the rest; a worker never outlives its agent.

The core returns to this loop only when a Python fd is readable, the board moved, or the sweep is
due: a few times a second, never per connection. The rules a connection follows, and why, are in
``_core.pyx`` and docs/dataplane.md; the integration tests that pinned the Python per-connection
worker it replaced (issue 12) run against it unchanged.

Failing safe. The core handles every socket error itself (a reset of the other side); a failure in
this shell (a config nobody foresaw, a board it cannot decode) is logged and counted
(``internal_errors``) and the worker goes on with what it had.
"""

import contextlib
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from types import SimpleNamespace

from anycastlb.dataplane.admission import Admission
from anycastlb.dataplane.backend_set import BackendSet
from anycastlb.dataplane.limits import SharedCounters
from anycastlb.dataplane.metrics import BackendStats, ListenerStats
from anycastlb.dataplane.native import CompiledMaglev, Core, core_module
from anycastlb.dataplane.rate_limits import RateWindows
from anycastlb.dataplane.refusal_log import RefusalLog
from anycastlb.dataplane.sni_group import default_member, group_listener, is_shared, routes
from anycastlb.dataplane.sockets import ListenError, open_listener
from anycastlb.internal_errors import INTERNAL_ERRORS, survived
from anycastlb.model.config import EdgeConfig, Listener
from anycastlb.wire.framing import ConfigPipeReader
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import HealthView, ListenerHealth, PassiveReport

__all__ = ["ListenerRuntime", "Worker"]

log = logging.getLogger("anycastlb.dataplane")

_SWEEP_SECONDS = 1.0
_C = SimpleNamespace(**core_module.LAYOUT)  # where each counter sits in the core's rows
_REJECT_REASONS: tuple[str, ...] = core_module.REJECT_REASONS
_CONNECT_ERRORS: tuple[str, ...] = core_module.CONNECT_ERRORS
_RELAY_MODES = {"copy": _C.RELAY_COPY, "splice": _C.RELAY_SPLICE, "auto": _C.RELAY_AUTO}


def _capacity() -> int:
    """Connection slots: one per two file descriptors (a client and its backend), at least 1,024."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(1024, min(soft, 1 << 22) // 2 + 64)


class ListenerRuntime:
    """A listener as one worker runs it: its socket, backends, stats rows and limits. A sharing
    group's socket is one too (``config`` from ``group_listener``, no backends), with its
    ``members`` in config order (each with the same socket)."""

    __slots__ = ("admission", "backends", "config", "health", "members", "row", "sock")

    def __init__(
        self,
        config: Listener,
        sock: socket.socket,
        row: int,
        admission: Admission,
        health: ListenerHealth | None,
    ) -> None:
        self.config = config
        self.sock = sock
        self.row = row
        self.admission = admission
        self.health = health
        self.backends = BackendSet(config, health=health)
        self.members: tuple[ListenerRuntime, ...] = ()

    def reported_down(self) -> bytes:
        """Per backend (Maglev index order): 1 if the health process says it is down."""
        down = self.health.down if self.health is not None else frozenset()
        return bytes(1 if target.key in down else 0 for target in self.backends.targets)


class Worker:
    """The Python side of one worker process."""

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
        self.health_view: HealthView | None = None
        self.counters = counters
        self.rates = rates if rates is not None else RateWindows(config.workers, counters.key)
        self.refusals = RefusalLog()
        self.control_fd = control_fd
        self.config = config
        relay = config.relay if hasattr(os, "splice") else "copy"
        prefix = int.from_bytes(os.urandom(3), "big") << 40 | (index & 0xFF) << 32
        reports_fd = health_reports.fileno() if health_reports is not None else -1
        self._reports = health_reports  # keeps the fd open for the core
        self.core = Core(_RELAY_MODES[relay], config.pipe_size, prefix, reports_fd, _capacity())
        self.listeners: dict[tuple[str, int, str], ListenerRuntime] = {}
        self.stats: dict[str, ListenerStats] = {}
        self._rows: dict[str, int] = {}
        self._targets: dict[tuple[str, str], tuple[int, BackendStats]] = {}
        self._control = ConfigPipeReader(control_fd)
        self._draining_until: float | None = None
        self.now = time.monotonic()
        self._next_sweep = self.now + _SWEEP_SECONDS
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_fd = wake_read
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, lambda *_: None)  # delivered through the wake-up fd
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the supervisor, which drains us
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.core.watch_python_fd(wake_read)
        self.core.watch_python_fd(control_fd)
        if health_board is not None:
            self.core.watch_generation(health_board.memory, 0)
        self.read_health()
        self.apply(config)

    # ---- configuration ---------------------------------------------------------------------------

    def apply(self, config: EdgeConfig) -> None:
        """Make the worker serve ``config``: keep unchanged sockets, open new, close removed ones."""
        self.config = config
        wanted: dict[tuple[str, int, str], list[Listener]] = {}
        for listener in config.listeners:
            wanted.setdefault(listener.endpoint, []).append(listener)
        for endpoint, runtime in list(self.listeners.items()):
            if endpoint not in wanted:
                self.core.remove(runtime.sock)
                runtime.sock.close()
                del self.listeners[endpoint]
                log.info("listener_closed listener=%s worker=%d", runtime.config.name, self.index)
        for endpoint, listeners in wanted.items():
            try:
                if is_shared(listeners):
                    self._apply_group(endpoint, listeners)
                else:
                    self._apply_listener(endpoint, listeners[0])
            except Exception as error:  # one listener's bug must not cost the others: see "Failing safe"
                survived(log, "worker", "skip-listener", error)

    def _apply_listener(self, endpoint: tuple[str, int, str], listener: Listener) -> None:
        existing = self.listeners.get(endpoint)
        if existing is not None:
            if listener.backlog != existing.config.backlog:
                existing.sock.listen(listener.backlog)
            if existing.members:  # a group became a plain listener: keep the member's state, if any
                kept = {member.config.name: member for member in existing.members}.get(listener.name)
                replacement = kept if kept is not None else self._runtime(listener, existing.sock)
                self.listeners[endpoint] = existing = replacement
            self._update(existing, listener)
            self._install(existing)
            return
        runtime = self._open(listener, lambda sock: self._installed(self._runtime(listener, sock)))
        if runtime is not None:
            self.listeners[endpoint] = runtime

    def _apply_group(self, endpoint: tuple[str, int, str], listeners: list[Listener]) -> None:
        """A sharing group: one socket, the group's snapshot on it, a runtime per member."""
        config = group_listener(listeners)
        existing = self.listeners.get(endpoint)
        if existing is not None:
            if config.backlog != existing.config.backlog:
                existing.sock.listen(config.backlog)
            if existing.members:
                group = existing
                previous = {member.config.name: member for member in existing.members}
                self._update(group, config)
            else:  # a plain listener became a group: it goes on as a member
                previous = {existing.config.name: existing}
                group = self.listeners[endpoint] = self._runtime(config, existing.sock)
            members = []
            for listener in listeners:
                member = previous.get(listener.name)
                if member is None:
                    member = self._runtime(listener, group.sock)
                    self._log_sharing(listener.name, config.name)
                else:
                    self._update(member, listener)
                members.append(member)
            group.members = tuple(members)
            self._install(group)
            return

        def build(sock: socket.socket) -> ListenerRuntime:
            runtime = self._runtime(config, sock)
            runtime.members = tuple(self._runtime(listener, sock) for listener in listeners)
            return self._installed(runtime)

        runtime = self._open(config, build)
        if runtime is not None:
            self.listeners[endpoint] = runtime
            for member in runtime.members:
                self._log_sharing(member.config.name, config.name)

    def _log_sharing(self, name: str, group: str) -> None:
        log.info("listener_shares listener=%s group=%s worker=%d", name, group, self.index)

    def _runtime(self, listener: Listener, sock: socket.socket) -> ListenerRuntime:
        view = self.health_view
        health = view.listeners.get(listener.name) if view is not None else None
        admission = Admission(listener, self.counters, self.rates)
        return ListenerRuntime(listener, sock, self._row(listener.name), admission, health)

    def _installed(self, runtime: ListenerRuntime) -> ListenerRuntime:
        self._install(runtime)
        return runtime

    def _update(self, runtime: ListenerRuntime, listener: Listener) -> None:
        """A reloaded config for a runtime that keeps its socket (and its admission's bucket)."""
        view = self.health_view
        health = view.listeners.get(listener.name) if view is not None else None
        runtime.backends = BackendSet(listener, previous=runtime.backends, health=health)
        runtime.admission = runtime.admission.updated(listener)
        runtime.row = self._row(listener.name)
        runtime.config = listener
        runtime.health = health

    def _open(
        self, listener: Listener, build: Callable[[socket.socket], ListenerRuntime]
    ) -> ListenerRuntime | None:
        """Open the endpoint's socket and build its runtime on it (closing it again on failure)."""
        if self._draining_until is not None:
            return None
        try:
            sock = open_listener(listener)
        except ListenError as error:
            log.error("listener_failed listener=%s worker=%d error=%r", listener.name, self.index, str(error))
            return None
        try:
            runtime = build(sock)
        except BaseException:
            sock.close()  # a socket nobody accepts on would hold its share of SO_REUSEPORT connections
            raise
        log.info(
            "listener_open listener=%s address=%s port=%d worker=%d",
            listener.name,
            listener.address,
            listener.port,
            self.index,
        )
        return runtime

    def _install(self, runtime: ListenerRuntime) -> None:
        """Hand the core a new snapshot of the listener (config, backends, table, health); of a
        group, a new snapshot of the group and of every member."""
        if not runtime.members:
            self.core.install(
                runtime.sock, runtime.row, runtime.config, runtime.admission, *self._parts(runtime)
            )
            return
        members = [
            (member.row, member.config, member.admission, *self._parts(member)) for member in runtime.members
        ]
        configs = [member.config for member in runtime.members]
        self.core.install_group(
            runtime.sock,
            runtime.row,
            runtime.config,
            runtime.admission,
            members,
            routes(configs),
            default_member(configs),
        )

    def _parts(
        self, runtime: ListenerRuntime
    ) -> tuple[CompiledMaglev, list[tuple[str, int, int, bytes]], bytes]:
        name = runtime.config.name
        backends = []
        for target in runtime.backends.targets:
            row, _ = self._target(name, target.key, target.stats)
            prefix = PassiveReport(name, target.key, "").encode()
            backends.append((target.sockaddr[0], target.sockaddr[1], row, prefix))
        return CompiledMaglev(runtime.backends.table), backends, runtime.reported_down()

    def _row(self, name: str) -> int:
        row = self._rows.get(name)
        if row is None:
            row = len(self._rows)
            self.core.ensure_rows(row + 1, max(1, len(self._targets)))
            self._rows[name] = row
            self.stats[name] = ListenerStats(name)
        return row

    def _target(self, listener: str, key: str, stats: BackendStats) -> tuple[int, BackendStats]:
        found = self._targets.get((listener, key))
        if found is None:
            self.core.ensure_rows(max(1, len(self._rows)), len(self._targets) + 1)
            found = self._targets[(listener, key)] = (len(self._targets), stats)
        return found

    def _on_control(self) -> None:
        messages = self._control.read()
        if messages is None:
            log.warning("supervisor_gone worker=%d action=drain", self.index)
            self.core.unwatch_python_fd(self.control_fd)
            self.start_drain()
            return
        for message in messages:
            self.apply(EdgeConfig.model_validate_json(message))
            log.info("config_applied worker=%d listeners=%d", self.index, len(self.config.listeners))

    def _on_signal(self) -> None:
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
            return  # being written right now: the core returns again while the generation is odd
        generation, payload = snapshot
        self.core.seen(generation)
        try:
            view = HealthView.decode(payload)
        except (ValueError, KeyError, TypeError) as error:
            log.error("health_view_invalid worker=%d error=%r", self.index, str(error))
            return
        self.health_view = view
        for runtime in self.listeners.values():
            try:
                self._apply_health(runtime, view)
            except Exception as error:  # see "Failing safe"
                survived(log, "worker", "skip-listener-health", error)

    def _apply_health(self, runtime: ListenerRuntime, view: HealthView) -> None:
        """New verdicts for a listener or a group's members: a new weight (or health appearing or
        going) builds a new table, so a new snapshot; anything else only flips down flags."""
        rebuild = False
        members = runtime.members or (runtime,)
        flips: list[tuple[int, ListenerRuntime]] = []
        for index, member in enumerate(members):
            health = view.listeners.get(member.config.name)
            previous = member.health
            member.health = health
            if (health is None) != (previous is None) or (
                health is not None and previous is not None and health.weights != previous.weights
            ):
                member.backends = BackendSet(member.config, previous=member.backends, health=health)
                rebuild = True
            else:
                flips.append((index if runtime.members else -1, member))
        if rebuild:
            self._install(runtime)
            return
        for index, member in flips:
            self.core.apply_health(member.sock, member.reported_down(), view.reports_through, index)

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start_drain(self) -> None:
        """Stop accepting (taking what is already queued first) and let open connections finish."""
        if self._draining_until is not None:
            return
        self._draining_until = self.now + self.config.drain_timeout
        for runtime in self.listeners.values():
            self.core.accept_queued(runtime.sock)  # a closed SO_REUSEPORT socket resets its queue
            self.core.remove(runtime.sock)
            runtime.sock.close()
        self.listeners.clear()
        log.info("drain_started worker=%d open_connections=%d", self.index, self.core.open_connections)

    def _sweep(self) -> None:
        """Once a second: idle timeouts, byte counts, metrics, paused listeners, refusal lines."""
        self.core.sweep(self.now)
        self.flush_stats()
        for line in self.refusals.lines(self.now):
            log.warning("%s worker=%d", line, self.index)

    def flush_stats(self) -> None:
        """Fold the core's counters into the Prometheus metrics (multiprocess files)."""
        core, c = self.core, _C
        reasons = _REJECT_REASONS
        for name, row in self._rows.items():
            values = core.take_listener_counters(row)
            stats = self.stats[name]
            stats.accepted += values[c.L_ACCEPTED]
            stats.active = values[c.L_ACTIVE]
            stats.bytes_in += values[c.L_BYTES_IN]
            stats.bytes_out += values[c.L_BYTES_OUT]
            stats.retries += values[c.L_RETRIES]
            stats.idle_closed += values[c.L_IDLE_CLOSED]
            for index, reason in enumerate(reasons):
                count = values[c.L_REJECTED + index]
                if count:
                    stats.rejected[reason] = stats.rejected.get(reason, 0) + count
                    if index < 4:  # the admission's refusals, logged with their last source
                        source = core.last_refused_source(row, index)
                        self.refusals.note_many(name, reason, count, source, self.now)
            stats.flush()
        errors = _CONNECT_ERRORS
        buckets = slice(c.T_BUCKETS, c.T_BUCKETS + 15)
        for row, stats_of_target in self._targets.values():
            values = core.take_target_counters(row)
            target = stats_of_target
            target.connections += values[c.T_CONNECTIONS]
            target.active = values[c.T_ACTIVE]
            for index, reason in enumerate(errors):
                count = values[c.T_ERRORS + index]
                if count:
                    target.connect_errors[reason] = target.connect_errors.get(reason, 0) + count
            counts = values[buckets]
            if any(counts):
                target.connect_counts = [a + b for a, b in zip(target.connect_counts, counts, strict=True)]
                target.connect_total += values[c.T_SUM_NS] / 1e9
            target.flush()
        if core.internal_errors:
            INTERNAL_ERRORS.labels("worker").inc(core.internal_errors)
            core.internal_errors = 0

    def run(self) -> int:
        """Serve until drained; returns the process exit code."""
        core = self.core
        board = self.health_board
        while True:
            if self._draining_until is not None and (
                not core.open_connections or self.now >= self._draining_until
            ):
                break
            until = self._next_sweep
            if self._draining_until is not None:
                until = min(until, self._draining_until)
            ready = core.run(until)
            self.now = time.monotonic()
            try:
                for fd in ready:
                    if fd == self._wake_fd:
                        self._on_signal()
                    elif fd == self.control_fd:
                        self._on_control()
                if board is not None and board.generation() != self._seen_generation():
                    self.read_health()
            except Exception as error:  # a bad config or view must not end the worker
                survived(log, "worker", "keep-state", error)
            if self.now >= self._next_sweep:
                self._next_sweep = self.now + _SWEEP_SECONDS
                try:
                    self._sweep()
                except Exception as error:
                    survived(log, "worker", "next-sweep", error)
        left = core.close_all()
        self.flush_stats()
        log.info("worker_exit worker=%d connections_cut=%d", self.index, left)
        return 0

    def _seen_generation(self) -> int:
        return int(self.core.seen_generation)
