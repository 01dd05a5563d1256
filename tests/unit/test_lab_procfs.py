"""Reading a namespace's routes and listeners, and a process's identity, from /proc text."""

from anycastlb.lab.procfs import next_hop, parse_stat, tcp_listeners

ROUTES = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "client\t00000A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "transit\t0000140A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "transit\t0A0012C6\t0B00140A\t0007\t0\t0\t32\tFFFFFFFF\t0\t0\t0\n"
)

TCP = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 15001E0A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 35961366 1\n"
    "   1: 15001E0A:1F90 0C001E0A:C268 06 00000000:00000000 03:00000059 00000000     0        0 0 3\n"
)


def test_the_vip_host_route_gives_its_next_hop() -> None:
    assert next_hop(ROUTES, "198.18.0.10") == "10.20.0.11"


def test_no_host_route_means_no_next_hop() -> None:
    assert next_hop(ROUTES, "198.18.0.11") is None
    assert next_hop(ROUTES.splitlines()[0], "198.18.0.10") is None


def test_only_listening_sockets_are_listeners() -> None:
    assert tcp_listeners(TCP) == {("10.30.0.21", 8080)}


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() -> None:
    text = "1234 (odd (name) here) S 1 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 0 0"
    stat = parse_stat(text)
    assert (stat.state, stat.ppid, stat.start_time) == ("S", 1, 987654)
