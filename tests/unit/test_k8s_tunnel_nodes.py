"""``--tunnel-nodes``: tunnels for some nodes only (a provider migration), and ``initial: down``.

With tunnels, the nodes the selector matches are reached at their tunnel addresses and registered
with the control plane; the others at their own addresses, as without tunnels. Every listener's
check starts its backends down when the controller runs with tunnels, and up without.
"""

import asyncio
import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import cast

import pytest
from lightkube import AsyncClient
from typer.testing import CliRunner

from anycastlb.cli import app
from anycastlb.k8s.control_client import ControlClient
from anycastlb.k8s.controller import CachedService, Controller
from anycastlb.k8s.metrics import ControllerMetrics
from anycastlb.k8s.reconcile import Decision, Invalid, NodeIndex, SliceIndex, reconcile
from anycastlb.k8s.selectors import parse_selector
from anycastlb.k8s.views import ControllerSettings, NodeView
from anycastlb.model.desired import LoadBalancerSpec
from tests.unit.test_k8s_reconcile import NODES, WEB, addresses, desired, external, internal, node, service

EDGE = parse_selector("role=edge")  # n1 and n2 of NODES; n3 has no role
MIXED = ControllerSettings(cluster="prod", tunnels=True, tunnel_nodes=EDGE)
TUNNEL = {"n1": ("100.64.0.3",), "n2": ("100.64.0.4",), "n3": ("100.64.0.5",)}


def _decide(
    tunnel: Mapping[str, tuple[str, ...]],
    nodes: tuple[NodeView, ...] = NODES,
    settings: ControllerSettings = MIXED,
    previous: NodeIndex | None = None,
) -> tuple[Decision, NodeIndex]:
    index = NodeIndex.build(nodes, settings, previous=previous, tunnel_addresses=tunnel)
    return reconcile(WEB, index, SliceIndex.build(()), settings), index


def _warnings(decision: Decision) -> tuple[str, ...]:
    return desired(decision).warnings


# ---- which address each node is reached at ---------------------------------------------------------


def test_matching_nodes_are_reached_at_their_tunnel_address_and_the_others_at_their_own() -> None:
    decision, _ = _decide(TUNNEL)
    assert addresses(decision)[:3] == ["100.64.0.3", "100.64.0.4", "10.0.0.3"]  # port 80, by node name
    assert "100.64.0.5" not in addresses(decision)  # n3's stale registration is not used
    assert "10.0.0.1" not in addresses(decision) and "10.0.0.2" not in addresses(decision)
    assert _warnings(decision) == ()


def test_without_a_selector_every_node_goes_through_its_tunnel() -> None:
    decision, _ = _decide(TUNNEL, settings=ControllerSettings(cluster="prod", tunnels=True))
    assert addresses(decision)[:3] == ["100.64.0.3", "100.64.0.4", "100.64.0.5"]


def test_a_matching_node_without_a_tunnel_address_yet_is_missing_and_the_warning_says_tunnel() -> None:
    decision, _ = _decide({"n1": ("100.64.0.3",)})
    assert addresses(decision)[:2] == ["100.64.0.3", "10.0.0.3"]
    (warning,) = _warnings(decision)
    assert warning.startswith("nodes n2 have no IPv4 address of type tunnel and take no traffic; ")
    assert "the control plane gives nodes tunnel addresses once they are registered" in warning


def test_a_node_left_out_without_an_address_of_its_own_gets_the_address_type_warning() -> None:
    n3 = node("n3", ("Hostname", "n3"), labels={"zone": "b"})
    decision, _ = _decide({"n1": ("100.64.0.3",)}, nodes=(*NODES[:2], n3))
    assert addresses(decision)[:1] == ["100.64.0.3"]
    assert _warnings(decision) == (
        "nodes n2 have no IPv4 address of type tunnel and take no traffic; the control plane gives "
        "nodes tunnel addresses once they are registered (IPv4 only)",
        "nodes n3 have no IPv4 address of type ExternalIP or InternalIP and take no traffic; "
        "check `kubectl get nodes -o wide`",
    )


def test_when_no_node_has_an_address_the_problem_names_both_ways_of_reaching_them() -> None:
    n3 = node("n3", ("Hostname", "n3"), labels={"zone": "b"})
    decision, _ = _decide({}, nodes=(*NODES[:2], n3))
    assert isinstance(decision, Invalid)
    (problem,) = decision.problems
    assert problem.startswith(
        "none of the 3 eligible nodes has an IPv4 address of type tunnel (nodes matching --tunnel-nodes "
        "'role=edge') or ExternalIP or InternalIP (the others); "
    )
    assert "kubectl get nodes -o wide" in problem and "once they are registered" in problem


