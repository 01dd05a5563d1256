"""``anycastlb controller``: credentials, leader election, the controller, /healthz and /metrics."""

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ConfigError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from anycastlb.k8s.control_client import ControlClient, ControlError
from anycastlb.k8s.controller import Controller
from anycastlb.k8s.leader import LeaderElection
from anycastlb.k8s.metrics import ControllerMetrics
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


async def _serve_health(options: ControllerOptions, metrics: ControllerMetrics, ready: asyncio.Event) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b"/"
            if path == b"/metrics":
                body, status, kind = generate_latest(metrics.registry), "200 OK", CONTENT_TYPE_LATEST
            elif path in (b"/healthz", b"/readyz"):
                alive = ready.is_set() or path == b"/healthz"
                body = b"ok\n" if alive else b"starting\n"
                status, kind = ("200 OK" if alive else "503 Service Unavailable"), "text/plain"
            else:
                body, status, kind = b"not found\n", "404 Not Found", "text/plain"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, options.metrics_host, options.metrics_port)
    async with server:
        await server.serve_forever()


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
    ready = asyncio.Event()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        tenant = await control.whoami()
    except ControlError as error:
        log.warning("control_plane_not_ready error=%r (retried when leading)", str(error))
        tenant = "?"
    namespace = leader_namespace(options.leader_namespace)
    election = LeaderElection(kube, namespace, f"anycastlb-controller-{options.settings.cluster}")
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
                kube, control, options.settings, metrics, resync=options.resync, workers=options.workers
            )
            ready.set()
            while True:
                try:
                    await controller.run()
                except ControlError as error:
                    log.warning("control_plane_unreachable error=%r retry_in=5s", str(error))
                    await asyncio.sleep(5)
        finally:
            metrics.leader.set(0)

    tasks = [
        asyncio.create_task(_serve_health(options, metrics, ready)),
        asyncio.create_task(election.run(lead)),
    ]
    await stop.wait()
    log.info("controller_stopping")
    leading = election.leading
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if leading:
        await election.release()
    await control.close()
    return 0
