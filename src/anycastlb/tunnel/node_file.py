"""The node's config file (``DIR/<node>.json``): noticed when it changes, parsed without echoes.

A Kubernetes Secret volume replaces its files by swapping a symlink (``..data``), so "changed" is
judged on the file the name resolves to (inode, mtime, size), checked every poll. A parse error
names the field, never the value: a wrong value may be a private key.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from anycastlb.model.tunnel import NodeTunnelConfig

__all__ = ["NodeConfigError", "NodeConfigFile"]


class NodeConfigError(ValueError):
    """The file is not a NodeTunnelConfig; the message says where, not what the value was."""


@dataclass(frozen=True)
class _Identity:
    inode: int
    mtime_ns: int
    size: int


def parse_node_config(text: str, path: Path) -> NodeTunnelConfig:
    try:
        return NodeTunnelConfig.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'the document'}: {problem['msg']}"
            for problem in error.errors(include_input=False)
        )
        raise NodeConfigError(f"{path} is not a node tunnel config: {problems}") from None


class NodeConfigFile:
    def __init__(self, directory: Path, node: str) -> None:
        self.path = directory / f"{node}.json"
        self._seen: _Identity | None = None

    def read_if_changed(self) -> NodeTunnelConfig | None:
        """The config if the file changed since the last call; None if unchanged or absent.

        Raises NodeConfigError for a changed file that does not parse (reported once per change)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._seen = None
            return None
        identity = _Identity(stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if identity == self._seen:
            return None
        self._seen = identity
        return parse_node_config(self.path.read_text(), self.path)