def test_a_service_whose_node_selector_picks_only_nodes_left_out_is_told_about_their_own_addresses() -> None:
    web = service(annotations={"anycastlb.io/node-selector": "zone=b,!role"})  # n3 alone
    n3 = node("n3", external("fd00::3"), labels={"zone": "b"})  # no IPv4 of its own
    index = NodeIndex.build((*NODES[:2], n3), MIXED, tunnel_addresses=TUNNEL)
    decision = reconcile(web, index, SliceIndex.build(()), MIXED)
    assert isinstance(decision, Invalid)
    assert (
        "of type ExternalIP or InternalIP; check `kubectl get nodes -o wide`, or start"
        in decision.problems[0]
    )


def test_a_label_change_that_moves_a_node_across_the_selector_moves_its_backend() -> None:
    _, index = _decide(TUNNEL)
    moved_in = (*NODES[:2], dataclasses.replace(NODES[2], labels={"zone": "b", "role": "edge"}))
    joined, index = _decide(TUNNEL, nodes=moved_in, previous=index)
    assert addresses(joined)[:3] == ["100.64.0.3", "100.64.0.4", "100.64.0.5"]
    moved_out = (dataclasses.replace(NODES[0], labels={"zone": "a"}), *NODES[1:])
    left, _ = _decide(TUNNEL, nodes=moved_out, previous=index)
    assert addresses(left)[:3] == ["10.0.0.1", "100.64.0.4", "10.0.0.3"]
    fresh, _ = _decide(TUNNEL, nodes=moved_out)  # what the index spliced equals a fresh build
    assert desired(left).spec == desired(fresh).spec
    spec = desired(left).spec
    assert LoadBalancerSpec.model_validate(spec.model_dump()) == spec


def test_nodes_in_both_families_keep_their_own_ipv6_address_when_left_out() -> None:
    dual = tuple(
        dataclasses.replace(item, addresses=(*item.addresses, internal(f"fd00::{index}")))
        for index, item in enumerate(NODES, start=1)
    )
    web6 = service(ip_families=("IPv6",))
    index = NodeIndex.build(dual, MIXED, tunnel_addresses=TUNNEL)
    decision = reconcile(web6, index, SliceIndex.build(()), MIXED)
    assert addresses(decision)[:1] == ["fd00::3"]  # tunnels are IPv4 only: n1 and n2 are missing
    assert _warnings(decision)[0].startswith("nodes n1, n2 have no IPv6 address of type tunnel")


# ---- settings ------------------------------------------------------------------------------------


def test_tunnel_nodes_without_tunnels_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match=re.escape("--tunnel-nodes needs --tunnels")):
        ControllerSettings(cluster="prod", tunnel_nodes=EDGE)


@pytest.mark.parametrize(
    ("settings", "labels", "through"),
    [
        (ControllerSettings(cluster="prod"), {"role": "edge"}, False),
        (ControllerSettings(cluster="prod", tunnels=True), {}, True),
        (MIXED, {"role": "edge"}, True),
        (MIXED, {"role": "legacy"}, False),
        (MIXED, {}, False),
    ],
)
def test_which_nodes_go_through_a_tunnel(
    settings: ControllerSettings, labels: dict[str, str], through: bool
) -> None:
    assert settings.through_tunnel(labels) is through


# ---- initial state of new backends ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "tunnel", "initial"),
    [
        (ControllerSettings(cluster="prod"), None, "up"),
        (ControllerSettings(cluster="prod", tunnels=True), TUNNEL, "down"),
        (MIXED, TUNNEL, "down"),
    ],
)
@pytest.mark.parametrize("local", [False, True], ids=["cluster", "local"])
def test_with_tunnels_new_backends_start_down_and_without_up(
    settings: ControllerSettings, tunnel: Mapping[str, tuple[str, ...]] | None, initial: str, local: bool
) -> None:
    web = service(external_traffic_policy="Local", health_check_node_port=32000) if local else WEB
    index = NodeIndex.build(NODES, settings, tunnel_addresses=tunnel)
    spec = desired(reconcile(web, index, SliceIndex.build(()), settings)).spec
    assert [listener.health.initial for listener in spec.listeners] == [initial, initial]
    assert {listener.health.type for listener in spec.listeners} == {"k8s" if local else "tcp"}
    assert LoadBalancerSpec.model_validate(spec.model_dump()) == spec
    # the listeners the index keeps are handed back with the same check on the next pass
    again = desired(reconcile(web, index, SliceIndex.build(()), settings)).spec
    assert again.listeners == spec.listeners


