"""The PoP's guard on its tunnel interfaces (anycastlb.tunnel.guard): the nftables script, and the
tunnels helper keeping every interface guarded from before it is created to after it is deleted.
The rules themselves are exercised against real packets in tests/e2e/test_tunnel.py."""

from collections.abc import Collection

import pytest

from anycastlb.edge import tunnels as helper
from anycastlb.model.config import EdgeConfig
from anycastlb.tunnel.devices import TunnelSet
from anycastlb.tunnel.guard import GUARD_TABLE, GuardError, TunnelGuard, guard_ruleset
from tests.unit.test_tunnel_pure import interface
from tests.unit.test_tunnel_shell import FakeDevice


def test_the_ruleset_covers_exactly_the_named_interfaces_in_one_table_of_its_own() -> None:
    script = guard_ruleset(["wg-prod", "albwg1"])
    assert script.startswith(f"add table inet {GUARD_TABLE}\ndelete table inet {GUARD_TABLE}\n")
    assert 'elements = { "albwg1", "wg-prod" }' in script
    rules = [line.strip() for line in script.splitlines() if "@interfaces" in line]
    assert rules[0].startswith("iifname @interfaces tcp flags & (syn | ack) == syn counter drop")
    assert rules[1].startswith("iifname @interfaces meta l4proto != { tcp, icmp, ipv6-icmp } counter drop")
    assert rules[2:] == [
        'iifname @interfaces counter drop comment "routed from a tunnel"',
        'oifname @interfaces counter drop comment "routed into a tunnel"',
    ]
    assert "accept" not in " ".join(rules)  # drops only: another table's verdicts stand
    assert script.count("table inet") == 3  # it names no other table


def test_without_interfaces_the_table_is_deleted_and_nothing_added() -> None:
    assert guard_ruleset([]) == f"add table inet {GUARD_TABLE}\ndelete table inet {GUARD_TABLE}\n"


def test_a_name_that_could_break_out_of_the_quotes_is_refused() -> None:
    with pytest.raises(GuardError, match="cannot be written into an nftables rule"):
        guard_ruleset(['wg0" accept; #'])


class FakeGuard(TunnelGuard):
    """Records each set of interfaces it was asked to cover; ``broken`` makes nft fail."""

    def __init__(self, journal: list[str], broken: bool = False) -> None:
        super().__init__()
        self.journal, self.broken = journal, broken

    def apply(self, interfaces: Collection[str]) -> None:
        if self.broken:
            raise GuardError("`nft` is not installed: apt-get install nftables")
        names = sorted(interfaces)
        self.journal.append(f"guard {' '.join(names) or '-'}")
        self.interfaces = frozenset(names)


def _helper_run(tunnels: TunnelSet, guard: FakeGuard, *configs: EdgeConfig) -> None:
    for config in configs:
        helper._apply(tunnels, guard, config)


def test_an_interface_is_guarded_before_it_is_created_and_until_after_it_is_deleted() -> None:
    FakeDevice.fail_up, FakeDevice.journal = set(), []
    tunnels = TunnelSet(device=FakeDevice)  # type: ignore[arg-type]
    guard = FakeGuard(FakeDevice.journal)
    first = EdgeConfig(pop="fra", tunnels=(interface("albwg1"),))
    second = EdgeConfig(pop="fra", tunnels=(interface("albwg2"),))
    _helper_run(tunnels, guard, first, second)
    assert FakeDevice.journal == [
        "guard albwg1",
        "up albwg1",
        "guard albwg1",
        "guard albwg1 albwg2",  # the new one guarded before it exists, the old one until it is gone
        "down albwg1",
        "up albwg2",
        "guard albwg2",
    ]


def test_without_a_guard_no_interface_is_created() -> None:
    FakeDevice.fail_up, FakeDevice.journal = set(), []
    tunnels = TunnelSet(device=FakeDevice)  # type: ignore[arg-type]
    _helper_run(
        tunnels, FakeGuard(FakeDevice.journal, broken=True), EdgeConfig(pop="fra", tunnels=(interface(),))
    )
    assert FakeDevice.journal == [] and tunnels.devices == {}
