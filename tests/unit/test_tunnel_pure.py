"""The tunnels' pure pieces: the ``wg`` config text (golden), the reconcile plan, the agent's choice
of version, the ``wg show dump`` parser."""

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from anycastlb.model.tunnel import NodeTunnelConfig, TunnelInterface
from anycastlb.tunnel.dump import PeerStats, parse_dump
from anycastlb.tunnel.plan import InterfaceChange, TunnelPlan, TunnelPlanError, plan_tunnels
from anycastlb.tunnel.versions import choose_config
from anycastlb.tunnel.wg_conf import render_conf

GOLDEN = Path(__file__).parent / "golden"
KEYS = [
    "eEyAjbsXwK0Hm9fq0OS8bsv6Ga9I0aLg/MVVuaJWOXE=",
    "aBaTmmj+Ba9Ce13/k9BN5YzNTrCk3uDW7jSLzR3BOXM=",
    "kCnkYytvtN7vJGt9J0VTBm4NxNZ4P0p2SsO2NQ0GSGs=",
    "3oMDdTMFYRX3UTxLjEkmM3ZL0cQWvB2ZCYwvhAv0n0U=",
    "+MbSWLvm7pzn4nvbZV2jsG0wLwy6nVIxNfg9I97v/Vs=",
]


def interface(name: str = "wg-prod", **changes: Any) -> TunnelInterface:
    data: dict[str, Any] = {
        "name": name,
        "private_key": KEYS[0],
        "addresses": ["100.96.0.1/24"],
        "listen_port": 51820,
        "peers": [
            {"name": "node1", "public_key": KEYS[1], "allowed_ips": ["100.96.0.11/32"]},
            {"name": "node2", "public_key": KEYS[2], "allowed_ips": ["100.96.0.12/32", "fd00::12/128"]},
        ],
    }
    data.update(changes)
    return TunnelInterface.model_validate(data)


def node_side() -> TunnelInterface:
    return TunnelInterface.model_validate(
        {
            "name": "anycastlb0",
            "private_key": KEYS[1],
            "addresses": ["100.96.0.11/24"],
            "peers": [
                {
                    "name": "fra",
                    "public_key": KEYS[3],
                    "allowed_ips": ["100.96.0.1/32"],
                    "endpoint": "203.0.113.7:51820",
                    "persistent_keepalive": 25,
                }
            ],
        }
    )


# ---- wg_conf -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "built"), [("pop", interface), ("node", node_side)])
def test_the_wg_config_text_matches_the_golden_file(name: str, built: Any) -> None:
    rendered = render_conf(built())
    golden = GOLDEN / f"wg_{name}.conf"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), "run with UPDATE_GOLDEN=1 after checking the diff"


def test_the_config_text_has_only_what_wg_setconf_reads() -> None:
    """[Interface] then one [Peer] per peer, and none of wg-quick's keys, which `wg setconf`
    refuses (that `wg` accepts the text is shown by tests/e2e/test_tunnel.py)."""
    text = render_conf(interface())
    sections = [line for line in text.splitlines() if line.startswith("[")]
    assert sections == ["[Interface]", "[Peer]", "[Peer]"]
    assert "Address" not in text and "MTU" not in text  # wg-quick keys: `wg setconf` refuses them
    assert "AllowedIPs = 100.96.0.12/32, fd00::12/128" in text


def test_the_private_key_appears_only_in_the_config_text_never_in_a_repr() -> None:
    built = interface()
    assert KEYS[0] in render_conf(built)
    assert KEYS[0] not in repr(built)


# ---- plan --------------------------------------------------------------------------------------


def test_equal_sets_make_an_empty_plan() -> None:
    assert plan_tunnels({"wg-prod": interface()}, (interface(),)).empty


def test_new_interfaces_are_created_and_missing_ones_removed() -> None:
    plan = plan_tunnels({"wg-old": interface("wg-old")}, (interface("wg-new"),))
    assert plan == TunnelPlan(create=(interface("wg-new"),), remove=("wg-old",))


