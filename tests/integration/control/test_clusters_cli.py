"""``anycastlb clusters`` and ``pops … --tunnel-endpoint`` through typer's CliRunner against a real
``anycastlb control`` process on loopback (SQLite)."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from anycastlb.model.tunnel import NodeTunnelConfig
from tests.integration.control.test_cli import ok, run
from tests.support.control_plane import ControlProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ControlProcess]:
    with ControlProcess(tmp_path, extra_args=("--tunnel-prefix", "24", "--tunnel-grace", "600")) as process:
        yield process


def test_a_tenant_creates_a_cluster_registers_nodes_reads_configs_and_rotates(
    control: ControlProcess,
) -> None:
    url = control.url
    ok(url, "pops", "create", "fra", "--tunnel-endpoint", "192.0.2.10")
    shown = ok(url, "pops", "show", "fra").output
    assert "tunnel endpoint" in shown and "192.0.2.10" in shown
    ok(url, "tenants", "create", "acme")
    token = json.loads(ok(url, "tenants", "token", "create", "acme", "-o", "json").stdout)["secret"]

    created = json.loads(ok(url, "clusters", "create", "k1", "-o", "json", token=token).stdout)
    assert (created["network"], created["listen_port"]) == ("100.64.0.0/24", 51820)
    listed = ok(url, "clusters", "list", token=token).output
    assert "k1" in listed and "100.64.0.0/24" in listed and "51820" in listed

    nodes = json.loads(ok(url, "clusters", "set-nodes", "k1", "n1", "n2", "-o", "json", token=token).stdout)
    assert [n["address"] for n in nodes["nodes"]] == ["100.64.0.2", "100.64.0.3"]  # .1: fra's side
    table = ok(url, "clusters", "show", "k1", token=token).output
    assert "n1" in table and "100.64.0.2" in table

    configs = json.loads(ok(url, "clusters", "node-configs", "k1", token=token).stdout)
    parsed = [NodeTunnelConfig.model_validate(item) for item in configs["nodes"]]
    assert [(c.node, c.interface.peers[0].endpoint) for c in parsed] == [
        ("n1", "192.0.2.10:51820"),
        ("n2", "192.0.2.10:51820"),
    ]

    rotated = ok(url, "clusters", "rotate", "k1", token=token).output
    assert "100.64.0.4" in rotated and "100.64.0.2" in rotated  # the new and the previous address
    again = run(url, "clusters", "rotate", "k1", token=token)
    assert again.exit_code == 1 and "still rotating" in again.output

    refused = run(url, "pops", "set-tunnel-endpoint", "fra", "192.0.2.10:51820")
    assert refused.exit_code == 1 and "the port is each cluster's" in refused.output
    ok(url, "pops", "set-tunnel-endpoint", "fra", "none")
    configs = json.loads(ok(url, "clusters", "node-configs", "k1", token=token).stdout)
    assert all(item["interface"]["peers"] == [] for item in configs["nodes"])
    ok(url, "clusters", "delete", "k1", token=token)
    assert "k1" not in ok(url, "clusters", "list", token=token).output
