"""Clusters and their WireGuard tunnels through the API (each test on SQLite and PostgreSQL): the
tunnel network and port a cluster gets, nodes registered and removed, what each PoP's desired
state carries (only the clusters it serves, only their nodes), make-before-break rotation, and
where private keys must never appear (another tenant, the audit log, the status page, metrics).
"""

import ipaddress
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anycastlb.control.service.clusters import finish_rotations
from anycastlb.control.store.tables import utcnow
from anycastlb.control.tunnels.keys import public_key_of
from anycastlb.model.desired import PopDesiredState
from tests.support.control_plane import ADMIN_TOKEN, ControlApi, listener, spec

pytestmark = pytest.mark.integration

KEY = re.compile(r"[A-Za-z0-9+/]{43}=")


def _world(api: ControlApi) -> dict[str, str]:
    api.pool("platform", "203.0.113.0/24")
    tokens = {"acme": api.tenant("acme"), "globex": api.tenant("globex")}
    tokens["fra"] = api.pop("fra")
    tokens["par"] = api.pop("par")
    api.ok("PUT", "/v1/pops/fra/tunnel-endpoint", json={"tunnel_endpoint": "192.0.2.10"})
    return tokens


def _cluster(api: ControlApi, token: str, nodes: tuple[str, ...] = ("n1", "n2")) -> dict[str, Any]:
    api.ok("PUT", "/v1/tenants/acme/clusters/k1", token, json={"tunnels": True})
    return dict(api.ok("PUT", "/v1/tenants/acme/clusters/k1/nodes", token, json={"nodes": list(nodes)}))


def _backends(nodes: dict[str, Any], port: int = 30443) -> tuple[tuple[str, int], ...]:
    return tuple((address, port) for node in nodes["nodes"] for address in node["backend_addresses"])


def _desired(api: ControlApi, pop: str) -> PopDesiredState:
    return PopDesiredState.model_validate(api.ok("GET", f"/v1/pops/{pop}/desired"))


def test_a_cluster_gets_its_own_network_and_port_and_nodes_get_addresses_in_it(api: ControlApi) -> None:
    tokens = _world(api)
    first = api.call("PUT", "/v1/tenants/acme/clusters/k1", tokens["acme"], json={})
    assert first.status_code == 201
    again = api.call("PUT", "/v1/tenants/acme/clusters/k1", tokens["acme"], json={})
    assert again.status_code == 200 and again.json()["version"] == first.json()["version"]
    other = api.ok("PUT", "/v1/tenants/globex/clusters/k1", tokens["globex"], json={})
    assert (first.json()["network"], first.json()["listen_port"]) == ("100.64.0.0/22", 51820)
    assert (other["network"], other["listen_port"]) == ("100.64.4.0/22", 51821)

    nodes = api.ok("PUT", "/v1/tenants/acme/clusters/k1/nodes", tokens["acme"], json={"nodes": ["n1", "n2"]})
    network = ipaddress.ip_network(first.json()["network"])
    addresses = [ipaddress.ip_address(node["address"]) for node in nodes["nodes"]]
    assert all(address in network for address in addresses) and len(set(addresses)) == 2
    assert [node["backend_addresses"] for node in nodes["nodes"]] == [[str(a)] for a in addresses]

    same = api.ok("PUT", "/v1/tenants/acme/clusters/k1/nodes", tokens["acme"], json={"nodes": ["n2", "n1"]})
    assert same == nodes  # idempotent: same set, same version, same addresses
    fewer = api.ok("PUT", "/v1/tenants/acme/clusters/k1/nodes", tokens["acme"], json={"nodes": ["n2"]})
    assert [node["name"] for node in fewer["nodes"]] == ["n2"] and fewer["version"] > nodes["version"]
    assert fewer["nodes"][0]["address"] == nodes["nodes"][1]["address"]  # a node keeps its address


