"""What every route needs: the store, the admin token, transactions with retry, change wake-ups."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from anycastlb.control.api.metrics import ControlMetrics
from anycastlb.control.errors import Conflict
from anycastlb.control.service.pops import desired_state, desired_version
from anycastlb.control.store.engine import Store
from anycastlb.model.desired import PopDesiredState

__all__ = ["ChangeNotifier", "Runtime"]

log = logging.getLogger("anycastlb.control")
T = TypeVar("T")
_ATTEMPTS = 4


class ChangeNotifier:
    """Wakes long-polling watchers after a commit. Writers run in worker threads, watchers in the
    event loop: ``publish`` hops to the loop; a watcher awaits :meth:`wait` and then re-reads."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def _wake(self) -> None:
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
    notifier: ChangeNotifier = field(default_factory=ChangeNotifier)
    metrics: ControlMetrics = field(default_factory=ControlMetrics)
    # pop -> its last rendered desired state: 50 PoPs woken by one change render it once each
    _rendered: dict[str, PopDesiredState] = field(default_factory=dict)

    def desired_state(self, pop: str) -> PopDesiredState:
        """The PoP's desired state, rendered again only when its version moved."""
        with self.store.sessions() as session:
            version = desired_version(session, pop)
            cached = self._rendered.get(pop)
            if cached is not None and cached.version == version:
                return cached
            state = desired_state(session, pop)
        self._rendered[pop] = state
        return state

    def read(self, work: Callable[[Session], T]) -> T:
        with self.store.sessions() as session:
            return work(session)

    def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction; retry when a concurrent writer won a race (a unique key,
        a serialization failure, SQLite busy), then wake the watchers."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.store.sessions.begin() as session:
                    result = work(session)
            except (IntegrityError, OperationalError) as error:
                if attempt == _ATTEMPTS:
                    log.error("write_failed attempts=%d error=%r", attempt, str(error.orig))
                    raise Conflict(
                        "a concurrent change won the race several times; retry the request"
                    ) from None
                log.info("write_retry attempt=%d error=%r", attempt, str(error.orig))
                self.metrics.write_retries.inc()
                time.sleep(0.01 * attempt)
                continue
            self.notifier.publish()
            return result
        raise AssertionError("unreachable")
