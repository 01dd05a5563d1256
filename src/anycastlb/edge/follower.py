"""The follower: a helper process that keeps the edge on the control plane's desired state.

Forked by the supervisor in ``--control`` mode, like the health and bgp helpers. Two tasks:

- **watch**: long-polls ``GET {url}/v1/pops/{pop}/desired?watch=1&since=V&timeout=30``. A state
  with a newer version is validated (the model, and that the edge can build a config from it),
  written to ``pending.json`` and the supervisor gets SIGHUP; the supervisor decides, and promotes
  it to ``last-known-good.json`` or writes ``rejected.json`` (see :mod:`state_store`). A failure
  (refused, timeout, 5xx, bad JSON) is logged in one line and retried after 0.2 s doubling to
  5 s; a refused token or an unknown PoP after 30 s. The follower never stops the edge, and the
  supervisor never waits for it: while the control plane is away the edge serves what it runs.
- **report**: after each version the supervisor applied or refused, within 0.5 s of a new health
  view (a backend went down or up: the status page shows it within seconds), and every 5 s, ``PUT
  {url}/v1/pops/{pop}/status`` with a :class:`PopStatusReport` (:mod:`pop_status`). It carries
  the traffic counters of every listener, cumulative since the counter epoch began
  (:mod:`usage_counters`): a failed report loses nothing, the next carries the totals. At SIGTERM
  (sent once the workers are gone, so their last counts are in) one last report is sent.

Failing safe: a state the edge cannot turn into a config, even by a bug (an exception that is
not a ConfigError), is refused like an invalid one and reported; any other exception in a watch or
report turn is logged and counted (``internal_errors``) and the turn is retried after the backoff,
so neither loop stops silently.

Signals: SIGUSR1 = the edge drains (reported at once); SIGTERM = stop. A closed control pipe means
the supervisor died: stop.
"""

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import ValidationError

from anycastlb.dataplane.limits import SharedCounters, listener_key
from anycastlb.edge.bgp_sessions import bgp_sessions
from anycastlb.edge.control_metrics import (
    APPLIED_VERSION,
    CONNECTED,
    DESIRED_VERSION,
    LAST_SUCCESS,
    LAST_SYNC,
    WATCH_ERRORS,
)
from anycastlb.edge.desired_listeners import ListenerOrigin, edge_config_for, listener_origins
from anycastlb.edge.pop_status import Refusal, pop_status
from anycastlb.edge.state_store import StateStore
from anycastlb.edge.usage_counters import counter_epoch, read_listener_counts, usage_report
from anycastlb.internal_errors import survived
from anycastlb.model.config import ConfigError, EdgeConfig
from anycastlb.model.desired import PopDesiredState
from anycastlb.model.duration import STORED_SECONDS
from anycastlb.model.tunnel import TunnelInterface
from anycastlb.model.usage import UsageReport
from anycastlb.wire.framing import ConfigPipeReader
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import HealthView

__all__ = ["FetchError", "Follower", "FollowerSettings", "run_follower"]

log = logging.getLogger("anycastlb.control")

_BACKOFF_FIRST, _BACKOFF_MAX, _BACKOFF_REFUSED = 0.2, 5.0, 30.0
_REPORT_EVERY = 5.0
# How often the reporter looks for a new health view on the board (reading its generation costs
# nothing); also the shortest gap between two reports while backends flap.
_BOARD_POLL = 0.5
_OUTCOME_WAIT, _OUTCOME_POLL = 10.0, 0.005
_QUIET_REPEATS = 60.0  # the same failure again is logged at most this often
_LAST_REPORT_WAIT = 5.0  # seconds the last report at SIGTERM may take


@dataclass(frozen=True, slots=True)
class FollowerSettings:
    url: str  # without the trailing slash
    pop: str
    token: str = field(repr=False)
    # The supervisor's own store, not a fresh one on the same directory: the follower is forked
    # after the supervisor read the files, so it inherits what was read (and what was already
    # logged as corrupt) instead of logging a corrupt last-known-good a second time.
    store: StateStore
    watch_timeout: int = 30
    # base.yaml's own tunnels: a state is checked against these, not against the running config's,
    # which also holds the interfaces of the state running now (each new state would clash with them)
    base_tunnels: tuple[TunnelInterface, ...] = ()


