"""ExaBGP as the PoP's BGP speaker: a supervised child process driven through its text API.

Declare, don't command: :meth:`ExaBgpSpeaker.set` takes the whole set of announcements the PoP
should have, and the speaker turns the difference from what ExaBGP was last told into ``announce``
and ``withdraw`` lines. Repeating a state or withdrawing what is absent costs nothing.

Lifecycle and failure handling:
- the agent listens on a Unix socket, writes ``exabgp.conf`` and starts ExaBGP, which starts our
  bridge (``exabgp_bridge``), which connects back: that connection is the API;
- ExaBGP runs with ``PR_SET_PDEATHSIG``: if this process dies, so does ExaBGP, its TCP sessions close
  and the routers withdraw our routes within milliseconds (no hold timer involved);
- ExaBGP exiting is logged with its last lines and it is started again with backoff (1 s doubling
  to 30 s). ExaBGP only replays routes after a session flap, so on every new API connection the
  whole desired set is announced again;
- an unreachable peer is ExaBGP's business: it retries the session forever; we only report the
  session state (``neighbor-changes``) in metrics and logs.
"""

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from pathlib import Path

from anycastlb.bgp.exabgp_text import (
    EXABGP_ENVIRONMENT,
    Ack,
    SessionChange,
    announce_line,
    parse_api_line,
    render_config,
    withdraw_line,
)
from anycastlb.bgp.metrics import ANNOUNCED, API_ERRORS, SESSION_UP, SPEAKER_RESTARTS
from anycastlb.bgp.policy import Announcement, Prefix
from anycastlb.model.bgp import BgpConfig

__all__ = ["ExaBgpSpeaker"]

log = logging.getLogger("anycastlb.bgp")

_PR_SET_PDEATHSIG = 1
_BACKOFF_FIRST, _BACKOFF_MAX, _STABLE_AFTER = 1.0, 30.0, 30.0


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when the agent dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ExaBgpSpeaker:
    """Keeps ExaBGP running and its announcements equal to the desired set."""

    def __init__(self, config: BgpConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.socket_path = workdir / "api.sock"
        self.config_path = workdir / "exabgp.conf"
        self.desired: frozenset[Announcement] = frozenset()
        self.sessions: dict[str, str] = {str(peer.address): "down" for peer in config.peers}
        self._sent: dict[Prefix, Announcement] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()
        self._stopping = False

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(self._on_api, path=str(self.socket_path))
        bridge = [sys.executable, "-m", "anycastlb.bgp.exabgp_bridge", str(self.socket_path)]
        self.config_path.write_text(render_config(self.config, bridge))
        for peer in self.sessions:
            SESSION_UP.labels(peer).set(0)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        """Stop ExaBGP (its sessions close, so the routers withdraw what it announced)."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._terminate()
        if self._server is not None:
            self._server.close()
        for peer in self.sessions:
            SESSION_UP.labels(peer).set(0)

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 3.0)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _supervise(self) -> None:
        backoff = _BACKOFF_FIRST
        while not self._stopping:
            started = time.monotonic()
            env = {**os.environ, **EXABGP_ENVIRONMENT}
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "exabgp",
                str(self.config_path),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            log.info("speaker_started speaker=exabgp pid=%d peers=%d", self._process.pid, len(self.sessions))
            last_lines = await self._read_output(self._process)
            code = await self._process.wait()
            if self._stopping:
                return
            SPEAKER_RESTARTS.inc()
            if time.monotonic() - started > _STABLE_AFTER:
                backoff = _BACKOFF_FIRST
            log.error(
                "speaker_died speaker=exabgp code=%d action=restart in=%.0fs last_output=%r",
                code,
                backoff,
                " | ".join(last_lines),
            )
            await asyncio.sleep(backoff)
            backoff = min(_BACKOFF_MAX, backoff * 2)

    async def _read_output(self, process: asyncio.subprocess.Process) -> list[str]:
        """Log ExaBGP's own lines (errors as errors); return the last few for a crash report."""
        last: list[str] = []
        if process.stdout is None:
            return last
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            last = [*last[-4:], line]
            if "ERROR" in line or "CRITICAL" in line or "Traceback" in line:
                log.error("speaker_output %s", line)
            else:
                log.debug("speaker_output %s", line)
        return last

    # ---- the API connection ------------------------------------------------------------------

    async def _on_api(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """ExaBGP's bridge connected: tell this ExaBGP everything, then follow its reports."""
        if self._writer is not None:
            self._writer.close()
        self._writer = writer
        self._sent = {}
        log.info("speaker_api_connected announcements=%d", len(self.desired))
        await self.sync()
        try:
            async for raw in reader:
                self._on_api_line(raw.decode(errors="replace"))
        finally:
            if self._writer is writer:
                self._writer = None
                for peer in self.sessions:
                    self._session(peer, "down", "speaker API closed")

    def _on_api_line(self, line: str) -> None:
        event = parse_api_line(line)
        if isinstance(event, Ack):
            if not event.ok:
                API_ERRORS.inc()
                log.error("speaker_command_rejected (ExaBGP answered error; see its output above)")
        elif isinstance(event, SessionChange):
            self._session(str(event.peer), event.state, event.reason)

    def _session(self, peer: str, state: str, reason: str) -> None:
        if self.sessions.get(peer) == state:
            return
        self.sessions[peer] = state
        SESSION_UP.labels(peer).set(1 if state == "up" else 0)
        level = logging.INFO if state != "down" else logging.WARNING
        log.log(level, "bgp_session peer=%s state=%s reason=%r", peer, state, reason)

    # ---- declaring routes ----------------------------------------------------------------------

    async def set(self, announcements: frozenset[Announcement]) -> None:
        """Make ExaBGP announce exactly ``announcements`` (now, or as soon as it is connected)."""
        self.desired = announcements
        await self.sync()

    async def sync(self) -> None:
        async with self._sync_lock:
            writer = self._writer
            if writer is None:
                return
            wanted = {a.prefix: a for a in self.desired}
            lines: list[str] = []
            for prefix in sorted(self._sent.keys() - wanted.keys(), key=str):
                lines.append(withdraw_line(prefix))
                log.info("vip_withdrawn prefix=%s", prefix)
                ANNOUNCED.labels(str(prefix)).set(0)
            for prefix, announcement in sorted(wanted.items(), key=lambda item: str(item[0])):
                if self._sent.get(prefix) != announcement:
                    lines.append(announce_line(announcement, self.config.local_as))
                    log.info("vip_announced prefix=%s", prefix)
                    ANNOUNCED.labels(str(prefix)).set(1)
            if not lines:
                return
            writer.write("".join(line + "\n" for line in lines).encode())
            try:
                await writer.drain()
            except ConnectionError:
                return  # the bridge went away; the next one gets everything again
            self._sent = wanted
