"""The controller's tunnel loop: register the node set, learn tunnel addresses, write the Secret.

Runs only with ``--tunnels``. One sync: ``PUT …/clusters/{cluster}/nodes`` with the name of every
Node reached through a tunnel (every Node, or those ``--tunnel-nodes`` matches: the controller's
``_node_names``; a node left out loses its registration, its key and its Secret entry). The answer
gives each node's tunnel addresses (the current one, and during a key rotation the previous one
too); then ``GET …/tunnel`` and the ``anycastlb-tunnel`` Secret replaced if it changed
(k8s/tunnel_secret.py). When the addresses changed the controller rebuilds its node index and
reconciles every Service. A sync runs after every Node change, at every resync, and just after
a rotation's grace period ends (so the previous addresses leave the backends). A failure (control
plane or API server down) is retried with backoff; the Services keep the addresses they had.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from anycastlb.k8s.control_client import ControlClient, ControlError
from anycastlb.k8s.tunnel_secret import secret_data, write_secret

__all__ = ["TunnelSync"]

log = logging.getLogger("anycastlb.k8s")
_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


class TunnelSync:
    def __init__(
        self,
        kube: AsyncClient,
        control: ControlClient,
        cluster: str,
        namespace: str,
        changed: Callable[[], None],
    ) -> None:
        self.kube, self.control, self.cluster, self.namespace = kube, control, cluster, namespace
        self.changed = changed  # called when the tunnel addresses changed
        self.addresses: dict[str, tuple[str, ...]] = {}
        self._next_end: datetime | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def start(self, nodes: list[str]) -> None:
        """Create the cluster (idempotent) and sync once; ControlError if the control plane refuses."""
        await self.control.ensure_cluster(self.cluster)
        await self.sync(nodes)

    async def sync(self, nodes: list[str]) -> None:
        registered = await self.control.put_nodes(self.cluster, nodes)
        configs = await self.control.node_configs(self.cluster)
        await write_secret(self.kube, self.namespace, secret_data(configs))
        now = datetime.now(UTC)
        self._next_end = min((end for end in registered.rotation_ends if end > now), default=None)
        if registered.backend_addresses != self.addresses:
            log.info(
                "tunnel_nodes cluster=%s version=%d nodes=%d rotating=%d",
                self.cluster,
                registered.version,
                len(registered.backend_addresses),
                sum(1 for found in registered.backend_addresses.values() if len(found) > 1),
            )
            self.addresses = registered.backend_addresses
            self.changed()

    def _wait(self, resync: float) -> float:
        if self._next_end is None:
            return resync
        # a moment after the grace ends: the control plane's sweep drops it within 5 s
        return max(0.5, min(resync, (self._next_end - datetime.now(UTC)).total_seconds() + 6.0))

    async def run(self, nodes: Callable[[], list[str]], resync: float) -> None:
        failures = 0
        while True:
            delay = _BACKOFF[min(failures, len(_BACKOFF)) - 1] if failures else self._wait(resync)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            try:
                await self.sync(nodes())
                failures = 0
            except (ControlError, ApiError) as error:
                failures += 1
                log.warning(
                    "tunnel_sync_failed cluster=%s error=%r retry=%d", self.cluster, str(error), failures
                )
