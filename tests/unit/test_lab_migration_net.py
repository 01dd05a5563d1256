"""The migration lab's network as data (anycastlb.lab.migration_net): names, addresses, golden commands."""

import os
from pathlib import Path

import pytest

from anycastlb.lab.migration_net import TUNNEL_LABEL, LabNodeSpec, MigrationNetwork

GOLDEN = Path(__file__).parent / "golden" / "lab_migration_ip_commands.txt"


def rendered(network: MigrationNetwork) -> str:
    commands = [*network.base_commands(), *network.node_commands(LabNodeSpec("a", 1))]
    commands += network.node_commands(LabNodeSpec("b", 2))
    return "\n".join(" ".join(command) for command in commands) + "\n"


def test_the_ip_commands_match_the_golden_file() -> None:
    text = rendered(MigrationNetwork("mig"))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "run with UPDATE_GOLDEN=1 after checking the diff"


def test_every_command_names_a_namespace_of_this_lab_so_the_host_is_never_touched() -> None:
    network = MigrationNetwork("mg42")
    commands = [*network.base_commands(), *network.node_commands(LabNodeSpec("b", 3))]
    for command in commands:
        namespace = command[2] if command[0] == "netns" else command[1]
        assert command[0] in {"netns", "-n"} and namespace.startswith("mg42-"), command


def test_old_nodes_sit_on_the_pops_lan_and_new_ones_behind_a_nat_the_pop_has_no_route_through() -> None:
    network = MigrationNetwork()
    old, new = LabNodeSpec("a", 2), LabNodeSpec("b", 2)
    assert (old.name, old.address, new.name, new.address) == ("a2", "10.51.0.12", "b2", "10.52.0.12")
    assert ["-n", "mig-pop", "link", "set", "a2", "master", "br-a"] in network.node_commands(old)
    assert ["-n", "mig-provb", "link", "set", "b2", "master", "br-b"] in network.node_commands(new)
    assert not any("route" in command and "10.52.0.0/24" in command for command in network.base_commands())
    (nat,) = [command for command in network.base_commands() if "nft" in command]
    assert nat[:4] == ["netns", "exec", "mig-provb", "nft"] and "ip saddr 10.52.0.0/24 masquerade" in nat[4]
    assert network.tunnel_endpoint == "10.61.0.1"  # the router reaches it on its transit link


def test_only_the_new_providers_nodes_are_tunnelled_labelled_and_trust_the_tunnel_range() -> None:
    old, new = LabNodeSpec("a", 1), LabNodeSpec("b", 1)
    assert (old.tunnelled, new.tunnelled) == (False, True)
    assert TUNNEL_LABEL not in old.labels and new.labels[TUNNEL_LABEL] == "true"
    assert (old.trusted, new.trusted) == ("10.51.0.1", "100.64.0.0/10")


@pytest.mark.parametrize(
    ("provider", "index", "message"),
    [("c", 1, "provider 'c' must be"), ("a", 0, "node index 0 must be"), ("b", 201, "node index 201")],
)
def test_a_node_outside_the_plan_is_refused_with_the_rule(provider: str, index: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LabNodeSpec(provider, index)


def test_a_lab_name_that_would_make_bad_namespace_names_is_refused() -> None:
    with pytest.raises(ValueError, match="1-10 lowercase letters or digits"):
        MigrationNetwork("Mig-1")
