"""The controller's work queue: keys (``namespace/name``) to reconcile, each at most once at a time.

Why a queue of keys and not of events: a burst of changes to one Service (or a node change that
touches all of them) collapses into one reconcile per key, done against the newest cached state.
A key that failed comes back after a per-key exponential backoff (0.5 s doubling to 5 min), so a
control plane outage costs a few requests per Service, not a storm; success resets it.
"""

import asyncio
import heapq
import time
from dataclasses import dataclass, field

__all__ = ["WorkQueue"]

_FIRST_RETRY = 0.5
_MAX_RETRY = 300.0


@dataclass
class WorkQueue:
    _ready: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    _delayed: list[tuple[float, str]] = field(default_factory=list)
    _failures: dict[str, int] = field(default_factory=dict)
    _active: set[str] = field(default_factory=set)
    _dirty_while_active: set[str] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, key: str) -> None:
        """Reconcile ``key`` soon (once, however often it is added before a worker takes it)."""
        if key in self._active:
            self._dirty_while_active.add(key)
            return
        self._ready[key] = None
        self._wake.set()

    def add_all(self, keys: list[str]) -> None:
        for key in keys:
            self.add(key)

    def retry(self, key: str) -> float:
        """``key`` failed: come back after its backoff; returns the delay chosen."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay: float = min(_MAX_RETRY, _FIRST_RETRY * 2.0 ** (failures - 1))
        heapq.heappush(self._delayed, (time.monotonic() + delay, key))
        self._wake.set()
        return delay

    def forget(self, key: str) -> None:
        """``key`` succeeded: its next failure starts the backoff from the beginning."""
        self._failures.pop(key, None)

    def done(self, key: str) -> None:
        """A worker finished ``key``; if it changed meanwhile it is queued again."""
        self._active.discard(key)
        if key in self._dirty_while_active:
            self._dirty_while_active.discard(key)
            self.add(key)

    def idle(self) -> bool:
        """Nothing ready and nothing in progress (keys waiting out a backoff do not count)."""
        return not self._ready and not self._active

    def __len__(self) -> int:
        return len(self._ready) + len(self._delayed)

    def _promote_due(self) -> float | None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, key = heapq.heappop(self._delayed)
            if key not in self._active:
                self._ready[key] = None
            else:
                self._dirty_while_active.add(key)
        return self._delayed[0][0] - now if self._delayed else None

    async def get(self) -> str:
        """The next key to work on; the caller must call :meth:`done` with it."""
        while True:
            wait = self._promote_due()
            if self._ready:
                key = next(iter(self._ready))
                del self._ready[key]
                self._active.add(key)
                return key
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                continue