def test_a_pop_gets_an_interface_only_for_clusters_it_serves_with_only_their_nodes(api: ControlApi) -> None:
    tokens = _world(api)
    nodes = _cluster(api, tokens["acme"])
    api.ok("PUT", "/v1/tenants/globex/clusters/g1", tokens["globex"], json={})
    api.ok("PUT", "/v1/tenants/globex/clusters/g1/nodes", tokens["globex"], json={"nodes": ["x1"]})
    assert _desired(api, "fra").tunnels == ()  # no load balancer uses the tunnel yet

    before = _desired(api, "fra").version
    body = {**spec("web", listeners=[listener(backends=_backends(nodes))]), "pops": ["fra"]}
    api.ok("POST", "/v1/tenants/acme/loadbalancers", tokens["acme"], json=body)
    fra = _desired(api, "fra")
    assert fra.version > before
    assert [tunnel.name for tunnel in fra.tunnels] == ["albwg1"]
    tunnel = fra.tunnels[0]
    assert tunnel.listen_port == 51820
    assert sorted(peer.name for peer in tunnel.peers) == ["n1", "n2"]  # not globex's x1
    assert {str(peer.allowed_ips[0].network_address) for peer in tunnel.peers} == {
        node["address"] for node in nodes["nodes"]
    }
    assert all(peer.endpoint is None for peer in tunnel.peers)  # learned from the nodes' handshakes
    assert _desired(api, "par").tunnels == ()  # par serves none of acme's load balancers
    api.ok("PUT", "/v1/tenants/acme/loadbalancers/web", tokens["acme"], json={**body, "pops": ["fra", "par"]})
    assert _desired(api, "par").tunnels == ()  # it does now, but has no endpoint: no node dials it
    api.ok("PUT", "/v1/pops/par/tunnel-endpoint", json={"tunnel_endpoint": "192.0.2.20"})
    assert [tunnel.name for tunnel in _desired(api, "par").tunnels] == ["albwg1"]

    version = fra.version
    api.ok("PUT", "/v1/tenants/acme/clusters/k1/nodes", tokens["acme"], json={"nodes": ["n1", "n2", "n3"]})
    grown = _desired(api, "fra")
    assert grown.version > version and sorted(peer.name for peer in grown.tunnels[0].peers) == [
        "n1",
        "n2",
        "n3",
    ]


def test_node_configs_pair_with_the_pops_keys_and_never_carry_a_pops_private_key(api: ControlApi) -> None:
    tokens = _world(api)
    nodes = _cluster(api, tokens["acme"])
    api.ok(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        tokens["acme"],
        json=spec("web", listeners=[listener(backends=_backends(nodes))]),
    )
    configs = api.ok("GET", "/v1/tenants/acme/clusters/k1/tunnel", tokens["acme"])
    fra_interface = _desired(api, "fra").tunnels[0]
    assert [config["node"] for config in configs["nodes"]] == ["n1", "n2"]
    for config in configs["nodes"]:
        interface = config["interface"]
        # one peer per PoP with an endpoint: fra has one (its cluster port), par none
        assert [peer["name"] for peer in interface["peers"]] == ["fra"]
        peer = interface["peers"][0]
        assert peer["endpoint"] == "192.0.2.10:51820" and peer["persistent_keepalive"] == 25
        assert peer["public_key"] == public_key_of(fra_interface.private_key)
        own = next(p for p in fra_interface.peers if p.name == config["node"])
        assert own.public_key == public_key_of(interface["private_key"])
    pop_private = {tunnel.private_key for pop in ("fra", "par") for tunnel in _desired(api, pop).tunnels}
    assert pop_private
    tenant_answers = [
        api.call("GET", path, tokens["acme"]).text
        for path in (
            "/v1/tenants/acme/clusters",
            "/v1/tenants/acme/clusters/k1",
            "/v1/tenants/acme/clusters/k1/nodes",
            "/v1/tenants/acme/clusters/k1/tunnel",
            "/v1/pops",
            "/v1/audit",
        )
    ]
    admin_answers = [
        api.call("GET", path).text for path in ("/v1/pops", "/v1/pops/fra", "/v1/audit", "/metrics")
    ]
    for text in tenant_answers + admin_answers:
        assert not pop_private & set(KEY.findall(text))


