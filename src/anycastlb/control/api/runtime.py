"""What every route needs: the store, the admin token, transactions with retry, change wake-ups."""

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from anycastlb.control.api.metrics import ControlMetrics
from anycastlb.control.api.request_id import current_request_id
from anycastlb.control.audit import Change
from anycastlb.control.backend_policy import PlatformAddresses
from anycastlb.control.errors import Conflict, NotFound
from anycastlb.control.limits import Limits
from anycastlb.control.principal import Credential
from anycastlb.control.render import DesiredRenderer
from anycastlb.control.service import audit
from anycastlb.control.service.pops import all_desired_versions
from anycastlb.control.service.revision import token_generation
from anycastlb.control.service.tokens import authenticate
from anycastlb.control.store.engine import Store
from anycastlb.control.store.tables import AuditEntry
from anycastlb.control.tokens import secret_hash
from anycastlb.control.tunnels.addressing import TunnelSettings

__all__ = ["ChangeNotifier", "Runtime"]

log = logging.getLogger("anycastlb.control")
T = TypeVar("T")
_ATTEMPTS = 4
_VERSIONS_TTL = 0.5
_AUTH_TTL = 5.0
# How often a replica reads the token generation. A revocation on another replica holds here at
# most this long plus one request later: under the 1 s the API promises.
_GENERATION_EVERY = 0.5


