"""The lab router's BIRD config (golden) and what birdc answers, parsed."""

import os
import subprocess
from pathlib import Path

from anycastlb.lab.bird import parse_protocols, parse_routes, render_bird_config
from anycastlb.lab.topology import POP_AS, Topology
from tests.support.peers import BIRD, require

GOLDEN = Path(__file__).parent / "golden" / "lab_bird.conf"

PROTOCOLS = "\n".join(  # BIRD pads its columns, trailing spaces included
    [
        "BIRD 2.0.12 ready.",
        "Name       Proto      Table      State  Since         Info",
        "device1    Device     ---        up     16:35:01.199  ",
        "kernel1    Kernel     master4    up     16:35:01.199  ",
        "pop_fra    BGP        ---        start  16:36:07.458  Active        Socket: Connection refused",
        "pop_par    BGP        ---        up     16:35:02.326  Established   ",
    ]
)

ROUTES = """BIRD 2.0.12 ready.
Table master4:
198.18.0.10/32       unicast [pop_fra 16:36:07.501] * (100) [AS65001i]
\tvia 10.20.0.11 on transit
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65001
\tBGP.next_hop: 10.20.0.11
\tBGP.local_pref: 100
                     unicast [pop_par 16:35:02.405] (100) [AS65001i]
\tvia 10.20.0.12 on transit
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65001 65001
\tBGP.next_hop: 10.20.0.12
\tBGP.local_pref: 100
"""


def test_the_rendered_config_matches_the_golden_file() -> None:
    rendered = render_bird_config(Topology(), POP_AS)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered)
    assert rendered == GOLDEN.read_text(), "run with UPDATE_GOLDEN=1 after checking the diff"


def test_every_pop_session_gets_the_short_timers() -> None:
    rendered = render_bird_config(Topology(), POP_AS)
    for setting in (
        "hold time 3;",
        "keepalive time 1;",
        "connect retry time 1;",
        "connect delay time 1;",
        "error wait time 1, 5;",
        "error forget time 10;",
        "merge paths off;",
    ):
        assert setting in rendered
    assert rendered.count("from pop {") == 2 and "neighbor 10.20.0.12 as 65001;" in rendered


def test_bird_accepts_the_config(tmp_path: Path) -> None:
    require(BIRD)
    config = tmp_path / "bird.conf"
    config.write_text(render_bird_config(Topology(), POP_AS))
    checked = subprocess.run(["bird", "-p", "-c", str(config)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_show_protocols_is_parsed_with_the_info_column() -> None:
    protocols = {p.name: p for p in parse_protocols(PROTOCOLS)}
    assert list(protocols) == ["device1", "kernel1", "pop_fra", "pop_par"]
    assert (protocols["pop_par"].state, protocols["pop_par"].info) == ("up", "Established")
    assert protocols["pop_fra"].info == "Active        Socket: Connection refused"
    assert protocols["device1"].info == ""


def test_show_route_all_gives_each_pops_route_with_the_best_first() -> None:
    routes = parse_routes(ROUTES)
    assert [(r.prefix, r.protocol, r.best, r.via, r.as_path) for r in routes] == [
        ("198.18.0.10/32", "pop_fra", True, "10.20.0.11", "65001"),
        ("198.18.0.10/32", "pop_par", False, "10.20.0.12", "65001 65001"),
    ]
    assert parse_routes("BIRD 2.0.12 ready.\nNetwork not found\n") == []
