"""ExaBGP's config and API lines: golden config, command text, parsing what ExaBGP writes back."""

import ipaddress
import os
from pathlib import Path

import pytest

from anycastlb.bgp.exabgp_text import (
    Ack,
    SessionChange,
    announce_line,
    parse_api_line,
    render_config,
    withdraw_line,
)
from anycastlb.bgp.policy import Announcement, Attributes
from anycastlb.model.bgp import BgpConfig

GOLDEN = Path(__file__).parent / "golden" / "exabgp.conf"


def _bgp() -> BgpConfig:
    return BgpConfig.model_validate(
        {
            "local_as": 65001,
            "router_id": "10.0.1.2",
            "peers": [
                {"address": "10.0.1.1", "remote_as": 65000, "local_address": "10.0.1.2"},
                {"address": "fd00::1", "remote_as": 65000, "hold_time": "9s"},
            ],
        }
    )


def test_the_rendered_config_matches_the_golden_file() -> None:
    bridge = ["/usr/bin/python3", "-m", "anycastlb.bgp.exabgp_bridge", "/run/a b.sock"]
    rendered = render_config(_bgp(), bridge)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered)
    assert rendered == GOLDEN.read_text(), "run with UPDATE_GOLDEN=1 after checking the diff"


def test_an_announcement_carries_med_communities_and_prepends() -> None:
    vip = ipaddress.ip_network("203.0.113.10/32")
    attributes = Attributes("self", med=50, communities=("65001:100", "65001:200"), as_path_prepend=2)
    assert announce_line(Announcement(vip, attributes), local_as=65001) == (
        "announce route 203.0.113.10/32 next-hop self med 50 community [ 65001:100 65001:200 ] "
        "as-path [ 65001 65001 ]"
    )


def test_a_plain_ipv6_announcement_and_a_withdrawal() -> None:
    vip = ipaddress.ip_network("2001:db8::10/128")
    assert announce_line(Announcement(vip, Attributes("fd00::2")), 65001) == (
        "announce route 2001:db8::10/128 next-hop fd00::2"
    )
    assert withdraw_line(vip) == "withdraw route 2001:db8::10/128"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("done\n", Ack(ok=True)),
        ("error\n", Ack(ok=False)),
        ("neighbor 10.0.1.1 up\n", SessionChange(ipaddress.ip_address("10.0.1.1"), "up")),
        ("neighbor 10.0.1.1 connected\n", SessionChange(ipaddress.ip_address("10.0.1.1"), "connected")),
        (
            "neighbor fd00::1 down - peer reset, message [closing connection]\n",
            SessionChange(
                ipaddress.ip_address("fd00::1"), "down", "peer reset, message [closing connection]"
            ),
        ),
        ("neighbor not-an-ip up\n", None),
        ("something else\n", None),
    ],
)
def test_what_exabgp_writes_back_is_parsed(line: str, expected: Ack | SessionChange | None) -> None:
    assert parse_api_line(line) == expected
