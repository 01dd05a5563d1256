"""The controller with ``--tunnels`` end to end: the real ``anycastlb controller`` process, the
Kubernetes API stand-in and the real control plane. Nodes are registered and get tunnel addresses,
the load balancer's backends are those addresses (never the nodes' own), the ``anycastlb-tunnel``
Secret holds each node's config, and a node joining, leaving or a key rotation updates both. With
``--tunnel-nodes`` only the matching nodes are, and a label change moves a node in or out.
"""

import base64
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anycastlb.control.tunnels.keys import public_key_of
from anycastlb.model.tunnel import NodeTunnelConfig
from tests.integration.test_k8s_controller import World, node, service
from tests.support.control_plane import ControlProcess
from tests.support.kube_api import KubeApiStandIn

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TUNNELS = ipaddress.ip_network("100.64.0.0/10")
NAMESPACE = "kube-system"  # the controller's own (ControllerProcess passes it for the Lease)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    # The production backend policy: no lab switch for 100.64.0.0/10. The cluster's own tunnel
    # network is what lets its nodes be backends.
    with KubeApiStandIn() as kube, ControlProcess(tmp_path) as control:
        with control.client() as admin:
            admin.post(
                "/v1/pools", json={"name": "platform", "networks": ["203.0.113.0/28"]}
            ).raise_for_status()
            admin.post("/v1/tenants", json={"name": "acme"}).raise_for_status()
            token = admin.post("/v1/tenants/acme/tokens", json={}).json()["secret"]
            admin.post("/v1/pops", json={"name": "fra", "tunnel_endpoint": "192.0.2.10"}).raise_for_status()
        for index in range(3):
            kube.create(node(f"node-{index}", f"10.0.0.{11 + index}"))
        yield World(tmp_path, kube, control, token)


def _registered(world: World) -> dict[str, list[str]]:
    with world.control.client(world.token) as client:
        body = client.get("/v1/tenants/acme/clusters/test/nodes").json()
    return {item["name"]: item["backend_addresses"] for item in body["nodes"]}


def _secret_configs(secret: dict[str, Any] | None) -> dict[str, NodeTunnelConfig]:
    assert secret is not None
    return {
        key.removesuffix(".json"): NodeTunnelConfig.model_validate_json(base64.b64decode(value))
        for key, value in (secret.get("data") or {}).items()
    }


def _wait_secret(world: World, nodes: set[str]) -> dict[str, NodeTunnelConfig]:
    found = world.kube.wait_for(
        "Secret",
        NAMESPACE,
        "anycastlb-tunnel",
        lambda obj: obj is not None and {k.removesuffix(".json") for k in (obj.get("data") or {})} == nodes,
    )
    return _secret_configs(found)


def _backend_addresses(lb: dict[str, Any]) -> list[str]:
    return [backend["address"] for backend in lb["spec"]["listeners"][0]["backends"]]


def test_tunnel_addresses_are_the_backends_and_the_secret_follows_the_nodes(world: World) -> None:
    with world.controller(extra=("--tunnels",)):
        world.kube.create(service("shop", ports=(443,)))
        world.wait_ingress("shop")
        lb = world.wait_lb(
            "shop", lambda lb: all(ipaddress.ip_address(a) in TUNNELS for a in _backend_addresses(lb))
        )
        registered = _registered(world)
        assert sorted(registered) == ["node-0", "node-1", "node-2"]
        assert sorted(_backend_addresses(lb)) == sorted(a for found in registered.values() for a in found)
        assert not {"10.0.0.11", "10.0.0.12", "10.0.0.13"} & set(_backend_addresses(lb))

        configs = _wait_secret(world, {"node-0", "node-1", "node-2"})
        with world.control.client(world.token) as client:
            public = {
                n["name"]: n["public_key"]
                for n in client.get("/v1/tenants/acme/clusters/test/nodes").json()["nodes"]
            }
        for name, config in configs.items():
            assert config.node == name and config.cluster == "test"
            assert [str(a.ip) for a in config.interface.addresses] == registered[name]
            assert public_key_of(config.interface.private_key) == public[name]
            assert [(p.name, p.endpoint) for p in config.interface.peers] == [("fra", "192.0.2.10:51820")]

        # a node joins: it gets an address, a backend and a key in the Secret
        world.kube.create(node("node-3", "10.0.0.14"))
        _wait_secret(world, {"node-0", "node-1", "node-2", "node-3"})
        lb = world.wait_lb("shop", lambda lb: len(_backend_addresses(lb)) == 4)
        assert set(_backend_addresses(lb)) == {a for found in _registered(world).values() for a in found}

        # a node leaves: its backend, its registration and its key go
        world.kube.delete("Node", None, "node-1")
        _wait_secret(world, {"node-0", "node-2", "node-3"})
        lb = world.wait_lb("shop", lambda lb: len(_backend_addresses(lb)) == 3)
        assert sorted(_registered(world)) == ["node-0", "node-2", "node-3"]
        assert set(_backend_addresses(lb)) == {a for found in _registered(world).values() for a in found}
        log = world.controllers[-1].log()
        assert "tunnel_secret_updated" in log
        assert all(config.interface.private_key not in log for config in configs.values())


