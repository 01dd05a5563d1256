"""Metrics computed at scrape time from the config the edge runs now and the health board.

Why not gauges that a process sets: the edge's other metrics live in multiprocess files, and a
sample in such a file cannot be removed, so a listener or VIP that left the config would keep its
last value until a restart, and an alert on it would keep firing. These are derived when Prometheus
asks, from the config in force, so what left the config is gone from the next scrape.

- ``anycastlb_listener_info{listener, address, port, protocol}`` = 1 for each listener the edge
  runs: what a listener name stands for, and a join that keeps alerts to current listeners.
- ``anycastlb_vip_servable{prefix}``, with a ``bgp:`` block only: 1 while a listener on the VIP has
  a healthy backend (the announcer's input: the PoP should announce it unless it drains), else 0.
  Left out of a scrape in which the board could not be read whole (a write under way each time).
"""

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from anycastlb.edge.vips import vip_listeners, vip_serving
from anycastlb.model.config import EdgeConfig
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import HealthView

__all__ = ["ConfigStateCollector"]

_BOARD_READS = 3


class ConfigStateCollector(Collector):
    def __init__(self, config: Callable[[], EdgeConfig], board: HealthBoard) -> None:
        self.config = config
        self.board = board

    def collect(self) -> Iterator[Metric]:
        config = self.config()
        info = GaugeMetricFamily(
            "anycastlb_listener_info",
            "Each listener the edge runs now (1), with its address, port and protocol",
            labels=["listener", "address", "port", "protocol"],
        )
        for listener in config.listeners:
            info.add_metric([listener.name, str(listener.address), str(listener.port), listener.protocol], 1)
        yield info
        if config.bgp is None:
            return
        view = self._view()
        if view is None:
            return
        servable = GaugeMetricFamily(
            "anycastlb_vip_servable",
            "1 while a listener on the VIP has a healthy backend, so the PoP should announce it "
            "unless draining; 0 when none has",
            labels=["prefix"],
        )
        for prefix, serving in sorted(vip_serving(vip_listeners(config), view).items(), key=str):
            servable.add_metric([str(prefix)], 1 if serving else 0)
        yield servable

    def _view(self) -> HealthView | None:
        for _ in range(_BOARD_READS):
            snapshot = self.board.read()
            if snapshot is not None:
                try:
                    return HealthView.decode(snapshot[1])
                except (ValueError, KeyError, TypeError):
                    return None
        return None
