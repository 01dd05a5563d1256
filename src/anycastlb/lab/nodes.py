"""The lab's worker nodes: the loopback demo's nginx, listening on a node address in a namespace.

Two changes to :class:`NginxBackend`'s configuration, both as a real ingress controller behind the
edge would be set up: it trusts PROXY headers from the cluster LAN (where the PoPs connect from),
not only from loopback; and its answer also names the address the connection came from
(``via=$realip_remote_addr``), which is the PoP's cluster address. So every answer says which node
served it, which client address it saw, and through which PoP it came::

    node=node2 client=10.10.0.7 via=10.30.0.11
"""

from pathlib import Path

from anycastlb.lab.edge_config import HEALTH_PATH
from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.topology import NODE_PORT, Node

__all__ = ["LabNode"]

_TRUST = "set_real_ip_from 127.0.0.0/8;"
_ANSWER = 'client=$remote_addr\\n";'


class LabNode(NginxBackend):
    def __init__(self, workdir: Path, node: Node, trusted: str) -> None:
        super().__init__(workdir, node.name, port=NODE_PORT, address=node.address)
        self.trusted = trusted

    def config(self) -> str:
        text = super().config()
        if _TRUST not in text or _ANSWER not in text:
            raise RuntimeError(
                "anycastlb.lab.nginx changed its configuration text: update LabNode.config (lab/nodes.py)"
            )
        text = text.replace(_TRUST, f"set_real_ip_from {self.trusted}; {_TRUST}", 1)
        return text.replace(_ANSWER, 'client=$remote_addr via=$realip_remote_addr\\n";', 1)

    def write_files(self) -> Path:
        """Write ``nginx.conf`` and the health file; returns the config's path."""
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        (self.www / HEALTH_PATH.lstrip("/")).write_text("ok\n")
        return conf
