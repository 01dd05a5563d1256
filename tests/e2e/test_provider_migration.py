"""Issue 15 part 4: every node of a cluster replaced by nodes in another provider's network, under
load, the way the controller sees it, and the clients notice nothing.

Real processes throughout (tests/support/migration_world.py): the Kubernetes API stand-in with a
Service type LoadBalancer and provider A's Nodes, ``anycastlb controller``, ``anycastlb control``,
an edge in the PoP's namespace following it, nginx with proxy_protocol on every node in its own
namespace. Provider B's nodes sit behind NAT, where the PoP has no route: the controller
(``--tunnels --tunnel-nodes``) registers them with the control plane, their agents dial the PoP
over WireGuard, and the PoP reaches them at their tunnel addresses only. With ``externalTrafficPolicy: Local``
the PoP checks kube-proxy's health answer on the healthCheckNodePort of every node (old and new)
instead of a TCP connect to the nodePort. The steps are
:mod:`anycastlb.lab.migration`'s; the bar is :attr:`MigrationCounts.ok`.
"""

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from anycastlb.lab.migration_counts import render_counts
from anycastlb.lab.migration_net import TUNNEL_RANGE
from anycastlb.lab.netns import missing_capability, namespace_exists
from tests.support.migration_world import MigrationWorld, migration_world
from tests.support.peers import NETNS, NGINX, WIREGUARD, absent, require

pytestmark = [pytest.mark.root, pytest.mark.slow]

require(NETNS, NGINX, WIREGUARD)
_missing = missing_capability()
if _missing is not None:
    absent(f"the netns lab cannot run here: {_missing}")


def _pop_cannot_connect_to_new_nodes_directly(world: MigrationWorld) -> None:
    """Provider B's own addresses are unreachable from the PoP (no route past the NAT)."""
    for node in world.new:
        with pytest.raises(OSError), socket.create_connection((node.address, world.node_port), timeout=1):
            pass


@pytest.mark.parametrize("policy", ["Cluster", "Local"])
def test_replacing_every_node_by_another_providers_fails_no_connection_and_cuts_none(
    tmp_path: Path, policy: str
) -> None:
    name = f"mg{os.getpid() % 100000}"
    with migration_world(tmp_path, name, local=policy == "Local") as world:
        (check,) = world.cluster.health_checks()
        if policy == "Local":
            assert (check["type"], check["port"]) == ("k8s", world.health_port)
        else:
            assert check["type"] == "tcp"
        migration = world.migration(rate=60, hold=1.0, progress=print)
        try:
            counts = migration.run()
        except Exception:
            print(world.explain())
            raise
        report = "\n".join(render_counts(counts))
        print(report)
        assert counts.failed == 0, report
        assert counts.sessions == len(world.old), f"not one long-lived connection per old node:\n{report}"
        assert counts.sessions_clean == counts.sessions, report
        assert counts.old_nodes_after_drain == 0, report
        served = dict(counts.served_by)
        assert all(served.get(node.name, 0) > 0 for node in world.new), report
        assert counts.ok, report
        tunnels = ipaddress.ip_network(TUNNEL_RANGE)
        paths = dict(counts.paths)
        assert {paths[node.name] for node in world.old} == {"10.51.0.1"}, report  # the PoP's LAN address
        assert all(ipaddress.ip_address(paths[node.name]) in tunnels for node in world.new), report
        _pop_cannot_connect_to_new_nodes_directly(world)
        for node in world.old:
            assert not namespace_exists(world.lab.network.node_namespace(node))
    for namespace in (f"{name}-pop", f"{name}-provb", *(f"{name}-b{index}" for index in (1, 2, 3))):
        assert not namespace_exists(namespace), f"{namespace} left behind"
