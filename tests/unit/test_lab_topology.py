"""The lab's topology as data: names, addresses, and the ip commands that build it (golden)."""

import ipaddress
import os
from pathlib import Path

import pytest

from anycastlb.lab.topology import Topology, ip_commands

GOLDEN = Path(__file__).parent / "golden" / "lab_ip_commands.txt"


def test_the_ip_commands_match_the_golden_file() -> None:
    rendered = "\n".join(" ".join(command) for command in ip_commands(Topology(clients=3))) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered)
    assert rendered == GOLDEN.read_text(), "run with UPDATE_GOLDEN=1 after checking the diff"


def test_every_namespace_carries_the_lab_name_so_labs_can_coexist() -> None:
    one, other = Topology("alb"), Topology("lt42")
    assert all(ns.startswith("alb-") for ns in one.namespaces())
    assert not set(one.namespaces()) & set(other.namespaces())
    assert len(one.namespaces()) == 8  # router, switch, client, 2 PoPs, 3 nodes


def test_commands_touch_only_the_lab_namespaces_never_the_host() -> None:
    topology = Topology()
    for command in ip_commands(topology):
        if command[:2] == ["netns", "add"] or command[:2] == ["netns", "exec"]:
            assert command[2] in topology.namespaces()
        else:
            assert command[0] == "-n" and command[1] in topology.namespaces(), command
        if "veth" in command:
            assert command[command.index("netns") + 1] in topology.namespaces()


def test_interface_names_fit_ifnamsiz_and_are_unique_per_namespace() -> None:
    seen: set[tuple[str, str]] = set()
    for cable in Topology().cables():
        for end in (cable.a, cable.b):
            assert len(end.interface) <= 15
            assert (end.namespace, end.interface) not in seen
            seen.add((end.namespace, end.interface))


def test_addresses_are_unique_and_inside_the_lab_ranges() -> None:
    topology = Topology()
    addresses = [
        cidr.split("/")[0]
        for cable in topology.cables()
        for end in (cable.a, cable.b)
        for cidr in end.addresses
    ]
    assert len(addresses) == len(set(addresses))
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("10.0.0.0/8") for a in addresses)
    assert ipaddress.ip_address(topology.vip) in ipaddress.ip_network("198.18.0.0/15")


def test_the_pops_share_both_lans_and_only_the_router_and_pops_forward() -> None:
    topology = Topology()
    bridged = {(c.b.interface, c.bridge) for c in topology.cables() if c.bridge}
    for pop in topology.pops:
        assert (f"{pop.name}-t", "br-transit") in bridged and (f"{pop.name}-c", "br-cluster") in bridged
    assert "net.ipv4.ip_forward=1" in topology.sysctls(topology.router)
    assert "net.ipv4.ip_forward=1" in topology.sysctls("alb-fra")
    assert "net.ipv4.ip_forward=1" not in topology.sysctls(topology.client)
    assert "net.ipv4.conf.all.rp_filter=0" in topology.sysctls(topology.client)


def test_fra_is_preferred_because_par_prepends() -> None:
    topology = Topology()
    assert [(p.name, p.as_path_prepend) for p in topology.pops] == [("fra", 0), ("par", 2)]
    assert topology.pop_by_transit_address("10.20.0.12") == "par"
    assert topology.pop_by_cluster_address("10.30.0.11") == "fra"


def test_a_bad_lab_name_or_pop_is_refused_with_what_to_write() -> None:
    with pytest.raises(ValueError, match="1-8 lowercase letters or digits"):
        Topology("My-Lab")
    with pytest.raises(KeyError, match="PoPs: fra, par"):
        Topology().pop("ams")
