"""WireGuard tunnels end to end: nodes behind a NAT dial the PoP; the edge reaches them only so.

Namespaces built by :class:`anycastlb.lab.tunnel_lab.TunnelLab` (client, PoP, NAT, two nodes), real
wireguard-go on both ends (started by the edge's tunnels helper and by ``anycastlb tunnel-agent``),
real nginx with the PROXY protocol on the nodes, keys from ``wg genkey``.
"""

import json
import os
import signal
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from anycastlb.lab.netns import missing_capability, run_inside
from anycastlb.lab.probe_client import __name__ as probe_module
from anycastlb.lab.processes import children_of
from anycastlb.lab.timeline import Attempt
from anycastlb.lab.tunnel_lab import CLIENT_NET, CLIENT_SOURCES, NODE_PORT, POP_TUNNEL_ADDRESS, VIP, TunnelLab
from anycastlb.tunnel.interface import SOCKET_DIR
from tests.support.peers import NETNS, NGINX, WIREGUARD, absent, require

pytestmark = [pytest.mark.root, pytest.mark.slow]

require(NETNS, NGINX, WIREGUARD)
_missing = missing_capability()
if _missing is not None:
    absent(f"the netns lab cannot run here: {_missing}")

_labs = count()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[TunnelLab]:
    built = TunnelLab(tag=f"{os.getpid() % 100000}x{next(_labs)}", workdir=tmp_path)
    try:
        yield built.build()
    finally:
        built.down()


