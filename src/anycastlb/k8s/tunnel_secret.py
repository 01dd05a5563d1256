"""The ``anycastlb-tunnel`` Secret: one key per node, ``<node>.json``, its NodeTunnelConfig.

The node agent's DaemonSet mounts it at its config directory (``anycastlb tunnel-agent
--config-dir DIR --node NAME`` reads ``DIR/<node>.json``). A Secret, not a ConfigMap: each
config holds the node's private key. Every node's agent can read every node's key this way (one
Secret mounted by one DaemonSet): a node is trusted with the cluster's traffic anyway, and one
Secret per node would need one DaemonSet per node. The controller logs which keys it wrote, never
their contents.

:func:`secret_data` is pure; :func:`write_secret` replaces the Secret whole (a node removed loses
its key) and only when the data changed.
"""

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

__all__ = ["SECRET_NAME", "secret_data", "write_secret"]

log = logging.getLogger("anycastlb.k8s")
SECRET_NAME = "anycastlb-tunnel"  # noqa: S105 - the Secret's name


def secret_data(configs: Mapping[str, Any]) -> dict[str, str]:
    """The Secret's ``data`` from the control plane's ``GET …/tunnel`` answer: base64 JSON per node."""
    return {
        f"{node['node']}.json": base64.b64encode(
            json.dumps(node, sort_keys=True, separators=(",", ":")).encode()
        ).decode("ascii")
        for node in configs["nodes"]
    }


async def write_secret(kube: AsyncClient, namespace: str, data: dict[str, str]) -> bool:
    """Create or replace the Secret with exactly ``data``; False when it already held it."""
    try:
        current = await kube.get(Secret, SECRET_NAME, namespace=namespace)
    except ApiError as error:
        if error.status.code != 404:
            raise
        await kube.create(
            Secret(
                metadata=ObjectMeta(
                    name=SECRET_NAME,
                    namespace=namespace,
                    labels={"app.kubernetes.io/managed-by": "anycastlb-controller"},
                ),
                type="Opaque",
                data=data,
            )
        )
        log.info("tunnel_secret_created namespace=%s nodes=%d", namespace, len(data))
        return True
    if (current.data or {}) == data:
        return False
    current.data = data
    current.stringData = None
    await kube.replace(current)
    log.info("tunnel_secret_updated namespace=%s nodes=%d", namespace, len(data))
    return True
