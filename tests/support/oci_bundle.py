"""An unpacked OCI image (``umoci unpack``) run the way a runtime would, without one.

umoci writes the runtime bundle's config.json from the image's config: the process's user, args,
environment and working directory. ``BundleProcess.command`` runs exactly that process in the
bundle's rootfs, with what the Helm charts give it: the root filesystem read-only
(readOnlyRootFilesystem), a fresh tmpfs at /tmp (their emptyDir), /proc and /dev, and the binds a
test asks for. Everything is mounted in the process's own mount namespace (image_build.chroot),
so nothing outlives it on the host.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from image_build.chroot import chroot_command

__all__ = ["BundleProcess"]


@dataclass(frozen=True)
class BundleProcess:
    """config.json's ``process`` of an unpacked bundle, and the bundle's rootfs."""

    rootfs: Path
    uid: int
    gid: int
    args: tuple[str, ...]
    env: dict[str, str]
    cwd: str

    @classmethod
    def load(cls, bundle: Path) -> "BundleProcess":
        config = json.loads((bundle / "config.json").read_text())
        process = config["process"]
        env = dict(item.split("=", 1) for item in process["env"])
        return cls(
            rootfs=bundle / config["root"]["path"],
            uid=process["user"]["uid"],
            gid=process["user"]["gid"],
            args=tuple(process["args"]),
            env=env,
            cwd=process["cwd"],
        )

    @property
    def entrypoint(self) -> str:
        return self.args[0]

    def command(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        binds: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The host command that runs the entrypoint with ``args`` in place of the image's cmd,
        with the image's environment plus ``env`` (a pod spec's ``env:``) and nothing of the host's."""
        return chroot_command(
            self.rootfs,
            [self.entrypoint, *args],
            env={**self.env, **(env or {})},
            user=f"{self.uid}:{self.gid}",
            workdir=self.cwd,
            bind_dev=True,
            read_only=True,
            tmpfs=["/tmp"],
            binds=binds,
        )
