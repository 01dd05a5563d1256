"""The edge metrics the alert rules need (deploy/prometheus/anycastlb-alerts.yml): which version the
control plane wants against the one the edge runs, when the control plane last answered, which VIPs
the PoP should announce and which listeners it runs now, and limit refusals counted from 0."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY, CollectorRegistry

from anycastlb.dataplane import _core
from anycastlb.dataplane.limits import SharedCounters
from anycastlb.dataplane.metrics import LIMIT_REASONS, ListenerStats
from anycastlb.edge.config_metrics import ConfigStateCollector
from anycastlb.edge.follower import Follower, FollowerSettings
from anycastlb.edge.state_store import StateStore
from anycastlb.model.config import EdgeConfig
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import HealthView, ListenerHealth

STATE = {"pop": "fra", "version": 7, "load_balancers": []}


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def follower(tmp_path: Path, url: str, status: int) -> Follower:
    settings = FollowerSettings(url=url, pop="fra", token="secret", store=StateStore(tmp_path))  # noqa: S106
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(status, json=STATE)))
    made = Follower(settings, EdgeConfig(pop="fra"), HealthBoard(4096), SharedCounters(1, bytes(16)), client)
    made.notify = lambda: True
    return made


def test_an_edge_that_never_reached_the_control_plane_reports_its_last_success_as_never(
    tmp_path: Path,
) -> None:
    url = "http://never.test"
    watcher = follower(tmp_path, url, 503)

    asyncio.run(asyncio.wait_for(watcher._watch_once(0.0), 5))

    assert sample("anycastlb_control_last_success_timestamp_seconds", url=url) == 0


def test_an_answered_watch_sets_the_desired_version_and_the_time_of_the_last_success(
    tmp_path: Path,
) -> None:
    url = "http://answers.test"
    watcher = follower(tmp_path, url, 200)

    asyncio.run(asyncio.wait_for(watcher._watch_once(0.0), 5))

    assert sample("anycastlb_control_desired_version") == 7
    last = sample("anycastlb_control_last_success_timestamp_seconds", url=url)
    assert last is not None and abs(last - time.time()) < 5


def test_an_accepted_status_report_counts_as_a_success_too(tmp_path: Path) -> None:
    url = "http://reports.test"
    watcher = follower(tmp_path, url, 204)

    asyncio.run(asyncio.wait_for(watcher.report(), 5))

    assert (sample("anycastlb_control_last_success_timestamp_seconds", url=url) or 0) > 0


def edge_config(*addresses: str, bgp: bool = True) -> EdgeConfig:
    listeners: list[dict[str, Any]] = [
        {
            "name": f"l{index}",
            "address": address,
            "port": 443,
            "backends": [{"address": "10.0.0.1", "port": 80}],
        }
        for index, address in enumerate(addresses)
    ]
    block = {
        "local_as": 65001,
        "router_id": "192.0.2.11",
        "peers": [{"address": "192.0.2.1", "remote_as": 65000}],
    }
    return EdgeConfig.model_validate({"pop": "fra", "listeners": listeners, "bgp": block if bgp else None})


def scrape(config: EdgeConfig, serving: dict[str, bool]) -> CollectorRegistry:
    board = HealthBoard(4096)
    listeners = {name: ListenerHealth(serving=ok) for name, ok in serving.items()}
    board.publish(HealthView(0.0, 0.0, listeners).encode())
    registry = CollectorRegistry()
    registry.register(ConfigStateCollector(lambda: config, board))
    return registry


def test_each_vip_of_the_config_in_force_is_servable_or_not_as_the_health_board_says() -> None:
    registry = scrape(edge_config("198.51.100.1", "198.51.100.2"), {"l0": True, "l1": False})

    assert registry.get_sample_value("anycastlb_vip_servable", {"prefix": "198.51.100.1/32"}) == 1
    assert registry.get_sample_value("anycastlb_vip_servable", {"prefix": "198.51.100.2/32"}) == 0


def test_a_vip_or_listener_that_left_the_config_is_gone_from_the_next_scrape() -> None:
    running = [edge_config("198.51.100.1", "198.51.100.2")]
    board = HealthBoard(4096)
    board.publish(HealthView(0.0, 0.0, {"l0": ListenerHealth(serving=False)}).encode())
    registry = CollectorRegistry()
    registry.register(ConfigStateCollector(lambda: running[0], board))
    labels = {"listener": "l1", "address": "198.51.100.2", "port": "443", "protocol": "tcp"}
    assert registry.get_sample_value("anycastlb_listener_info", labels) == 1

    running[0] = edge_config("198.51.100.1")

    assert registry.get_sample_value("anycastlb_vip_servable", {"prefix": "198.51.100.2/32"}) is None
    assert registry.get_sample_value("anycastlb_listener_info", labels) is None
    assert registry.get_sample_value("anycastlb_vip_servable", {"prefix": "198.51.100.1/32"}) == 0


def test_without_a_bgp_block_there_is_nothing_to_announce_and_no_vip_is_exported() -> None:
    registry = scrape(edge_config("198.51.100.1", bgp=False), {"l0": True})

    assert registry.get_sample_value("anycastlb_vip_servable", {"prefix": "198.51.100.1/32"}) is None
    labels = {"listener": "l0", "address": "198.51.100.1", "port": "443", "protocol": "tcp"}
    assert registry.get_sample_value("anycastlb_listener_info", labels) == 1


def test_a_listener_exports_its_limit_refusals_at_zero_before_the_first_one() -> None:
    ListenerStats("fresh")

    assert set(LIMIT_REASONS) <= set(_core.REJECT_REASONS)
    for reason in LIMIT_REASONS:
        assert sample("anycastlb_connections_rejected_total", listener="fresh", reason=reason) == 0
