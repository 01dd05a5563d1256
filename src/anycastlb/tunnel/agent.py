"""``anycastlb tunnel-agent``: the node side of the tunnels, one process per node (a DaemonSet).

Loop, once per poll interval: if ``DIR/<node>.json`` changed, parse it and let
:func:`~anycastlb.tunnel.versions.choose_config` decide; apply a newer version to the interface
(in place: peers that did not change keep their sessions, see :mod:`anycastlb.tunnel.plan`); then
let the :class:`~anycastlb.tunnel.devices.TunnelSet` restart a wireguard-go that died. A file that
does not parse, or is refused, leaves the running tunnel as it is: a bad Secret must not cut a
node off. SIGTERM/SIGINT remove the interface and exit 0.

``/metrics`` (optional) serves the handshake age and bytes per PoP peer and the running version.
"""

import http.server
import logging
import signal
import socketserver
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from anycastlb.model.tunnel import NodeTunnelConfig
from anycastlb.tunnel.devices import TunnelSet
from anycastlb.tunnel.metrics import TunnelCollector
from anycastlb.tunnel.node_file import NodeConfigError, NodeConfigFile
from anycastlb.tunnel.plan import TunnelPlanError
from anycastlb.tunnel.versions import choose_config

__all__ = ["AgentSettings", "run_agent"]

log = logging.getLogger("anycastlb.tunnel")


@dataclass(frozen=True)
class AgentSettings:
    config_dir: Path
    node: str
    metrics: tuple[str, int] | None = None  # address, port
    poll_interval: float = 1.0


@dataclass
class _AgentState:
    running: NodeTunnelConfig | None = None
    refused: int = 0
    missing_logged: bool = field(default=False)


class _AgentCollector(Collector):
    def __init__(self, state: _AgentState) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        running = self._state.running
        version = GaugeMetricFamily(
            "anycastlb_tunnel_agent_config_version",
            "Version of the node tunnel config that runs (-1: none yet)",
        )
        version.add_metric([], -1.0 if running is None else float(running.version))
        refused = CounterMetricFamily(
            "anycastlb_tunnel_agent_configs_refused",
            "Config files not applied: unparsable, for another node, or changed without a new version",
        )
        refused.add_metric([], float(self._state.refused))
        return [version, refused]


class _MetricsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup: 5 s lost where DNS is unreachable."""
        socketserver.TCPServer.server_bind(self)


def _metrics_server(settings: AgentSettings, state: _AgentState) -> http.server.HTTPServer | None:
    if settings.metrics is None:
        return None
    registry = CollectorRegistry()
    registry.register(_AgentCollector(state))
    registry.register(TunnelCollector(lambda: () if state.running is None else (state.running.interface,)))
    server = _MetricsServer(settings.metrics, MetricsHandler.factory(registry))
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def _consider(
    settings: AgentSettings, source: NodeConfigFile, state: _AgentState, tunnels: TunnelSet
) -> None:
    try:
        read = source.read_if_changed()
    except (NodeConfigError, OSError) as error:
        state.refused += 1
        log.error("tunnel_config_refused node=%s error=%r action=keep-running", settings.node, str(error))
        return
    if read is None:
        if state.running is None and not source.path.exists() and not state.missing_logged:
            state.missing_logged = True
            log.warning("tunnel_config_missing path=%s action=wait", source.path)
        return
    decision = choose_config(state.running, read, settings.node)
    if decision.action == "keep":  # logged: once per change of the file, not per poll
        log.info("tunnel_config_kept node=%s reason=%r", settings.node, decision.reason)
        return
    if decision.action == "refuse":
        state.refused += 1
        log.error(
            "tunnel_config_refused node=%s error=%r action=keep-running", settings.node, decision.reason
        )
        return
    try:
        tunnels.apply((read.interface,))
    except TunnelPlanError as error:
        state.refused += 1
        log.error("tunnel_config_refused node=%s error=%r action=keep-running", settings.node, str(error))
        return
    state.running = read
    log.info(
        "tunnel_config_applied node=%s cluster=%s version=%d peers=%d complete=%s",
        read.node,
        read.cluster,
        read.version,
        len(read.interface.peers),
        tunnels.complete,
    )


def run_agent(settings: AgentSettings, tunnels: TunnelSet | None = None) -> int:
    """Run until SIGTERM or SIGINT; returns the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("tunnel_agent_stopping signal=%s", signal.Signals(signum).name)
        stop.set()

    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, on_signal)
    tunnels = tunnels or TunnelSet()
    state = _AgentState()
    source = NodeConfigFile(settings.config_dir, settings.node)
    server = _metrics_server(settings, state)
    log.info(
        "tunnel_agent_started node=%s config=%s metrics=%s",
        settings.node,
        source.path,
        "off" if settings.metrics is None else f"{settings.metrics[0]}:{settings.metrics[1]}",
    )
    try:
        while not stop.is_set():
            _consider(settings, source, state, tunnels)
            tunnels.check()
            stop.wait(settings.poll_interval)
    finally:
        tunnels.close()
        if server is not None:
            server.shutdown()
            server.server_close()
    log.info("tunnel_agent_stopped node=%s", settings.node)
    return 0