def test_another_tenant_sees_none_of_it_and_cannot_aim_at_the_tunnel(api: ControlApi) -> None:
    tokens = _world(api)
    nodes = _cluster(api, tokens["acme"])
    for method, path in (
        ("GET", "/v1/tenants/acme/clusters"),
        ("GET", "/v1/tenants/acme/clusters/k1"),
        ("GET", "/v1/tenants/acme/clusters/k1/nodes"),
        ("GET", "/v1/tenants/acme/clusters/k1/tunnel"),
        ("POST", "/v1/tenants/acme/clusters/k1/rotate"),
        ("DELETE", "/v1/tenants/acme/clusters/k1"),
    ):
        assert api.call(method, path, tokens["globex"]).status_code == 404, path
    assert api.call("GET", "/v1/tenants/globex/clusters/k1", tokens["globex"]).status_code == 404
    # globex may name its own private networks but never acme's nodes through acme's tunnel
    api.ok("PATCH", "/v1/tenants/globex", json={"allowed_backend_networks": ["100.64.0.0/10"]})
    refused = api.call(
        "POST",
        "/v1/tenants/globex/loadbalancers",
        tokens["globex"],
        json=spec("steal", listeners=[listener(backends=_backends(nodes))]),
    )
    assert refused.status_code == 422 and "(rule tunnel)" in refused.text


def test_rotation_keeps_the_old_key_as_a_peer_until_the_grace_period_ends(api: ControlApi) -> None:
    tokens = _world(api)
    nodes = _cluster(api, tokens["acme"])
    old = {node["name"]: node for node in nodes["nodes"]}
    api.ok(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        tokens["acme"],
        json=spec("web", listeners=[listener(backends=_backends(nodes))]),
    )

    rotated = api.ok("POST", "/v1/tenants/acme/clusters/k1/rotate", tokens["acme"])
    assert rotated["version"] > nodes["version"]
    for node in rotated["nodes"]:
        before = old[node["name"]]
        assert node["address"] != before["address"] and node["public_key"] != before["public_key"]
        assert node["backend_addresses"] == [node["address"], before["address"]]
        assert node["previous_until"] is not None
    peers = {peer.name: peer for peer in _desired(api, "fra").tunnels[0].peers}
    assert sorted(peers) == ["n1", "n1.previous", "n2", "n2.previous"]
    assert peers["n1.previous"].public_key == old["n1"]["public_key"]
    configs = api.ok("GET", "/v1/tenants/acme/clusters/k1/tunnel", tokens["acme"])
    assert [c["interface"]["addresses"] for c in configs["nodes"]] == [
        [f"{node['address']}/22"] for node in rotated["nodes"]
    ]
    assert configs["version"] == rotated["version"]

    again = api.call("POST", "/v1/tenants/acme/clusters/k1/rotate", tokens["acme"])
    assert again.status_code == 409 and "still rotating" in again.text

    version = _desired(api, "fra").version
    done = api.runtime.write(lambda s: finish_rotations(s, utcnow() + timedelta(hours=1)), change=None)
    assert done == 2
    after = _desired(api, "fra")
    assert after.version > version and sorted(peer.name for peer in after.tunnels[0].peers) == ["n1", "n2"]
    final = api.ok("GET", "/v1/tenants/acme/clusters/k1/nodes", tokens["acme"])
    assert [node["backend_addresses"] for node in final["nodes"]] == [
        [n["address"]] for n in rotated["nodes"]
    ]


def test_the_audit_log_records_tunnel_changes_once_and_without_keys(api: ControlApi) -> None:
    tokens = _world(api)
    _cluster(api, tokens["acme"])
    _cluster(api, tokens["acme"])  # the controller's resync: nothing changed, no rows
    api.ok("POST", "/v1/tenants/acme/clusters/k1/rotate", tokens["acme"])
    entries = api.ok("GET", "/v1/audit", tokens["acme"])["entries"]
    seen = [
        (e["action"], e["object_type"], e["object_name"]) for e in entries if "cluster" in e["object_type"]
    ]
    assert seen == [
        ("rotate", "cluster_keys", "k1"),
        ("update", "cluster_nodes", "k1"),
        ("create", "cluster", "k1"),
    ]
    assert not KEY.findall(str(entries))


