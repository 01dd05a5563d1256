"""The ACME lab as data: its network, pebble's config, the edge's listeners, the node's nginx."""

import json
import os
from pathlib import Path

import pytest
import yaml

from anycastlb.lab.acme_plan import (
    HTTP_NODE_PORT,
    TLS_NODE_PORT,
    AcmeTopology,
    NodeTls,
    edge_config,
    hosts_file,
    ip_commands,
    node_nginx_config,
    pebble_config,
)
from anycastlb.model.config import parse_config

GOLDEN = Path(__file__).parent / "golden"


def _golden(name: str, rendered: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert rendered == path.read_text(), "run with UPDATE_GOLDEN=1 after checking the diff"


def test_the_ip_commands_match_the_golden_file() -> None:
    _golden("acme_ip_commands.txt", "\n".join(" ".join(c) for c in ip_commands(AcmeTopology())) + "\n")


def test_the_node_nginx_config_with_the_certificate_matches_the_golden_file() -> None:
    tls = NodeTls(Path("/lab/certs/fullchain.pem"), Path("/lab/certs/key.pem"))
    rendered = node_nginx_config(AcmeTopology(), Path("/lab/node"), Path("/lab/www"), tls)
    _golden("acme_node_nginx.conf", rendered)


def test_commands_touch_only_the_lab_namespaces_never_the_host() -> None:
    topology = AcmeTopology("ac42")
    assert topology.namespaces() == ("ac42-client", "ac42-pop", "ac42-node")
    for command in ip_commands(topology):
        if command[:2] == ["netns", "add"]:
            assert command[2] in topology.namespaces()
        else:
            assert command[0] == "-n" and command[1] in topology.namespaces(), command
        if "veth" in command:
            assert command[command.index("netns") + 1] in topology.namespaces()


def test_the_client_reaches_the_vip_through_the_pop_which_holds_it() -> None:
    commands = ip_commands(AcmeTopology("ac1"))
    assert ["-n", "ac1-pop", "addr", "add", "198.18.0.10/32", "dev", "lo"] in commands
    assert ["-n", "ac1-client", "route", "add", "default", "via", "10.40.0.1"] in commands


@pytest.mark.parametrize("name", ["", "Acme", "acme-1", "toolongname", "ä"])
def test_a_bad_lab_name_is_refused_saying_what_a_name_may_be(name: str) -> None:
    with pytest.raises(ValueError, match="1-8 lowercase letters or digits"):
        AcmeTopology(name)


def test_the_domain_resolves_to_the_vip_in_the_clients_hosts_file() -> None:
    lines = hosts_file(AcmeTopology(domain="a.example.test")).splitlines()
    assert "198.18.0.10 a.example.test" in lines
    assert "127.0.0.1 localhost" in lines


def test_pebble_serves_on_the_client_address_and_validates_http01_on_port_80() -> None:
    config = json.loads(pebble_config(AcmeTopology(), Path("/c.pem"), Path("/k.pem")))["pebble"]
    assert config["httpPort"] == 80
    assert config["listenAddress"] == "10.40.0.2:14000"
    assert config["managementListenAddress"] == "10.40.0.2:15000"
    assert (config["certificate"], config["privateKey"]) == ("/c.pem", "/k.pem")
    assert AcmeTopology().directory_url == "https://10.40.0.2:14000/dir"
    assert AcmeTopology().roots_url == "https://10.40.0.2:15000/roots/0"


def test_the_edge_accepts_its_config_vip_80_and_443_to_the_node_with_proxy_v2_and_no_bgp() -> None:
    config = parse_config(yaml.safe_load(yaml.safe_dump(edge_config(AcmeTopology()))))
    assert config.bgp is None
    served = {
        (listener.name, str(listener.address), listener.port, listener.proxy_protocol): [
            b.key for b in listener.backends
        ]
        for listener in config.listeners
    }
    assert served == {
        ("http", "198.18.0.10", 80, "v2"): [f"10.41.0.2:{HTTP_NODE_PORT}"],
        ("https", "198.18.0.10", 443, "v2"): [f"10.41.0.2:{TLS_NODE_PORT}"],
    }
    # Down until checked: the lab sends nothing to a port nginx does not listen on yet.
    assert all(listener.health.initial == "down" for listener in config.listeners)


def test_the_node_serves_tls_only_once_it_has_a_certificate() -> None:
    topology = AcmeTopology()
    before = node_nginx_config(topology, Path("/n"), Path("/w"), None)
    after = node_nginx_config(topology, Path("/n"), Path("/w"), NodeTls(Path("/f.pem"), Path("/k.pem")))
    assert f":{TLS_NODE_PORT}" not in before and "ssl_certificate" not in before
    assert f"listen 10.41.0.2:{TLS_NODE_PORT} ssl proxy_protocol;" in after
    assert "ssl_certificate /f.pem; ssl_certificate_key /k.pem;" in after
    for text in (before, after):
        assert f"listen 10.41.0.2:{HTTP_NODE_PORT} proxy_protocol;" in text
        assert "location /.well-known/acme-challenge/ { root /w;" in text
        # Only the PoP's address may vouch for a client address (fail closed on trust).
        assert "set_real_ip_from 10.41.0.1/32; real_ip_header proxy_protocol;" in text
