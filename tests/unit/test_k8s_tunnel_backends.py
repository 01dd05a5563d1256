"""The controller with tunnels (pure parts): tunnel addresses as backends, and the Secret's data."""

import base64
import json
from collections.abc import Mapping

from anycastlb.k8s.reconcile import Decision, Desired, Invalid, NodeIndex, SliceIndex, reconcile
from anycastlb.k8s.tunnel_secret import secret_data
from anycastlb.k8s.views import ControllerSettings
from tests.unit.test_k8s_reconcile import NODES, WEB, addresses, desired

SETTINGS = ControllerSettings(cluster="prod", tunnels=True)
TUNNEL = {"n1": ("100.64.0.3",), "n2": ("100.64.0.4",), "n3": ("100.64.0.5",)}


def _decide(
    tunnel: Mapping[str, tuple[str, ...]], previous: NodeIndex | None = None
) -> tuple[Decision, NodeIndex]:
    index = NodeIndex.build(NODES, SETTINGS, previous=previous, tunnel_addresses=tunnel)
    return reconcile(WEB, index, SliceIndex.build(()), SETTINGS), index


def test_backends_are_the_tunnel_addresses_never_the_nodes_own() -> None:
    decision, _ = _decide(TUNNEL)
    assert addresses(decision)[:3] == ["100.64.0.3", "100.64.0.4", "100.64.0.5"]  # port 80's listener
    assert not {"10.0.0.1", "10.0.0.2", "10.0.0.3"} & set(addresses(decision))


def test_a_node_without_a_tunnel_address_yet_takes_no_traffic_and_says_why() -> None:
    decision, _ = _decide({"n1": ("100.64.0.3",)})
    assert addresses(decision) == ["100.64.0.3"]
    assert isinstance(decision, Desired)
    assert any("n2, n3 have no IPv4 address of type tunnel" in warning for warning in decision.warnings)
    nothing, _ = _decide({})
    assert isinstance(nothing, Invalid)
    assert "has an IPv4 address of type tunnel" in nothing.problems[0]


def test_during_a_rotation_each_node_is_listed_at_both_addresses_then_at_its_new_one() -> None:
    before, index = _decide(TUNNEL)
    rotating = {name: ("100.64.0.1" + found[0][-1], found[0]) for name, found in TUNNEL.items()}
    during, index = _decide(rotating, previous=index)
    assert addresses(during)[:6] == [
        "100.64.0.13",
        "100.64.0.3",
        "100.64.0.14",
        "100.64.0.4",
        "100.64.0.15",
        "100.64.0.5",
    ]
    after, _ = _decide({name: found[:1] for name, found in rotating.items()}, previous=index)
    assert addresses(after)[:3] == ["100.64.0.13", "100.64.0.14", "100.64.0.15"]
    # the spliced listeners equal freshly built ones (the index reuses what it can)
    fresh, _ = _decide({name: found[:1] for name, found in rotating.items()})
    assert desired(after).spec == desired(fresh).spec
    assert desired(before).spec != desired(after).spec


def test_the_secret_holds_one_base64_json_config_per_node() -> None:
    configs = {
        "cluster": "prod",
        "version": 3,
        "nodes": [{"node": "n1", "version": 3}, {"node": "n2", "version": 3}],
    }
    data = secret_data(configs)
    assert sorted(data) == ["n1.json", "n2.json"]
    assert json.loads(base64.b64decode(data["n1.json"])) == {"node": "n1", "version": 3}
    assert secret_data(configs) == data  # stable: an unchanged config rewrites nothing
