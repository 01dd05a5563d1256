"""Which listener of a shared port serves a ClientHello: the Python rule and the core's C router
agree, case by case and on random names; the config refuses sharers the router could not tell apart."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anycastlb.dataplane.native import core_module
from anycastlb.dataplane.sni_group import default_member, group_listener, group_name, is_shared, routes
from anycastlb.model.config import ConfigError, Listener, parse_config
from anycastlb.model.hostnames import route_for


def member(name: str, *hostnames: str, default: bool = False, **settings: Any) -> Listener:
    return Listener.model_validate(
        {
            "name": name,
            "address": "203.0.113.10",
            "port": 443,
            "hostnames": hostnames,
            "sni_default": default,
            **settings,
        }
    )


SHOP = member("shop", "shop.example.com", "www.example.com")
WILD = member("wild", "*.example.com", default=True)
API = member("api", "api.example.org", "*.api.example.org")


def c_route(server_name: str | None, members: list[Listener]) -> int | None:
    name = server_name.encode("ascii") if server_name is not None else None
    index = core_module.route_server_name(name, routes(members), default_member(members))
    return None if index < 0 else index


CASES = [
    # (server name, members, expected member name or None: a reset)
    ("shop.example.com", [SHOP, WILD, API], "shop"),
    ("shop.example.com", [WILD, SHOP, API], "shop"),  # exact wins over a wildcard, in any order
    ("blog.example.com", [SHOP, WILD, API], "wild"),
    ("SHOP.Example.COM", [SHOP, WILD, API], "shop"),  # a name matches in any case
    ("shop.example.com.", [SHOP, WILD, API], "shop"),  # a trailing dot is the same name
    ("a.b.example.com", [SHOP, API], None),  # a wildcard covers one label only; no default: reset
    ("a.b.example.com", [SHOP, WILD, API], "wild"),  # ... and with a default it goes there
    ("example.com", [SHOP, WILD], "wild"),  # the parent itself is not covered: the default
    ("example.com", [SHOP, API], None),
    ("*.example.com", [SHOP, API, member("w", "*.example.com")], None),  # "*" is not a label
    ("api.example.org", [SHOP, WILD, API], "api"),
    ("v1.api.example.org", [SHOP, WILD, API], "api"),
    (None, [SHOP, WILD, API], "wild"),  # no SNI (not TLS, none sent, a hello cut short): the default
    (None, [SHOP, API], None),  # ... or a reset
    ("", [SHOP, API], None),
    ("unknown.net", [SHOP, API], None),
    ("unknown.net", [member("d", "d.example.net", default=True), SHOP], "d"),
    ("xshop.example.com", [SHOP], None),  # no suffix matching
    ("hop.example.com", [SHOP], None),
]


@pytest.mark.parametrize(("server_name", "members", "expected"), CASES)
def test_the_c_router_and_the_python_rule_pick_the_same_member(
    server_name: str | None, members: list[Listener], expected: str | None
) -> None:
    python = route_for(server_name, members)
    c = c_route(server_name, members)

    assert python == c
    assert (members[python].name if python is not None else None) == expected


LABEL = st.sampled_from(["a", "b", "shop", "xn--bcher-kva", "*"])


@given(
    labels=st.lists(LABEL, min_size=0, max_size=4),
    trailing_dot=st.booleans(),
    upper=st.booleans(),
)
def test_the_routers_agree_on_random_names(labels: list[str], trailing_dot: bool, upper: bool) -> None:
    members = [
        member("one", "a.b", "shop.a.b"),
        member("two", "*.a.b", "*.b.shop", default=True),
        member("three", "b.a", "*.shop.a"),
    ]
    name = ".".join(labels) + ("." if trailing_dot and labels else "")
    name = name.upper() if upper else name

    assert route_for(name, members) == c_route(name, members)
    assert route_for(name, members[:1] + members[2:]) == c_route(name, members[:1] + members[2:])


def config_with(*listeners: dict[str, Any]) -> None:
    parse_config({"pop": "fra", "listeners": list(listeners)})


def raw(name: str, *hostnames: str, default: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "address": "203.0.113.10", "port": 443}
    if hostnames:
        entry["hostnames"] = list(hostnames)
    if default:
        entry["sni_default"] = True
    return entry


def test_listeners_naming_disjoint_hostnames_share_a_port() -> None:
    config_with(raw("a", "a.example.com", default=True), raw("b", "b.example.com"), raw("c", "*.example.com"))


@pytest.mark.parametrize(
    ("listeners", "message"),
    [
        (
            [raw("a", "a.example.com"), raw("b")],
            "listeners 'a' and 'b' both bind 203.0.113.10 port 443/tcp; to share it give each hostnames "
            "(SNI routing: 'b' names none), or move one to another address or port",
        ),
        ([raw("a"), raw("b")], "(SNI routing: 'a' and 'b' name none)"),
        (
            [raw("a", "a.example.com", "x.example.com"), raw("b", "X.example.com")],
            "listeners 'a' and 'b' on 203.0.113.10 port 443/tcp both name hostname 'x.example.com'; a "
            "server name routes to one listener: remove it from one of them",
        ),
        (
            [
                raw("a", "a.example.com", default=True),
                raw("b", "b.example.com"),
                raw("c", "c.x.y", default=True),
            ],
            "listeners 'a' and 'c' on 203.0.113.10 port 443/tcp both set sni_default; at most one listener "
            "of a shared port takes connections no hostname matches: unset it on one",
        ),
    ],
    ids=["one-without-hostnames", "none-with-hostnames", "same-hostname", "two-defaults"],
)
def test_sharers_the_router_could_not_tell_apart_are_refused_naming_both(
    listeners: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        config_with(*listeners)

    assert message in str(error.value)


def test_the_group_socket_admits_under_limits_no_member_is_stricter_than() -> None:
    members = [
        member("a", "a.x.y", max_connections=10, max_connections_per_source=2, new_connections_per_second=5),
        member("b", "b.x.y", max_connections=30, max_connections_per_source=7, new_connections_per_second=20),
        member("c", "c.x.y", first_data_timeout="20s", client_hello_wait="1s", source_prefix_v4=24),
    ]

    group = group_listener(members[:2])
    assert (group.max_connections, group.max_connections_per_source) == (40, 7)
    assert group.new_connections_per_second == 25
    assert group.name == "sni:203.0.113.10:443" == group_name(members[0])
    assert group.backends == () and group.hostnames == ()

    group = group_listener(members)
    assert group.new_connections_per_second is None  # one member without a rate: no group rate
    assert (group.first_data_timeout, group.client_hello_wait) == (20.0, 1.0)
    assert group.source_prefix_v4 == 32  # the finest prefix: never groups sources a member keeps apart


def test_a_lone_listener_with_hostnames_is_served_as_a_group_and_a_plain_one_is_not() -> None:
    assert is_shared([SHOP])
    assert not is_shared([member("plain")])
    assert routes([SHOP, WILD]) == [("shop.example.com", 0), ("www.example.com", 0), ("*.example.com", 1)]
    assert default_member([SHOP, WILD]) == 1
    assert default_member([SHOP, API]) == -1