def test_a_rotation_lists_both_addresses_of_each_node_until_its_grace_ends(world: World) -> None:
    with world.controller(extra=("--tunnels", "--resync", "1")):
        world.kube.create(service("shop", ports=(443,)))
        world.wait_lb("shop", lambda lb: len(_backend_addresses(lb)) == 3)
        before = _wait_secret(world, {"node-0", "node-1", "node-2"})
        with world.control.client(world.token) as client:
            rotated = client.post("/v1/tenants/acme/clusters/test/rotate")
        assert rotated.status_code == 200, rotated.text
        both = {a for n in rotated.json()["nodes"] for a in n["backend_addresses"]}
        assert len(both) == 6
        lb = world.wait_lb("shop", lambda lb: set(_backend_addresses(lb)) == both)
        assert len(_backend_addresses(lb)) == 6
        after = world.kube.wait_for(
            "Secret",
            NAMESPACE,
            "anycastlb-tunnel",
            lambda obj: (
                obj is not None
                and all(
                    json.loads(base64.b64decode(value))["interface"]["private_key"]
                    != before[key.removesuffix(".json")].interface.private_key
                    for key, value in (obj.get("data") or {}).items()
                )
            ),
        )
        new = _secret_configs(after)
        assert {str(c.interface.addresses[0].ip) for c in new.values()} == {
            n["address"] for n in rotated.json()["nodes"]
        }


TUNNEL_LABEL = "anycastlb.io/tunnel"


def _label(world: World, name: str, value: str | None) -> None:
    """Set (or with None remove) the tunnel label on a Node: a label-only update, nothing else."""
    world.kube.patch("Node", None, name, {"metadata": {"labels": {TUNNEL_LABEL: value}}})


def test_only_nodes_matching_tunnel_nodes_go_through_tunnels_and_a_label_change_moves_them(
    world: World,
) -> None:
    own = {"node-0": "10.0.0.11", "node-1": "10.0.0.12", "node-2": "10.0.0.13"}
    _label(world, "node-2", "true")
    with world.controller(extra=("--tunnels", "--tunnel-nodes", f"{TUNNEL_LABEL}=true")):
        world.kube.create(service("shop", ports=(443,)))
        lb = world.wait_lb(
            "shop", lambda lb: len(_backend_addresses(lb)) == 3 and "10.0.0.13" not in _backend_addresses(lb)
        )
        # node-2 alone is registered, has a key in the Secret and is reached at its tunnel address
        registered = _registered(world)
        assert sorted(registered) == ["node-2"]
        assert sorted(_backend_addresses(lb)) == sorted([own["node-0"], own["node-1"], *registered["node-2"]])
        assert all(ipaddress.ip_address(a) in TUNNELS for a in registered["node-2"])
        assert sorted(_wait_secret(world, {"node-2"})) == ["node-2"]
        # with tunnels, new backends serve only after a good probe
        assert {listener["health"]["initial"] for listener in lb["spec"]["listeners"]} == {"down"}

        # node-0 is labelled: registered, in the Secret, and its backend moves into its tunnel
        # (between the two it takes no traffic: it has left its own address, and has no tunnel one yet)
        _label(world, "node-0", "true")
        _wait_secret(world, {"node-0", "node-2"})  # written after the registration it follows
        registered = _registered(world)
        assert sorted(registered) == ["node-0", "node-2"]
        expected = sorted([*registered["node-0"], own["node-1"], *registered["node-2"]])
        world.wait_lb("shop", lambda lb: sorted(_backend_addresses(lb)) == expected)

        # node-2 loses its label: dropped from the control plane and the Secret, back at its own address
        _label(world, "node-2", None)
        _wait_secret(world, {"node-0"})
        assert sorted(_registered(world)) == ["node-0"]
        expected = sorted([*registered["node-0"], own["node-1"], own["node-2"]])
        world.wait_lb("shop", lambda lb: sorted(_backend_addresses(lb)) == expected)
