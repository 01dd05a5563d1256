"""The tunnels' shells with their I/O replaced: the set of interfaces (plan execution, isolation of
a failing interface, restart of a dead wireguard-go with backoff), the metrics collector, and the
node file reader (parse errors never echo a value)."""

import math
import shutil
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from typer.testing import CliRunner

from anycastlb.cli import app
from anycastlb.edge.desired_listeners import edge_config_for
from anycastlb.edge.tunnels import check_tunnels
from anycastlb.model.config import ConfigError, EdgeConfig
from anycastlb.model.desired import PopDesiredState
from anycastlb.model.tunnel import TunnelInterface
from anycastlb.tunnel import interface as interface_module
from anycastlb.tunnel.devices import TunnelSet
from anycastlb.tunnel.dump import PeerStats
from anycastlb.tunnel.interface import TunnelError
from anycastlb.tunnel.metrics import TunnelCollector
from anycastlb.tunnel.node_file import NodeConfigError, NodeConfigFile
from anycastlb.tunnel.plan import InterfaceChange
from tests.unit.test_tunnel_pure import KEYS, interface, node_config


class FakeDevice:
    """Records what was done; ``fail_up`` names interfaces whose creation fails."""

    fail_up: ClassVar[set[str]] = set()
    journal: ClassVar[list[str]] = []

    def __init__(self, wanted: TunnelInterface) -> None:
        self.interface = wanted
        self.code: int | None = None

    @property
    def name(self) -> str:
        return self.interface.name

    def up(self) -> None:
        if self.name in self.fail_up:
            raise TunnelError(f"tunnel {self.name}: cannot")
        self.journal.append(f"up {self.name}")

    def change(self, change: InterfaceChange) -> None:
        self.journal.append(f"change {self.name} wireguard={change.wireguard}")
        self.interface = change.interface

    def exited(self) -> int | None:
        return self.code

    def down(self) -> None:
        self.journal.append(f"down {self.name}")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tunnels(clock: Clock) -> TunnelSet:
    FakeDevice.fail_up = set()
    FakeDevice.journal = []
    return TunnelSet(device=FakeDevice, clock=clock)  # type: ignore[arg-type]


def test_apply_creates_changes_and_removes_as_planned(tunnels: TunnelSet) -> None:
    tunnels.apply((interface("wg-a"), interface("wg-b")))
    tunnels.apply((interface("wg-a", listen_port=51821),))
    assert FakeDevice.journal == ["up wg-a", "up wg-b", "down wg-b", "change wg-a wireguard=True"]
    assert tunnels.complete
    tunnels.apply((interface("wg-a", listen_port=51821),))  # the same again: nothing
    assert len(FakeDevice.journal) == 4


def test_an_interface_that_fails_is_left_out_retried_after_its_backoff_and_the_others_run(
    tunnels: TunnelSet, clock: Clock
) -> None:
    FakeDevice.fail_up = {"wg-a"}
    tunnels.apply((interface("wg-a"), interface("wg-b")))
    assert set(tunnels.devices) == {"wg-b"}
    assert not tunnels.complete
    clock.now += 0.4
    tunnels.check()
    assert set(tunnels.devices) == {"wg-b"}  # 0.5 s not passed yet
    FakeDevice.fail_up = set()
    clock.now += 0.2
    tunnels.check()
    assert set(tunnels.devices) == {"wg-a", "wg-b"}
    assert tunnels.complete


def test_a_dead_wireguard_go_is_restarted_with_a_growing_wait(tunnels: TunnelSet, clock: Clock) -> None:
    tunnels.apply((interface("wg-a"),))
    waits = []
    for _ in range(4):
        device = tunnels.devices["wg-a"]
        device.code = 1  # type: ignore[attr-defined]
        tunnels.check()
        assert "wg-a" not in tunnels.devices
        started = clock.now
        while "wg-a" not in tunnels.devices:
            clock.now += 0.25
            tunnels.check()
        waits.append(clock.now - started)
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_close_removes_every_interface(tunnels: TunnelSet) -> None:
    tunnels.apply((interface("wg-a"), interface("wg-b")))
    tunnels.close()
    assert tunnels.devices == {}
    assert FakeDevice.journal[-2:] == ["down wg-a", "down wg-b"]


# ---- metrics -----------------------------------------------------------------------------------


