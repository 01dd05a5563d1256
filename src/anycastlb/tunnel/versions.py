"""Which node config the tunnel agent applies (pure).

The controller rewrites the node's file with a higher ``version`` on every change; a Secret update
reaches the node some seconds later, and an old copy may be read again (a volume being swapped, a
restored backup). The rule: apply only a version higher than the one running; the same version
with other content is a controller bug and is refused (it would make "which one runs" depend on
timing); a config for another node is refused (a mounted Secret with the wrong key).
"""

from dataclasses import dataclass
from typing import Literal

from anycastlb.model.tunnel import NodeTunnelConfig

__all__ = ["Decision", "choose_config"]


@dataclass(frozen=True)
class Decision:
    action: Literal["apply", "keep", "refuse"]
    reason: str


def choose_config(running: NodeTunnelConfig | None, read: NodeTunnelConfig, node: str) -> Decision:
    """Apply ``read``, keep ``running`` quietly, or refuse ``read`` saying why."""
    if read.node != node:
        return Decision("refuse", f"the file is for node {read.node!r}, this agent is {node!r}: check --node")
    if running is None:
        return Decision("apply", f"first config, version {read.version}")
    if read.version > running.version:
        return Decision("apply", f"version {read.version} replaces {running.version}")
    if read.version < running.version:
        return Decision("keep", f"version {read.version} is older than the running {running.version}")
    if read != running:
        return Decision(
            "refuse",
            f"version {read.version} changed without a new version number; the running one stays "
            "(the controller must raise the version with every change)",
        )
    return Decision("keep", f"version {read.version} already runs")
