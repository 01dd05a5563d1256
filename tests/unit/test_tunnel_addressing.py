"""The tunnel allocator (control/tunnels/addressing.py): networks, hosts, ports, interface names."""

import ipaddress

import pytest

from anycastlb.control.tunnels.addressing import (
    TunnelAllocationError,
    TunnelSettings,
    allocate_host,
    allocate_network,
    allocate_port,
    interface_name,
)

SMALL = TunnelSettings(range=ipaddress.IPv4Network("100.64.0.0/22"), prefix=24, port_base=51820, port_count=2)


@pytest.mark.parametrize(
    ("taken", "expected"),
    [
        ((), "100.64.0.0/24"),  # lowest first
        (("100.64.0.0/24",), "100.64.1.0/24"),
        (("100.64.1.0/24",), "100.64.0.0/24"),  # a freed hole is reused
        (("100.64.0.0/23",), "100.64.2.0/24"),  # a wider network taken by hand is avoided whole
        (("100.64.0.0/24", "100.64.1.0/24", "100.64.3.0/24"), "100.64.2.0/24"),
        (("10.0.0.0/8",), "100.64.0.0/24"),  # outside the range: irrelevant
    ],
)
def test_a_cluster_gets_the_lowest_free_network(taken: tuple[str, ...], expected: str) -> None:
    assert str(allocate_network(SMALL, taken)) == expected


def test_a_full_range_says_how_to_widen_it() -> None:
    with pytest.raises(TunnelAllocationError, match="--tunnel-range"):
        allocate_network(SMALL, ("100.64.0.0/22",))


def test_hosts_are_lowest_free_and_never_the_network_or_broadcast_address() -> None:
    network = ipaddress.IPv4Network("100.64.0.0/30")
    assert str(allocate_host(network, ())) == "100.64.0.1"
    assert str(allocate_host(network, ("100.64.0.1",))) == "100.64.0.2"
    with pytest.raises(TunnelAllocationError, match=r"100\.64\.0\.0/30 is full"):
        allocate_host(network, ("100.64.0.1", "100.64.0.2"))


def test_ports_are_lowest_free_in_the_range() -> None:
    assert allocate_port(SMALL, ()) == 51820
    assert allocate_port(SMALL, (51820,)) == 51821
    assert allocate_port(SMALL, (51821, 9999)) == 51820
    with pytest.raises(TunnelAllocationError, match="--tunnel-port-count"):
        allocate_port(SMALL, (51820, 51821))


def test_interface_names_are_stable_and_fit_the_kernels_limit() -> None:
    assert interface_name(1) == "albwg1"
    assert len(interface_name(9_999_999_999)) == 15
    with pytest.raises(TunnelAllocationError, match="15 characters"):
        interface_name(10_000_000_000)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"prefix": 25}, "between /16 and /24"),
        ({"prefix": 15}, "between /16 and /24"),
        ({"range": ipaddress.IPv4Network("100.64.0.0/20"), "prefix": 18}, "between /20 and /24"),
        ({"port_base": 65535, "port_count": 2}, "within 1-65535"),
        ({"grace": -1}, ">= 0"),
    ],
)
def test_bad_settings_are_refused_saying_what_to_give(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TunnelSettings(**settings)  # type: ignore[arg-type]