def test_the_collector_names_peers_and_gives_age_bytes_and_up() -> None:
    dumps = {
        "wg-a": [
            PeerStats(KEYS[1], "198.51.100.9:4000", 990, 10, 20),
            PeerStats(KEYS[2], None, 0, 0, 0),
            PeerStats(KEYS[4], None, 0, 0, 0),  # not (any more) in the config: left out
        ],
    }
    collector = TunnelCollector(lambda: (interface("wg-a"), interface("wg-b")), dumps.get, now=lambda: 1000.0)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }
    assert samples[("anycastlb_tunnel_up", (("interface", "wg-a"),))] == 1
    assert samples[("anycastlb_tunnel_up", (("interface", "wg-b"),))] == 0
    node1 = (("interface", "wg-a"), ("peer", "node1"))
    node2 = (("interface", "wg-a"), ("peer", "node2"))
    assert samples[("anycastlb_tunnel_handshake_age_seconds", node1)] == 10
    assert math.isinf(samples[("anycastlb_tunnel_handshake_age_seconds", node2)])
    assert samples[("anycastlb_tunnel_received_bytes_total", node1)] == 10
    assert samples[("anycastlb_tunnel_sent_bytes_total", node1)] == 20
    assert len(samples) == 2 + 3 * 2


def test_without_tunnels_the_collector_reads_nothing() -> None:
    def never(name: str) -> list[PeerStats] | None:
        raise AssertionError(f"read {name}")

    assert list(TunnelCollector(lambda: (), never).collect()) == []


# ---- the node file -----------------------------------------------------------------------------


def test_the_node_file_is_read_once_per_change(tmp_path: Path) -> None:
    source = NodeConfigFile(tmp_path, "node1")
    assert source.read_if_changed() is None  # absent
    (tmp_path / "node1.json").write_text(node_config(3).model_dump_json())
    assert source.read_if_changed() == node_config(3)
    assert source.read_if_changed() is None
    staged = tmp_path / "staged"
    staged.write_text(node_config(4).model_dump_json())
    staged.replace(tmp_path / "node1.json")  # as a Secret volume swaps its files
    assert source.read_if_changed() == node_config(4)


def test_a_bad_node_file_names_the_field_but_never_the_value(tmp_path: Path) -> None:
    text = node_config(3).model_dump_json().replace(KEYS[1], KEYS[1][:-2] + "!=")
    (tmp_path / "node1.json").write_text(text)
    with pytest.raises(NodeConfigError, match=r"interface\.private_key") as raised:
        NodeConfigFile(tmp_path, "node1").read_if_changed()
    assert KEYS[1][:-2] not in str(raised.value)


# ---- the edge's config in --control mode -------------------------------------------------------


def test_the_edge_runs_the_tunnels_of_the_base_and_of_the_desired_state() -> None:
    base = EdgeConfig(pop="fra", tunnels=(interface("wg-static"),))
    state = PopDesiredState(pop="fra", version=3, tunnels=(interface("wg-prod"),))
    assert [t.name for t in edge_config_for(base, state).tunnels] == ["wg-static", "wg-prod"]


def test_a_desired_tunnel_named_like_one_in_base_yaml_is_refused() -> None:
    base = EdgeConfig(pop="fra", tunnels=(interface("wg-prod"),))
    state = PopDesiredState(pop="fra", version=3, tunnels=(interface("wg-prod"),))
    with pytest.raises(ConfigError, match=r"'wg-prod' is also in base\.yaml"):
        edge_config_for(base, state)


def test_an_edge_config_with_two_tunnels_of_one_name_is_refused_whole() -> None:
    check_tunnels(EdgeConfig(pop="fra", tunnels=(interface("wg-a"), interface("wg-b"))))
    with pytest.raises(ConfigError, match=r"tunnels: two tunnel interfaces are named 'wg-a'"):
        check_tunnels(EdgeConfig(pop="fra", tunnels=(interface("wg-a"), interface("wg-a"))))


# ---- what a missing piece says -----------------------------------------------------------------


def test_a_missing_tool_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interface_module, "_PACKAGES", {"wg-missing-here": "wireguard-tools"})
    with pytest.raises(
        TunnelError, match=r"`wg-missing-here` is not installed: apt-get install wireguard-tools"
    ):
        interface_module.tool("wg-missing-here")


def test_without_dev_net_tun_userspace_wireguard_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if shutil.which("wireguard-go") is None or shutil.which("wg") is None:
        pytest.skip("wireguard-go and wg are needed to reach the /dev/net/tun check")
    monkeypatch.setattr(interface_module, "TUN_DEVICE", tmp_path / "tun")
    with pytest.raises(TunnelError, match=r"/dev/net/tun|tun is missing") as raised:
        interface_module.TunnelDevice(interface("wg-a"))._start_userspace()
    assert "modprobe tun" in str(raised.value)
    assert "NET_ADMIN" in str(raised.value)


def test_edge_check_refuses_two_tunnels_of_one_name(tmp_path: Path) -> None:
    config = EdgeConfig(pop="fra", tunnels=(interface("wg-a"), interface("wg-b")))
    data = config.model_dump(mode="json")
    data["tunnels"][1]["name"] = "wg-a"
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["edge", "--config", str(path), "--check"])
    assert result.exit_code == 2
    assert "two tunnel interfaces are named 'wg-a'" in result.output