def test_the_status_page_shows_no_tunnel_key(api: ControlApi) -> None:
    tokens = _world(api)
    nodes = _cluster(api, tokens["acme"])
    api.ok(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        tokens["acme"],
        json=spec("web", listeners=[listener(backends=_backends(nodes))]),
    )
    keys = {tunnel.private_key for tunnel in _desired(api, "fra").tunnels}
    keys |= {
        c["interface"]["private_key"] for c in api.ok("GET", "/v1/tenants/acme/clusters/k1/tunnel")["nodes"]
    }
    browser = TestClient(api.app, base_url="http://testserver", follow_redirects=False)
    form = browser.get("/status/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    signed_in = browser.post(
        "/status/sign-in",
        data={"csrf": csrf.group(1), "token": ADMIN_TOKEN},
        headers={"Origin": "http://testserver"},
    )
    assert signed_in.status_code == 303
    pages = [
        browser.get(path) for path in ("/status/pops", "/status/data/pops", "/status/data/load-balancers")
    ]
    assert all(page.status_code == 200 for page in pages)
    for page in pages:
        assert not keys & set(KEY.findall(page.text))


def test_a_new_pop_gets_its_side_of_every_cluster_and_nodes_a_peer_for_it(api: ControlApi) -> None:
    tokens = _world(api)
    nodes = _cluster(api, tokens["acme"])
    api.ok(
        "POST",
        "/v1/tenants/acme/loadbalancers",
        tokens["acme"],
        json=spec("web", listeners=[listener(backends=_backends(nodes))]),
    )
    created = api.ok("POST", "/v1/pops", json={"name": "ams", "tunnel_endpoint": "2001:db8::7"})
    assert created["tunnel_endpoint"] == "2001:db8::7"
    ams = _desired(api, "ams").tunnels
    assert len(ams) == 1 and sorted(peer.name for peer in ams[0].peers) == ["n1", "n2"]
    configs = api.ok("GET", "/v1/tenants/acme/clusters/k1/tunnel", tokens["acme"])
    endpoints = {peer["name"]: peer["endpoint"] for peer in configs["nodes"][0]["interface"]["peers"]}
    assert endpoints == {"ams": "[2001:db8::7]:51820", "fra": "192.0.2.10:51820"}
    refused = api.call("PUT", "/v1/pops/ams/tunnel-endpoint", json={"tunnel_endpoint": "198.51.100.1:51820"})
    assert refused.status_code == 422 and "the port is each cluster's" in refused.text


def test_deleting_a_pop_gives_node_configs_a_new_version_without_its_peer(api: ControlApi) -> None:
    tokens = _world(api)
    _cluster(api, tokens["acme"])
    api.ok("PUT", "/v1/pops/par/tunnel-endpoint", json={"tunnel_endpoint": "192.0.2.20"})
    before = api.ok("GET", "/v1/tenants/acme/clusters/k1/tunnel", tokens["acme"])
    assert [peer["name"] for peer in before["nodes"][0]["interface"]["peers"]] == ["fra", "par"]
    api.ok("DELETE", "/v1/pops/par")
    after = api.ok("GET", "/v1/tenants/acme/clusters/k1/tunnel", tokens["acme"])
    assert after["version"] > before["version"]
    assert [peer["name"] for peer in after["nodes"][0]["interface"]["peers"]] == ["fra"]


def test_a_tenant_with_a_cluster_cannot_be_deleted_until_the_cluster_is(api: ControlApi) -> None:
    tokens = _world(api)
    _cluster(api, tokens["acme"])
    refused = api.call("DELETE", "/v1/tenants/acme")
    assert refused.status_code == 409 and "has clusters k1" in refused.text
    api.ok("DELETE", "/v1/tenants/acme/clusters/k1", tokens["acme"])
    assert _desired(api, "fra").tunnels == ()
    api.ok("DELETE", "/v1/tenants/acme")