class FetchError(Exception):
    """A watch that did not yield a state; ``reason`` labels the metric, the message says why."""

    def __init__(self, reason: str, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.refused = refused


class Follower:
    def __init__(
        self,
        settings: FollowerSettings,
        config: EdgeConfig,
        board: HealthBoard,
        counters: SharedCounters,
        client: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.config = config
        self.board = board
        self.counters = counters
        self.client = client
        self.store = settings.store
        self.supervisor = os.getppid()
        self.notify: Callable[[], bool] = self._sighup_supervisor  # "reload": True if it was told
        self.draining = False
        self.wake = asyncio.Event()
        self.awaiting: tuple[int, float] | None = None  # (version, when it was delivered)
        self.invalid: Refusal | None = None  # a state the follower itself refused
        self.view: HealthView | None = None
        self.generation = -1
        self._last_failure: tuple[str, float] | None = None
        self._failures = 0
        self._connected = False
        self._report_failing = False
        saved, rejected = self.store.last_known_good(), self.store.rejected()
        versions = [item for item in (saved and saved.state.version, rejected and rejected.version) if item]
        self.seen: int | None = max(versions) if versions else None  # a rejected version is not re-sent
        if saved is not None:
            APPLIED_VERSION.set(saved.state.version)
        self.last_success = LAST_SUCCESS.labels(settings.url)
        self.last_success.set(0)  # never reached yet: alerts count from 1970, so they fire
        # Accounting: where the workers' counters are, and every listener's origin seen in this
        # process (a removed listener's last bytes are still attributed to its load balancer).
        counters_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.counters_dir = Path(counters_dir) if counters_dir else None
        self.origins: dict[str, ListenerOrigin] = {}
        self._origins_version: int | None = None

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.token}"}

    def _url(self, what: str) -> str:
        return f"{self.settings.url}/v1/pops/{self.settings.pop}/{what}"

    # ---- watch -----------------------------------------------------------------------------------

    async def fetch(self) -> PopDesiredState:
        """One GET: a long poll once a version was seen, else an immediate answer."""
        timeout = self.settings.watch_timeout
        params = {} if self.seen is None else {"watch": "1", "since": str(self.seen), "timeout": str(timeout)}
        try:
            response = await self.client.get(
                self._url("desired"),
                params=params,
                headers=self._headers,
                timeout=httpx.Timeout(timeout + 10.0, connect=3.0),
            )
        except httpx.TimeoutException as error:
            raise FetchError("timeout", f"no answer in time ({type(error).__name__})") from None
        except httpx.ConnectError as error:
            raise FetchError("connect", f"cannot connect: {error}") from None
        except httpx.HTTPError as error:
            raise FetchError("http", f"{type(error).__name__}: {error}") from None
        status = response.status_code
        if status == 401:
            raise FetchError(
                "auth", "the token was refused (401): check --token / ANYCASTLB_POP_TOKEN", refused=True
            )
        if status in (403, 404):
            pop = self.settings.pop
            message = f"PoP {pop!r} is unknown or not this token's ({status}): check --pop and --token"
            raise FetchError("auth", message, refused=True)
        if status >= 500:
            raise FetchError("server_error", f"HTTP {status}: {response.text[:200]!r}")
        if status != 200:
            raise FetchError("http_status", f"HTTP {status}: {response.text[:200]!r}")
        try:
            # a control plane of an earlier release sends durations as bare seconds (model/duration.py)
            state = PopDesiredState.model_validate_json(response.content, context=STORED_SECONDS)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(top level)"
            raise FetchError(
                "invalid", f"the desired state does not validate: {where}: {first['msg']}"
            ) from None
        if state.pop != self.settings.pop:
            raise FetchError("invalid", f"the control plane answered with PoP {state.pop!r}")
        return state

    def failed(self, error: FetchError, retry_in: float) -> None:
        WATCH_ERRORS.labels(error.reason).inc()
        CONNECTED.set(0)
        self._connected = False
        self._failures += 1
        now = time.monotonic()
        text = str(error)
        if (
            self._last_failure is None
            or self._last_failure[0] != text
            or now - self._last_failure[1] > _QUIET_REPEATS
        ):
            self._last_failure = (text, now)
            level = logging.ERROR if error.refused else logging.WARNING
            log.log(
                level,
                "control_watch_failed url=%s reason=%s error=%r failures=%d retry_in=%.1fs",
                self.settings.url,
                error.reason,
                text,
                self._failures,
                retry_in,
            )

    def synced(self) -> None:
        if not self._connected:
            log.info("control_connected url=%s after_failures=%d", self.settings.url, self._failures)
        self._connected = True
        self._failures = 0
        self._last_failure = None
        CONNECTED.set(1)
        now = time.time()
        LAST_SYNC.set(now)
        self.last_success.set(now)

    def consider(self, state: PopDesiredState) -> bool:
        """Hand a newer state to the supervisor; False if it could not be written (retry)."""
        if self.seen is not None and state.version <= self.seen:
            if state.version < self.seen:
                log.warning(
                    "control_version_older version=%d seen=%d action=ignored", state.version, self.seen
                )
            return True
        base = self.config.model_copy(update={"listeners": (), "tunnels": self.settings.base_tunnels})
        try:
            edge_config_for(base, state)
        except Exception as error:
            if not isinstance(error, ConfigError):
                survived(log, "control", "refuse-state", error)
                error = ConfigError(f"the edge cannot use this state: {type(error).__name__}: {error}")
            log.error("desired_invalid version=%d error=%r action=keep-running", state.version, str(error))
            self.invalid = Refusal(state.version, str(error))
            self.seen = state.version
            self.wake.set()
            return True
        try:
            self.store.write_pending(state)
        except OSError as error:
            log.error(
                "pending_write_failed file=%s error=%r", self.store.path("pending.json"), error.strerror
            )
            return False
        self.seen = state.version
        self.invalid = None
        log.info(
            "desired_received version=%d load_balancers=%d action=reload",
            state.version,
            len(state.load_balancers),
        )
        if self.notify():
            self.awaiting = (state.version, time.monotonic())
            self.wake.set()
        return True

    def _sighup_supervisor(self) -> bool:
        if os.getppid() != self.supervisor:
            return False  # the supervisor is gone (we were re-parented): the pipe's EOF stops us
        os.kill(self.supervisor, signal.SIGHUP)
        return True

    async def watch(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            try:
                if await self._watch_once(backoff):
                    backoff = _BACKOFF_FIRST
                    continue
            except Exception as error:
                survived(log, "control", "watch-again", error)
                await asyncio.sleep(backoff)
            backoff = min(_BACKOFF_MAX, backoff * 2)

    async def _watch_once(self, backoff: float) -> bool:
        """One watch; False when it failed (after waiting out the backoff)."""
        try:
            state = await self.fetch()
        except FetchError as error:
            delay = _BACKOFF_REFUSED if error.refused else backoff
            self.failed(error, delay)
            await asyncio.sleep(delay)
            return False
        self.synced()
        DESIRED_VERSION.set(state.version)
        if self.consider(state):
            return True
        await asyncio.sleep(backoff)
        return False

    # ---- report ----------------------------------------------------------------------------------

    async def await_outcome(self) -> None:
        """After a delivery: wait until the supervisor promoted or rejected it (or gave no answer)."""
        while self.awaiting is not None:
            version, delivered = self.awaiting
            saved, rejected = self.store.last_known_good(), self.store.rejected()
            elapsed_ms = (time.monotonic() - delivered) * 1000
            if saved is not None and saved.state.version >= version:
                log.info("desired_applied version=%d after=%.0fms", saved.state.version, elapsed_ms)
            elif rejected is not None and rejected.version >= version:
                log.error("desired_rejected version=%d error=%r", rejected.version, rejected.error)
            elif elapsed_ms < _OUTCOME_WAIT * 1000:
                await asyncio.sleep(_OUTCOME_POLL)
                continue
            else:
                log.warning("desired_not_applied version=%d within=%.0fs (draining?)", version, _OUTCOME_WAIT)
            if self.awaiting == (version, delivered):
                self.awaiting = None

    def read_board(self) -> None:
        if self.board.generation() == self.generation:
            return
        snapshot = self.board.read()
        if snapshot is not None:
            self.generation, payload = snapshot
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.view = HealthView.decode(payload)

    def active_connections(self, listener: str) -> int:
        # The workers count each listener's open connections in the shared counters, under the key
        # Admission uses for max_connections (dataplane/admission.py), hashed with the agent's key the
        # table carries. A source that hashes to the same bucket (rare: 2^18 buckets) is counted in too.
        return self.counters.total(self.counters.bucket(listener_key(listener)))

    def usage(self, applied: PopDesiredState | None) -> UsageReport | None:
        """The cumulative counters of every listener counted in this epoch (None: no counters)."""
        if self.counters_dir is None:
            return None
        try:
            return self._usage(applied, self.counters_dir)
        except Exception as error:  # the status still goes; the counters go with the next report
            survived(log, "control", "report-without-usage", error)
            return None

    def _usage(self, applied: PopDesiredState | None, counters_dir: Path) -> UsageReport:
        if applied is not None and applied.version != self._origins_version:
            self.origins.update(listener_origins(applied, self.config.metrics))
            self._origins_version = applied.version
        epoch = counter_epoch(counters_dir)
        # The sequence: the host's monotonic clock, read before the counters. It grows across
        # follower restarts within the epoch (one edge's life on one host), which a counter in
        # this process would not.
        sequence = time.monotonic_ns()
        return usage_report(epoch, sequence, read_listener_counts(counters_dir), self.origins)

    async def report(self) -> None:
        saved = self.store.last_known_good()
        applied = saved.state if saved is not None else None
        rejected = self.store.rejected()
        refusals = [item for item in (self.invalid,) if item is not None]
        if rejected is not None:
            refusals.append(Refusal(rejected.version, rejected.error))
        self.read_board()
        report = pop_status(
            self.settings.pop,
            applied,
            self.view,
            bgp=self.config.bgp is not None,
            draining=self.draining,
            refusals=refusals,
            active_connections=self.active_connections,
            unbound=self.store.unbound(),
            metrics=self.config.metrics,
            sessions=bgp_sessions(os.environ.get("PROMETHEUS_MULTIPROC_DIR")) if self.config.bgp else (),
        ).model_copy(update={"usage": self.usage(applied)})
        if applied is not None:
            APPLIED_VERSION.set(applied.version)
        try:
            response = await self.client.put(
                self._url("status"),
                content=report.model_dump_json(),
                headers={**self._headers, "Content-Type": "application/json"},
                timeout=5.0,
            )
            ok, error = response.status_code < 300, f"HTTP {response.status_code}"
        except httpx.HTTPError as failure:
            ok, error = False, f"{type(failure).__name__}: {failure}"
        if ok:
            CONNECTED.set(1)  # a long poll can take 30 s to answer; an accepted report proves the link
            self.last_success.set(time.time())
        if not ok and not self._report_failing:
            log.warning(
                "status_report_failed url=%s error=%r (logged once until it works)", self.settings.url, error
            )
        elif ok and self._report_failing:
            log.info("status_report_ok url=%s applied_version=%d", self.settings.url, report.applied_version)
        self._report_failing = not ok

    async def report_due(self) -> None:
        """Return when a report is due: woken (a version applied or refused, a drain, a new config),
        a new health view on the board (a backend went down or up), or ``_REPORT_EVERY`` passed."""
        deadline = time.monotonic() + _REPORT_EVERY
        while (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, _BOARD_POLL)):
                    await self.wake.wait()
                    return
            if self.board.generation() != self.generation:
                return

    async def reports(self) -> None:
        while True:
            await self.report_due()
            self.wake.clear()
            try:
                await self.await_outcome()
                await self.report()
            except Exception as error:
                self.awaiting = None
                survived(log, "control", "report-again", error)


def run_follower(
    settings: FollowerSettings,
    config: EdgeConfig,
    control_fd: int,
    board: HealthBoard,
    counters: SharedCounters,
) -> int:
    """Run until SIGTERM or until the supervisor goes away; returns the exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is ours to write
    return asyncio.run(_serve(settings, config, control_fd, board, counters))


async def _serve(
    settings: FollowerSettings,
    config: EdgeConfig,
    control_fd: int,
    board: HealthBoard,
    counters: SharedCounters,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    terminated = False
    control = ConfigPipeReader(control_fd)
    async with httpx.AsyncClient() as client:
        follower = Follower(settings, config, board, counters, client)

        def on_control() -> None:
            messages = control.read()
            if messages is None:
                log.warning("supervisor_gone part=control action=stop")
                stop.set()
                return
            if messages:
                try:
                    follower.config = EdgeConfig.model_validate_json(messages[-1])
                except Exception as error:
                    survived(log, "control", "keep-previous-config", error)
                follower.wake.set()

        def drain() -> None:
            follower.draining = True
            follower.wake.set()

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            stop.set()

        loop.add_signal_handler(signal.SIGTERM, terminate)
        loop.add_signal_handler(signal.SIGUSR1, drain)
        os.set_blocking(control_fd, False)
        loop.add_reader(control_fd, on_control)
        log.info("follower_started url=%s pop=%s since=%s", settings.url, settings.pop, follower.seen)
        tasks = [loop.create_task(follower.watch()), loop.create_task(follower.reports())]
        await stop.wait()
        loop.remove_reader(control_fd)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if terminated:  # the supervisor stops us after its workers: their last counts are in
            try:
                async with asyncio.timeout(_LAST_REPORT_WAIT):
                    await follower.report()
            except TimeoutError:
                log.warning("last_report_timeout url=%s after=%.0fs", settings.url, _LAST_REPORT_WAIT)
            except Exception as error:
                survived(log, "control", "last-report", error)
    log.info("follower_stopped")
    return 0
