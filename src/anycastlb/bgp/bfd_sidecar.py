"""The BFD sidecar: a BIRD that runs only BFD, so routers see a silent PoP death in milliseconds."""

import shutil
from pathlib import Path

from anycastlb.bgp.bfd_text import render_bfd_config
from anycastlb.bgp.child import SupervisedChild
from anycastlb.model.bgp import BgpConfig

__all__ = ["BfdSidecar", "BfdUnavailableError"]


class BfdUnavailableError(RuntimeError):
    """BFD was asked for but BIRD is not installed."""


class BfdSidecar:
    """Runs ``bird -f`` with only a BFD protocol; it dies with the announcer like the speaker."""

    def __init__(self, config: BgpConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.child: SupervisedChild | None = None

    async def start(self) -> None:
        bird = shutil.which("bird") or ("/usr/sbin/bird" if Path("/usr/sbin/bird").exists() else None)
        if bird is None:
            raise BfdUnavailableError(
                "bgp.peers[].bfd needs BIRD 2 for the BFD sidecar: apt-get install bird2 (or set bfd: false)"
            )
        config_path = self.workdir / "bfd.conf"
        config_path.write_text(render_bfd_config(self.config))
        argv = [bird, "-f", "-c", str(config_path), "-s", str(self.workdir / "bfd.ctl")]
        self.child = SupervisedChild("bfd", argv)
        self.child.start()

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop()