def test_a_peer_change_is_a_wireguard_sync_that_keeps_the_interface() -> None:
    fewer = interface(peers=[{"name": "node1", "public_key": KEYS[1], "allowed_ips": ["100.96.0.11/32"]}])
    plan = plan_tunnels({"wg-prod": interface()}, (fewer,))
    assert plan == TunnelPlan(change=(InterfaceChange(fewer, True, (), (), False),))


@pytest.mark.parametrize(
    ("changes", "wireguard", "add", "remove", "mtu"),
    [
        ({"private_key": KEYS[4]}, True, (), (), False),  # a rotated key
        ({"listen_port": 51821}, True, (), (), False),
        ({"mtu": 1380}, False, (), (), True),
        ({"addresses": ["100.96.0.1/24", "fd00::1/64"]}, False, ("fd00::1/64",), (), False),
        ({"addresses": ["100.96.1.1/24"]}, False, ("100.96.1.1/24",), ("100.96.0.1/24",), False),
    ],
)
def test_each_change_touches_only_what_differs(
    changes: dict[str, Any], wireguard: bool, add: tuple[str, ...], remove: tuple[str, ...], mtu: bool
) -> None:
    wanted = interface(**changes)
    plan = plan_tunnels({"wg-prod": interface()}, (wanted,))
    assert plan == TunnelPlan(change=(InterfaceChange(wanted, wireguard, add, remove, mtu),))


def test_two_desired_interfaces_with_one_name_are_refused_naming_it() -> None:
    with pytest.raises(TunnelPlanError, match="'wg-prod'"):
        plan_tunnels({}, (interface(), interface(listen_port=51821)))


# ---- versions ----------------------------------------------------------------------------------


def node_config(version: int, node: str = "node1", **changes: Any) -> NodeTunnelConfig:
    side = node_side().model_copy(update=changes)
    return NodeTunnelConfig(cluster="prod", node=node, version=version, interface=side)


@pytest.mark.parametrize(
    ("running", "read", "action"),
    [
        (None, node_config(3), "apply"),
        (node_config(3), node_config(4), "apply"),
        (node_config(4), node_config(3), "keep"),  # an old copy read again
        (node_config(4), node_config(4), "keep"),
        (node_config(4), node_config(4, mtu=1380), "refuse"),  # changed without a new version
        (None, node_config(1, node="node2"), "refuse"),
        (node_config(4), node_config(9, node="node2"), "refuse"),
    ],
)
def test_the_agent_applies_only_a_newer_version_for_its_own_node(
    running: NodeTunnelConfig | None, read: NodeTunnelConfig, action: str
) -> None:
    assert choose_config(running, read, "node1").action == action


def test_a_refusal_says_what_to_fix() -> None:
    assert "--node" in choose_config(None, node_config(1, node="node2"), "node1").reason
    assert "raise the version" in choose_config(node_config(4), node_config(4, mtu=1380), "node1").reason


# ---- dump --------------------------------------------------------------------------------------

DUMP = (
    f"{KEYS[0]}\t{KEYS[3]}\t51820\toff\n"
    f"{KEYS[1]}\t(none)\t198.51.100.9:41000\t100.96.0.11/32\t1764800000\t1024\t2048\toff\n"
    f"{KEYS[2]}\t(none)\t(none)\t100.96.0.12/32\t0\t0\t0\toff\n"
)


def test_a_dump_gives_each_peers_endpoint_handshake_and_bytes_and_drops_the_private_key() -> None:
    peers = parse_dump(DUMP)
    assert peers == [
        PeerStats(KEYS[1], "198.51.100.9:41000", 1764800000, 1024, 2048),
        PeerStats(KEYS[2], None, 0, 0, 0),
    ]
    assert KEYS[0] not in repr(peers)


def test_a_line_that_is_not_a_dump_line_is_refused_with_its_number() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_dump("interface line\nnot a peer\n")


def test_a_key_from_wg_genkey_is_a_valid_interface_key() -> None:
    """Skipped without wireguard-tools."""
    try:
        key = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("`wg` is not installed: apt-get install wireguard-tools")
    assert interface(private_key=key).private_key == key
