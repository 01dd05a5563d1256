"""A child program the announcer keeps running (ExaBGP, the BFD sidecar): started, logged, restarted.

Every child is started with ``PR_SET_PDEATHSIG``: if the announcer dies, however it dies, the
kernel kills the child too, so no speaker outlives its agent and keeps attracting traffic. A child
that exits is logged with its last lines and started again with backoff (1 s doubling to 30 s,
back to 1 s once it ran for 30 s). A start that fails (no memory, no pids) is logged, counted
(``internal_errors``) and retried with the same backoff: supervision never stops silently.
"""

import asyncio
import contextlib
import ctypes
import logging
import signal
import time
from collections.abc import Callable, Sequence

from anycastlb.bgp.metrics import SPEAKER_RESTARTS
from anycastlb.internal_errors import survived

__all__ = ["SupervisedChild"]

log = logging.getLogger("anycastlb.bgp")

_PR_SET_PDEATHSIG = 1
_BACKOFF_FIRST, _BACKOFF_MAX, _STABLE_AFTER = 1.0, 30.0, 30.0
_ERROR_WORDS = ("ERROR", "CRITICAL", "Traceback", "error", "Error")


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when the announcer dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class SupervisedChild:
    """Runs ``argv`` until :meth:`stop`; ``on_start`` is called after each (re)start."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.on_start = on_start
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(3.0):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _supervise(self) -> None:
        backoff = _BACKOFF_FIRST
        while not self._stopping:
            try:
                backoff = await self._run_once(backoff)
            except Exception as error:
                survived(log, "bgp", f"restart-{self.name}-in-{backoff:.0f}s", error)
                await asyncio.sleep(backoff)
                backoff = min(_BACKOFF_MAX, backoff * 2)

    async def _run_once(self, backoff: float) -> float:
        """Start the child, follow it until it exits, wait the backoff; returns the next backoff."""
        started = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.info("child_started child=%s pid=%d", self.name, self.process.pid)
        if self.on_start is not None:
            try:
                self.on_start()
            except Exception as error:
                survived(log, "bgp", f"follow-{self.name}", error)
        last_lines = await self._read_output(self.process)
        code = await self.process.wait()
        if self._stopping:
            return backoff
        SPEAKER_RESTARTS.labels(self.name).inc()
        if time.monotonic() - started > _STABLE_AFTER:
            backoff = _BACKOFF_FIRST
        log.error(
            "child_died child=%s code=%d action=restart in=%.0fs last_output=%r",
            self.name,
            code,
            backoff,
            " | ".join(last_lines),
        )
        await asyncio.sleep(backoff)
        return min(_BACKOFF_MAX, backoff * 2)

    async def _read_output(self, process: asyncio.subprocess.Process) -> list[str]:
        """Log the child's lines (errors as errors); return the last few for a crash report."""
        last: list[str] = []
        if process.stdout is None:
            return last
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            last = [*last[-4:], line]
            if any(word in line for word in _ERROR_WORDS):
                log.error("child_output child=%s %s", self.name, line)
            else:
                log.debug("child_output child=%s %s", self.name, line)
        return last