class ChangeNotifier:
    """Wakes long-polling watchers after a commit. Writers run in worker threads, watchers in the
    event loop: ``publish`` hops to the loop; a watcher awaits :meth:`wait` and then re-reads.
    ``generation`` counts the wake-ups: what was read under one generation is still current."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self.generation = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def _wake(self) -> None:
        self.generation += 1
        self._event.set()
        self._event = asyncio.Event()

    def publish(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def snapshot(self) -> asyncio.Event:
        """Take this before reading state, then :meth:`wait` on it: a change committed between the
        read and the wait has already set it, so no wake-up is lost."""
        return self._event

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return


@dataclass
class Runtime:
    store: Store
    admin_token: str | None  # None: --insecure-dev, every request is the admin
    limits: Limits = field(default_factory=Limits)
    # What backends may not be (control/backend_policy.py): --platform-network, the listen address,
    # and the lab switch --allow-backend-network.
    platform: PlatformAddresses = field(default_factory=PlatformAddresses)
    tunnels: TunnelSettings = field(default_factory=TunnelSettings)  # --tunnel-range, --tunnel-prefix...
    rotation_sweep: float = 5.0  # seconds between checks for rotation grace periods that ended
    notifier: ChangeNotifier = field(default_factory=ChangeNotifier)
    metrics: ControlMetrics = field(default_factory=ControlMetrics)
    renderer: DesiredRenderer = field(default_factory=DesiredRenderer)
    # Serializes writers inside this process on SQLite, where they would otherwise sleep-poll in
    # SQLite's busy handler (see store/engine.py for what that cost).
    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    # PoP versions read once per notifier generation for every waiting watcher (they were 16% of
    # the server's time with 50 PoPs re-reading their own row on every wake-up).
    _pop_versions: tuple[int, float, dict[str, int]] = (-1, 0.0, {})
    # secret hash -> (credential or None, read at, token generation it was read under): a PoP's
    # long poll or a controller's resync must not cost a database read per request. An entry is
    # used only while the generation it was read under is current and was checked within
    # _GENERATION_EVERY: every token change (on any replica) bumps it, so a revoked or rotated
    # token stops working everywhere within a second. Expiry is checked per request (deps.py).
    _auth: dict[str, tuple[Credential | None, float, int]] = field(default_factory=dict)
    # (token generation, monotonic time it was read)
    _generation: tuple[int, float] = (-1, float("-inf"))

    def desired_state(self, pop: str) -> bytes:
        """The PoP's desired state as JSON (rendered again only when something changed)."""
        with self.store.readers() as session:
            return self.renderer.render(session, pop)

    def cached_pop_version(self, pop: str) -> int | None:
        """The PoP's version if it was read under the current generation (no I/O: the event loop
        may call it directly instead of hopping to a worker thread)."""
        generation, read_at, versions = self._pop_versions
        if generation != self.notifier.generation or time.monotonic() - read_at > _VERSIONS_TTL:
            return None
        return versions.get(pop)

    def cached_state(self, pop: str) -> bytes | None:
        """The PoP's rendered state if it is current (no I/O)."""
        version = self.cached_pop_version(pop)
        return None if version is None else self.renderer.cached(pop, version)

    def cached_principal(self, secret: str) -> tuple[bool, Credential | None]:
        """(found in the cache, credential) without I/O; a miss also when the token generation is
        due for a check (then :meth:`authenticate` reads it, in a worker thread)."""
        generation, checked_at = self._generation
        now = time.monotonic()
        if now - checked_at >= _GENERATION_EVERY:
            return False, None
        cached = self._auth.get(secret_hash(secret))
        if cached is not None and now - cached[1] < _AUTH_TTL and cached[2] == generation:
            return True, cached[0]
        return False, None

    def pop_version(self, pop: str) -> int:
        """The PoP's desired version; one query serves every watcher woken by the same change.
        The cache also expires after _VERSIONS_TTL: another replica's commit wakes no notifier here."""
        generation, read_at, versions = self._pop_versions
        now = time.monotonic()
        if generation != self.notifier.generation or now - read_at > _VERSIONS_TTL or pop not in versions:
            with self.store.readers() as session:
                versions = all_desired_versions(session)
            self._pop_versions = (self.notifier.generation, now, versions)
        if pop not in versions:
            raise NotFound(f"PoP {pop!r} not found")
        return versions[pop]

    def _current_token_generation(self) -> int:
        generation, checked_at = self._generation
        now = time.monotonic()
        if now - checked_at >= _GENERATION_EVERY:
            latest = self.read(token_generation)
            if latest != generation:
                self._auth.clear()
            self._generation = (latest, now)
            generation = latest
        return generation

    def authenticate(self, secret: str) -> Credential | None:
        """Who the secret belongs to (blocking: a worker thread calls this)."""
        generation = self._current_token_generation()  # read before the token: never stale
        digest = secret_hash(secret)
        cached = self._auth.get(digest)
        now = time.monotonic()
        if cached is not None and now - cached[1] < _AUTH_TTL and cached[2] == generation:
            return cached[0]
        found = self.read(lambda session: authenticate(session, secret))
        if len(self._auth) > 10_000:
            self._auth.clear()
        self._auth[digest] = (found, now, generation)
        return found

    def forget_tokens(self) -> None:
        """Drop the cache now (this replica changed a token; others see the generation move)."""
        self._auth.clear()

    def read(self, work: Callable[[Session], T]) -> T:
        with self.store.readers() as session:
            return work(session)

    def write(self, work: Callable[[Session], T], *, change: Change | None, notify: bool = True) -> T:
        """Run ``work`` in one transaction with the audit row of ``change`` (None: not a change of
        configuration, i.e. a PoP's status report; control/audit.py says what is recorded); retry
        when a concurrent writer won a race (a unique key, a serialization failure, SQLite busy),
        then wake the watchers (``notify``: the change may concern a PoP's desired state)."""
        serialize = self.store.dialect == "sqlite"
        request_id = current_request_id()
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                if serialize:
                    self._write_lock.acquire()
                try:
                    started = time.perf_counter()
                    with self.store.sessions.begin() as session:
                        before = None if change is None else audit.version_before(session, change)
                        result = work(session)
                        entry = (
                            None
                            if change is None
                            else audit.record(session, change, result, before, request_id)
                        )
                        if entry is not None:
                            line = _change_line(entry)  # read before the session closes
                    self.metrics.write_transaction.observe(time.perf_counter() - started)
                finally:
                    if serialize:
                        self._write_lock.release()
            except (IntegrityError, OperationalError) as error:
                if attempt == _ATTEMPTS:
                    log.error(
                        "write_failed attempts=%d request_id=%s error=%r",
                        attempt,
                        request_id,
                        str(error.orig),
                    )
                    raise Conflict(
                        "a concurrent change won the race several times; retry the request"
                    ) from None
                log.info(
                    "write_retry attempt=%d request_id=%s error=%r", attempt, request_id, str(error.orig)
                )
                self.metrics.write_retries.inc()
                time.sleep(0.01 * attempt)
                continue
            if entry is not None:
                log.info("%s", line)
            if notify:
                self.notifier.publish()
            return result
        raise AssertionError("unreachable")


def _change_line(entry: AuditEntry) -> str:
    return (
        f"changed action={entry.action} object={entry.object_type} name={entry.object_name} "
        f"tenant={entry.tenant or '-'} actor={entry.actor_kind}:{entry.actor} "
        f"token={entry.actor_token or '-'} request_id={entry.request_id}"
    )
