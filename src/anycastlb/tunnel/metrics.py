"""A Prometheus collector for tunnel interfaces, read from ``wg show NAME dump`` at scrape time.

Read per scrape rather than kept in gauges: the numbers are WireGuard's own (no second copy to go
stale when a peer is removed), and an edge without tunnels runs nothing at all. Peers are labelled
by name (node or PoP) from the config, never by key.

- ``anycastlb_tunnel_up{interface}``: 1 when ``wg`` could read the interface, 0 when it is missing
  (not created yet, wireguard-go died and waits for its restart).
- ``anycastlb_tunnel_handshake_age_seconds{interface,peer}``: seconds since the latest handshake
  (+Inf: none yet). WireGuard renews a session every 2 minutes while traffic flows and a node's
  keepalive (25 s) keeps it flowing: past ~3 minutes the peer is unreachable.
- ``anycastlb_tunnel_received_bytes_total`` / ``..._sent_bytes_total{interface,peer}``: bytes
  through the tunnel (WireGuard's counters, reset when the interface is recreated).
"""

import logging
import math
import subprocess
import time
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from anycastlb.model.tunnel import TunnelInterface
from anycastlb.tunnel.dump import PeerStats, parse_dump
from anycastlb.tunnel.interface import TunnelError, tool

__all__ = ["TunnelCollector", "read_dump"]

log = logging.getLogger("anycastlb.tunnel")


def read_dump(name: str) -> list[PeerStats] | None:
    """The interface's peers, or None if ``wg`` cannot read it (missing interface or tool)."""
    try:
        done = subprocess.run(
            [tool("wg"), "show", name, "dump"], capture_output=True, text=True, check=False, timeout=5
        )
    except (TunnelError, subprocess.TimeoutExpired) as error:
        log.warning("tunnel_dump_failed interface=%s error=%r", name, str(error))
        return None
    if done.returncode != 0:
        return None
    return parse_dump(done.stdout)


class TunnelCollector(Collector):
    """Samples for the interfaces ``interfaces()`` returns (the config in force when scraped)."""

    def __init__(
        self,
        interfaces: Callable[[], tuple[TunnelInterface, ...]],
        dump: Callable[[str], list[PeerStats] | None] = read_dump,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._interfaces = interfaces
        self._dump = dump
        self._now = now

    def collect(self) -> Iterable[Metric]:
        interfaces = self._interfaces()
        if not interfaces:
            return []
        up = GaugeMetricFamily(
            "anycastlb_tunnel_up", "1: wg reads the tunnel interface; 0: it is missing", labels=["interface"]
        )
        age = GaugeMetricFamily(
            "anycastlb_tunnel_handshake_age_seconds",
            "Seconds since the peer's latest WireGuard handshake (+Inf: none yet)",
            labels=["interface", "peer"],
        )
        received = CounterMetricFamily(
            "anycastlb_tunnel_received_bytes",
            "Bytes received from the peer through the tunnel",
            labels=["interface", "peer"],
        )
        sent = CounterMetricFamily(
            "anycastlb_tunnel_sent_bytes",
            "Bytes sent to the peer through the tunnel",
            labels=["interface", "peer"],
        )
        now = self._now()
        for interface in interfaces:
            peers = self._dump(interface.name)
            up.add_metric([interface.name], 0.0 if peers is None else 1.0)
            names = {peer.public_key: peer.name for peer in interface.peers}
            for stats in peers or ():
                peer = names.get(stats.public_key)
                if peer is None:
                    continue  # removed from the config, the interface not synced yet
                labels = [interface.name, peer]
                handshake = stats.latest_handshake
                age.add_metric(labels, math.inf if handshake == 0 else max(0.0, now - handshake))
                received.add_metric(labels, float(stats.received_bytes))
                sent.add_metric(labels, float(stats.sent_bytes))
        return [up, age, received, sent]