def _requests(lab: TunnelLab, rounds: int) -> list[Attempt]:
    argv = [sys.executable, "-m", probe_module, VIP, "80", "--count", str(rounds * len(CLIENT_SOURCES))]
    argv += [arg for source in CLIENT_SOURCES for arg in ("--source", source)]
    argv += ["--pop", f"{POP_TUNNEL_ADDRESS}=lab", "--pause", "0", "--timeout", "3"]
    done = run_inside(lab.client, argv, timeout=60)
    return [Attempt.from_json(line) for line in done.stdout.splitlines()]


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(
            f'{key}="{value}"' in line for key, value in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    return None


def _listener() -> dict[str, object]:
    return {
        "name": "web",
        "address": VIP,
        "port": 80,
        "proxy_protocol": "v2",
        "backends": [{"address": f"100.96.0.{10 + index}", "port": NODE_PORT} for index in (1, 2)],
        "health": {
            "type": "http",
            "path": "/healthz",
            "interval": "200ms",
            "timeout": "200ms",
            "rise": 2,
            "fall": 2,
        },
        "connect_timeout": "500ms",
    }


def test_nodes_behind_nat_serve_through_tunnels_with_client_addresses_and_fail_over(lab: TunnelLab) -> None:
    lab.start_edge(lab.edge_config([_listener()]))  # first: the nodes' first handshake then succeeds
    for node in lab.nodes:
        lab.start_agent(node)
        lab.start_nginx(node)
    # The PoP has no path to the nodes' private addresses: only their tunnels reach them.
    direct = run_inside(
        lab.pop,
        [
            "python3",
            "-c",
            f"import socket; socket.create_connection(('192.168.1.2', {NODE_PORT}), timeout=1)",
        ],
        check=False,
    )
    assert direct.returncode != 0
    assert "unreachable" in direct.stderr

    def handshaken() -> bool:
        text = lab.metrics()
        ages = [_metric(text, "anycastlb_tunnel_handshake_age_seconds", peer=node.name) for node in lab.nodes]
        return all(age is not None and age < 60 for age in ages)

    lab.wait(handshaken, "a handshake with every node")

    def both_up() -> bool:  # a handshake is not a passed health check (rise 2 through the tunnel)
        text = lab.metrics()
        ups = [
            _metric(text, "anycastlb_backend_up", backend=f"{node.tunnel_address}:{NODE_PORT}")
            for node in lab.nodes
        ]
        return ups == [1.0] * len(lab.nodes)

    lab.wait(both_up, "every node up in the PoP's health checks")

    # (a) both nodes serve through their tunnels, (b) each sees the real client address.
    attempts = _requests(lab, rounds=2)
    assert [a.error for a in attempts if a.error] == []
    assert {a.node for a in attempts} == {"node1", "node2"}
    assert all(a.client_seen == a.source for a in attempts)
    assert {a.pop for a in attempts} == {"lab"}  # the connection came from the PoP's tunnel address
    webs = [node.web for node in lab.nodes if node.web is not None]
    assert len(webs) == len(lab.nodes)
    logged = {line.split()[0] for web in webs for line in web.log_lines() if "/healthz" not in line}
    assert logged == set(CLIENT_SOURCES)

    # (d) the PoP only ever sees the NAT's public address as the nodes' endpoints.
    dump = run_inside(lab.pop, ["wg", "show", lab.pop_interface_name, "endpoints"]).stdout
    endpoints = {line.split("\t")[1].rsplit(":", 1)[0] for line in dump.splitlines()}
    assert endpoints == {"10.202.0.2"}
    neighbours = run_inside(lab.pop, ["ip", "-j", "neigh", "show"]).stdout
    seen = {entry["dst"] for entry in json.loads(neighbours)}
    assert not any(address.startswith("192.168.") for address in seen)
    assert lab.metrics().count('anycastlb_tunnel_up{interface="') == 1

    # (c) node1's agent dies (SIGKILL: its wireguard-go follows, the tunnel is gone); the health
    # check ejects node1 and every new connection succeeds on node2.
    node1 = lab.nodes[0]
    assert node1.agent is not None
    node1.agent.stop(signum=signal.SIGKILL)
    lab.wait(lambda: not lab.has_address(node1.namespace, node1.tunnel_address), "node1's tunnel gone")
    lab.wait(
        lambda: (
            _metric(lab.metrics(), "anycastlb_backend_up", backend=f"{node1.tunnel_address}:{NODE_PORT}") == 0
        ),
        "node1 ejected",
    )
    attempts = _requests(lab, rounds=2)
    assert [a.error for a in attempts if a.error] == []
    assert {a.node for a in attempts} == {"node2"}

    # The edge removes what it brought up when it stops.
    edge = next(record for record in lab.records if record.role == "edge")
    edge.stop(timeout=15.0)
    assert run_inside(lab.pop, ["ip", "link", "show", lab.pop_interface_name], check=False).returncode != 0
    assert not (SOCKET_DIR / f"{lab.pop_interface_name}.sock").exists()
    guard = run_inside(lab.pop, ["nft", "list", "table", "inet", "anycastlb_tunnels"], check=False)
    assert guard.returncode != 0, "the tunnel guard outlived the tunnels"


def test_the_agent_applies_a_newer_version_in_place_keeping_the_session(lab: TunnelLab) -> None:
    lab.start_edge(lab.edge_config([_listener()]))
    node = lab.nodes[0]
    agent = lab.start_agent(node)
    lab.wait(
        lambda: (
            _metric(lab.metrics(), "anycastlb_tunnel_handshake_age_seconds", peer=node.name) is not None
            and _metric(lab.metrics(), "anycastlb_tunnel_handshake_age_seconds", peer=node.name)
            != float("inf")
        ),
        "node1's handshake",
    )
    agent_metrics = lab.metrics(node)  # the node's view: its PoP peer, the version it runs
    assert _metric(agent_metrics, "anycastlb_tunnel_agent_config_version") == 1
    assert _metric(agent_metrics, "anycastlb_tunnel_handshake_age_seconds", peer="pop") != float("inf")
    before = run_inside(node.namespace, ["wg", "show", node.interface, "dump"]).stdout.splitlines()
    link_before = run_inside(node.namespace, ["ip", "-j", "link", "show", node.interface]).stdout
    wireguard_go = children_of(agent.pid)

    # version 2 adds a second PoP peer: the interface, wireguard-go and the first session stay
    current = lab.node_config(node)
    second_pop = {
        "name": "pop2",
        "public_key": lab.nodes[1].keys[1],  # any valid key not yet used on this interface
        "allowed_ips": ["100.96.0.2/32"],
        "endpoint": "10.202.0.9:51820",
        "persistent_keepalive": 25,
    }
    peers = [peer.model_dump(mode="json") for peer in current.interface.peers] + [second_pop]
    updated = current.model_copy(
        update={
            "version": current.version + 1,
            "interface": current.interface.model_validate(
                {**current.interface.model_dump(mode="json"), "peers": peers}
            ),
        }
    )
    staged = lab.config_dir / "staged.json"
    staged.write_text(updated.model_dump_json())
    staged.replace(lab.config_dir / f"{node.name}.json")
    lab.wait(lambda: "version=2" in lab.log(f"agent-{node.name}"), "version 2 applied", agent)

    after = run_inside(node.namespace, ["wg", "show", node.interface, "dump"]).stdout.splitlines()
    assert len(after) == len(before) + 1
    # peers by public key (wireguard-go lists them in no fixed order)
    handshakes_before = {line.split("\t")[0]: line.split("\t")[4] for line in before[1:]}
    handshakes_after = {line.split("\t")[0]: line.split("\t")[4] for line in after[1:]}
    pop_key = lab.pop_keys[1]
    assert handshakes_after[pop_key] == handshakes_before[pop_key] != "0"  # same session, kept
    assert run_inside(node.namespace, ["ip", "-j", "link", "show", node.interface]).stdout == link_before
    assert children_of(agent.pid) == wireguard_go
    assert _metric(lab.metrics(node), "anycastlb_tunnel_agent_config_version") == 2

    # an older version read again (a stale copy) is kept out and the tunnel stays as it is
    staged.write_text(current.model_dump_json())
    staged.replace(lab.config_dir / f"{node.name}.json")
    lab.wait(lambda: "tunnel_config_kept" in lab.log(f"agent-{node.name}"), "the old copy read", agent)
    assert "older than the running 2" in lab.log(f"agent-{node.name}")
    assert len(run_inside(node.namespace, ["wg", "show", node.interface, "dump"]).stdout.splitlines()) == 3


def _connects(namespace: str, address: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=1).close()"
    return run_inside(namespace, [sys.executable, "-c", probe], check=False).returncode == 0


def test_a_node_can_neither_open_a_connection_to_the_pop_nor_route_through_it(lab: TunnelLab) -> None:
    """A node's operator controls its WireGuard: here node1 routes the VIP and the client network
    into its tunnel, and the PoP forwards packets. The guard the edge installs with its tunnels
    (nftables table inet anycastlb_tunnels) drops both; deleting that table lets both through,
    so it is the guard that stops them."""
    lab.start_edge(lab.edge_config([_listener()]))
    node = lab.nodes[0]
    lab.start_agent(node)
    lab.start_nginx(node)
    lab.wait(lambda: lab.has_address(node.namespace, node.tunnel_address), "node1's tunnel")
    client_address = f"{CLIENT_NET}.2"
    lab.start_listener(lab.client, client_address, 7000)
    assert _connects(lab.client, VIP, 80)  # the PoP's listener answers its clients
    run_inside(lab.pop, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    pop_public = run_inside(lab.pop, ["wg", "show", lab.pop_interface_name, "public-key"]).stdout.strip()
    widened = f"{POP_TUNNEL_ADDRESS}/32,{VIP}/32,{CLIENT_NET}.0/24"
    run_inside(node.namespace, ["wg", "set", node.interface, "peer", pop_public, "allowed-ips", widened])
    for target in (f"{VIP}/32", f"{CLIENT_NET}.0/24"):
        run_inside(node.namespace, ["ip", "route", "replace", target, "dev", node.interface])
    # the tunnel works for what the PoP opens: its health checks keep node1 up
    lab.wait(
        lambda: (
            _metric(lab.metrics(), "anycastlb_backend_up", backend=f"{node.tunnel_address}:{NODE_PORT}") == 1
        ),
        "node1 up through its tunnel",
    )

    assert not _connects(node.namespace, VIP, 80), "a node opened a connection to the PoP"
    assert not _connects(node.namespace, client_address, 7000), "a node reached a network behind the PoP"

    run_inside(lab.pop, ["nft", "delete", "table", "inet", "anycastlb_tunnels"])
    assert _connects(node.namespace, VIP, 80)
    assert _connects(node.namespace, client_address, 7000)