def test_the_same_service_with_and_without_tunnels_differs_only_in_the_checks_initial_state() -> None:
    plain = ControllerSettings(cluster="prod")
    tunnels = ControllerSettings(cluster="prod", tunnels=True, tunnel_nodes=parse_selector("none-has-it"))
    # no node matches: every node keeps its own address, so only the check tells the specs apart
    up = desired(reconcile(WEB, NODES, (), plain)).spec
    down = desired(
        reconcile(WEB, NodeIndex.build(NODES, tunnels, tunnel_addresses={}), SliceIndex.build(()), tunnels)
    ).spec
    assert [listener.backends for listener in up.listeners] == [
        listener.backends for listener in down.listeners
    ]
    assert [listener.health.model_copy(update={"initial": "down"}) for listener in up.listeners] == [
        listener.health for listener in down.listeners
    ]


# ---- the controller's triggers -------------------------------------------------------------------


@pytest.fixture
def controller() -> Iterator[Controller]:
    """A controller that is never run: its trigger methods only touch its caches and queue."""
    control = ControlClient("http://127.0.0.1:9", "unused")
    made = Controller(cast(AsyncClient, object()), control, MIXED, ControllerMetrics())
    for item in NODES:
        made.nodes.items[("", item.name)] = item
    for name in ("web", "api"):
        made.services.items[("shop", name)] = CachedService(service(name=name), ())
    yield made
    asyncio.run(control.close())


def _woken(controller: Controller) -> tuple[bool, int]:
    assert controller.tunnels is not None
    return controller.tunnels._wake.is_set(), len(controller.queue)


def test_only_the_matching_nodes_are_registered_for_tunnels(controller: Controller) -> None:
    assert controller._node_names() == ["n1", "n2"]


def test_a_joining_tunnelled_node_waits_for_the_tunnel_sync(controller: Controller) -> None:
    controller._node_changed(("", "n1"), None, NODES[0])
    assert _woken(controller) == (True, 0)  # the sync wakes the Services once it has an address


def test_a_registered_tunnelled_node_tainted_wakes_every_service_at_once(controller: Controller) -> None:
    """Its tunnel address does not change, so the sync would wake nobody: the taint must count now
    (else a node marked for deletion kept its clients until the next resync)."""
    assert controller.tunnels is not None
    controller.tunnels.addresses = {"n1": ("100.64.0.2",), "n2": ("100.64.0.3",)}
    tainted = dataclasses.replace(NODES[0], taints=(("ToBeDeletedByClusterAutoscaler", "NoSchedule"),))
    controller._node_changed(("", "n1"), NODES[0], tainted)
    assert _woken(controller) == (True, 2)


def test_a_change_to_a_node_reached_directly_wakes_every_service_at_once(controller: Controller) -> None:
    changed = dataclasses.replace(NODES[2], addresses=(internal("10.0.0.9"),))
    controller._node_changed(("", "n3"), NODES[2], changed)
    assert _woken(controller) == (True, 2)


@pytest.mark.parametrize(
    ("name", "labels"),
    [("n1", {"zone": "a"}), ("n3", {"zone": "b", "role": "edge"})],
    ids=["moves-out", "moves-in"],
)
def test_a_label_only_change_across_the_selector_resyncs_tunnels_and_services(
    controller: Controller, name: str, labels: dict[str, str]
) -> None:
    old = controller.nodes.items[("", name)]
    new = dataclasses.replace(old, labels=labels)
    controller.nodes.items[("", name)] = new
    controller._node_changed(("", name), old, new)
    assert _woken(controller) == (True, 2)
    assert (name in controller._node_names()) is (name == "n3")


# ---- the command line ----------------------------------------------------------------------------


def test_the_cli_refuses_tunnel_nodes_without_tunnels() -> None:
    result = CliRunner().invoke(
        app, ["controller", "--control", "http://127.0.0.1:9", "--cluster", "c", "--tunnel-nodes", "a=b"]
    )
    assert result.exit_code == 2
    assert "error: --tunnel-nodes needs --tunnels" in result.output


def test_the_cli_names_the_flag_and_the_character_of_a_bad_selector() -> None:
    result = CliRunner().invoke(
        app,
        [
            "controller",
            "--control",
            "http://127.0.0.1:9",
            "--cluster",
            "c",
            "--tunnels",
            "--tunnel-nodes",
            "a=b,=c",
        ],
    )
    assert result.exit_code == 2
    assert "error: --tunnel-nodes 'a=b,=c', character 5: expected a label key" in result.output
