"""``anycastlb controller``: credentials, the probe port, leader election, the controller.

Start order: the token and the credentials are checked, then the probe/metrics port is bound
(a port in use stops the start with a message naming it, k8s/probes.py), then the control plane
is greeted and the election begins. If the probe server or the election ever ends with an error,
the process exits non-zero instead of running on half alive.
"""

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ConfigError

from anycastlb.k8s.control_client import ControlClient, ControlError
from anycastlb.k8s.controller import Controller
from anycastlb.k8s.leader import LeaderElection
from anycastlb.k8s.metrics import ControllerMetrics
from anycastlb.k8s.probes import PortUnavailableError, Readiness, readiness, serve_probes
from anycastlb.k8s.views import ControllerSettings

__all__ = ["ControllerOptions", "StartError", "run_controller"]

log = logging.getLogger("anycastlb.k8s")
TOKEN_ENV = "ANYCASTLB_TOKEN"  # noqa: S105 - the variable's name
_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class StartError(RuntimeError):
    """The controller cannot start; the message says what to set."""


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    control_url: str
    settings: ControllerSettings
    kubeconfig: Path | None = None
    leader_namespace: str | None = None
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9101
    resync: float = 300.0
    workers: int = 4


def kube_config(path: Path | None) -> KubeConfig:
    """Credentials as every client resolves them: --kubeconfig, else in-cluster, else KUBECONFIG/~/.kube."""
    try:
        return KubeConfig.from_file(path) if path is not None else KubeConfig.from_env()
    except (ConfigError, OSError) as error:
        raise StartError(
            f"no Kubernetes credentials ({error}); run in a cluster with a service account, set "
            "KUBECONFIG, or pass --kubeconfig PATH"
        ) from None


def leader_namespace(option: str | None) -> str:
    if option:
        return option
    with contextlib.suppress(OSError):
        return _SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return "default"


async def run_controller(options: ControllerOptions) -> int:
    for noisy in ("httpx", "httpx2"):  # one INFO line per request (every lease renewal) otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise StartError(f"set {TOKEN_ENV} to the tenant's API token (`anycastlb tenants token create NAME`)")
    config = kube_config(options.kubeconfig)
    kube = AsyncClient(config=config)
    control = ControlClient(options.control_url, token)
    metrics = ControllerMetrics()
    namespace = leader_namespace(options.leader_namespace)
    election = LeaderElection(kube, namespace, f"anycastlb-controller-{options.settings.cluster}")
    leading: list[Controller] = []  # the controller while this replica leads

    def ready() -> Readiness:
        return readiness(
            leading=election.leading,
            lease_answered=election.lease_answered,
            synced=bool(leading) and leading[0].synced,
        )

    try:
        probes = await serve_probes(options.metrics_host, options.metrics_port, metrics, ready)
    except PortUnavailableError as error:
        await control.close()
        raise StartError(str(error)) from None
    try:
        tenant = await control.whoami()
    except ControlError as error:
        log.warning("control_plane_not_ready error=%r (retried when leading)", str(error))
        tenant = "?"
    log.info(
        "controller_starting cluster=%s tenant=%s control=%s lease=%s/%s identity=%s",
        options.settings.cluster,
        tenant,
        options.control_url,
        namespace,
        election.name,
        election.identity,
    )

    async def lead() -> None:
        metrics.leader.set(1)
        try:
            controller = Controller(
                kube,
                control,
                options.settings,
                metrics,
                resync=options.resync,
                workers=options.workers,
                namespace=namespace,
            )
            leading.append(controller)
            while True:
                try:
                    await controller.run()
                except ControlError as error:
                    log.warning("control_plane_unreachable error=%r retry_in=5s", str(error))
                    await asyncio.sleep(5)
        finally:
            leading.clear()
            metrics.leader.set(0)

    code = await _run_until_stopped(probes, election, lead)
    await control.close()
    return code


async def _run_until_stopped(
    probes: asyncio.Server, election: LeaderElection, lead: Callable[[], Coroutine[Any, Any, None]]
) -> int:
    """Serve the probes and take part in the election until SIGTERM/SIGINT (0), or until either
    ends with an error (1, logged): a controller without /healthz or without an election is of no
    use, and its restart is what the operator needs to see."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stopping = asyncio.create_task(stop.wait())
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(probes.serve_forever(), name="probes"),
        asyncio.create_task(election.run(lead), name="election"),
    ]
    await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for task in tasks:
        if task.done():  # neither ends on its own: an error we did not expect
            error = None if task.cancelled() else task.exception()
            log.error("controller_failed part=%s error=%r action=exit", task.get_name(), repr(error))
            code = 1
    log.info("controller_stopping")
    was_leading = election.leading
    for task in (stopping, *tasks):
        task.cancel()
    await asyncio.gather(stopping, *tasks, return_exceptions=True)
    probes.close()
    if was_leading:
        await election.release()
    return code
