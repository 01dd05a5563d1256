"""ExaBGP as the PoP's BGP speaker: a supervised child process driven through its text API.

Declare, don't command: :meth:`ExaBgpSpeaker.set` takes the whole set of announcements the PoP
should have, and the speaker turns the difference from what ExaBGP was last told into ``announce``
and ``withdraw`` lines. Repeating a state or withdrawing what is absent costs nothing.

Lifecycle and failure handling:
- the agent listens on a Unix socket, writes ``exabgp.conf`` and starts ExaBGP, which starts our
  bridge (``exabgp_bridge``), which connects back: that connection is the API;
- ExaBGP is a :class:`SupervisedChild`: it dies with this process (``PR_SET_PDEATHSIG``), so its TCP
  sessions close and the routers withdraw our routes within milliseconds, and it is restarted with
  backoff when it exits. ExaBGP only replays routes after a session flap, so on every new API
  connection the whole desired set is announced again;
- peers with ``bfd: true`` get a BFD sidecar (a BIRD that runs only BFD), supervised the same way;
- an unreachable peer is ExaBGP's business: it retries the session forever; we only report the
  session state (``neighbor-changes``) in metrics and logs.
"""

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from anycastlb.bgp.bfd_sidecar import BfdSidecar, BfdUnavailableError
from anycastlb.bgp.child import SupervisedChild
from anycastlb.bgp.exabgp_text import (
    EXABGP_ENVIRONMENT,
    Ack,
    SessionChange,
    announce_line,
    parse_api_line,
    render_config,
    withdraw_line,
)
from anycastlb.bgp.metrics import ANNOUNCED, API_ERRORS, SESSION_UP
from anycastlb.bgp.policy import Announcement, Prefix
from anycastlb.internal_errors import survived
from anycastlb.model.bgp import BgpConfig

__all__ = ["ExaBgpSpeaker"]

log = logging.getLogger("anycastlb.bgp")


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
        self._exabgp: SupervisedChild | None = None
        self._bfd: BfdSidecar | None = None
        self._sync_lock = asyncio.Lock()

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
        env = {**os.environ, **EXABGP_ENVIRONMENT}
        self._exabgp = SupervisedChild("exabgp", [sys.executable, "-m", "exabgp", str(self.config_path)], env)
        self._exabgp.start()
        if any(peer.bfd for peer in self.config.peers):
            self._bfd = BfdSidecar(self.config, self.workdir)
            try:
                await self._bfd.start()
            except BfdUnavailableError as error:
                log.error("bfd_unavailable error=%r (BGP runs without BFD)", str(error))

    async def stop(self) -> None:
        """Stop ExaBGP (its sessions close, so the routers withdraw what it announced)."""
        if self._exabgp is not None:
            await self._exabgp.stop()
        if self._bfd is not None:
            await self._bfd.stop()
        if self._server is not None:
            self._server.close()
        for peer in self.sessions:
            SESSION_UP.labels(peer).set(0)

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
                try:
                    self._on_api_line(raw.decode(errors="replace"))
                except Exception as error:
                    survived(log, "bgp", "line-ignored", error)
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
