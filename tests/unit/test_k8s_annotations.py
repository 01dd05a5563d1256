"""Service annotations: what each asks for, and for each mistake a message that quotes the annotation
and its value and says how to fix it."""

import ipaddress

import pytest

from anycastlb.k8s.annotations import (
    IONOS_NODE_SELECTOR,
    IP_COUNT,
    IPS,
    NODE_SELECTOR,
    POPS,
    PROXY_PROTOCOL,
    SHARING_KEY,
    read_options,
)
from anycastlb.k8s.selectors import parse_selector


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


READS = [
    # (case, annotations, spec.loadBalancerIP, families, field, expected)
    ("no annotations: one dynamic address", {}, None, 1, "ip_count", 1),
    ("no annotations: no named address", {}, None, 1, "addresses", ()),
    ("no annotations: PROXY v2", {}, None, 1, "proxy_protocol", "v2"),
    ("no annotations: the controller's PoPs", {}, None, 1, "pops", None),
    ("no annotations: every node", {}, None, 1, "node_selector", None),
    ("ips names one address", {IPS: "203.0.113.10"}, None, 1, "addresses", (ip("203.0.113.10"),)),
    (
        "ips names both families in order",
        {IPS: "2001:db8::10, 203.0.113.10"},
        None,
        1,
        "addresses",
        (ip("2001:db8::10"), ip("203.0.113.10")),
    ),
    ("ips ignores empty items", {IPS: "203.0.113.10,"}, None, 1, "addresses", (ip("203.0.113.10"),)),
    ("loadBalancerIP names the address", {}, "198.51.100.7", 1, "addresses", (ip("198.51.100.7"),)),
    ("an empty loadBalancerIP is unset", {}, "", 1, "addresses", ()),
    (
        "ips wins over loadBalancerIP",
        {IPS: "203.0.113.10"},
        "198.51.100.7",
        1,
        "addresses",
        (ip("203.0.113.10"),),
    ),
    ("ip-count asks for more", {IP_COUNT: "3"}, None, 1, "ip_count", 3),
    ("ip-count tolerates spaces", {IP_COUNT: " 2 "}, None, 1, "ip_count", 2),
    ("ip-count may reach the limit", {IP_COUNT: "16"}, None, 1, "ip_count", 16),
    ("ip-count per family may reach the limit", {IP_COUNT: "8"}, None, 2, "ip_count", 8),
    ("ip-count is ignored beside named ips", {IPS: "203.0.113.10", IP_COUNT: "3"}, None, 1, "ip_count", 1),
    ("the sharing key is read", {SHARING_KEY: "web-shared"}, None, 1, "sharing_key", "web-shared"),
    ("PROXY v1", {PROXY_PROTOCOL: "v1"}, None, 1, "proxy_protocol", "v1"),
    ("PROXY none", {PROXY_PROTOCOL: "none"}, None, 1, "proxy_protocol", "none"),
    ("PROXY version in capitals", {PROXY_PROTOCOL: " V2 "}, None, 1, "proxy_protocol", "v2"),
    (
        "our node selector",
        {NODE_SELECTOR: "role=edge"},
        None,
        1,
        "node_selector",
        parse_selector("role=edge"),
    ),
    (
        "the IONOS node selector",
        {IONOS_NODE_SELECTOR: "role in (edge)"},
        None,
        1,
        "node_selector",
        parse_selector("role in (edge)"),
    ),
    (
        "our node selector wins over the IONOS one",
        {NODE_SELECTOR: "role=edge", IONOS_NODE_SELECTOR: "role=core"},
        None,
        1,
        "node_selector",
        parse_selector("role=edge"),
    ),
    (
        "the selector's source is quoted for messages",
        {IONOS_NODE_SELECTOR: "role=edge"},
        None,
        1,
        "node_selector_source",
        "cloud.ionos.com/node-selector='role=edge'",
    ),
    ("pops are sorted", {POPS: "fra, ams"}, None, 1, "pops", ("ams", "fra")),
]


@pytest.mark.parametrize(
    ("annotations", "legacy", "families", "field", "expected"),
    [case[1:] for case in READS],
    ids=[case[0] for case in READS],
)
def test_annotation_is_read(
    annotations: dict[str, str], legacy: str | None, families: int, field: str, expected: object
) -> None:
    options = read_options(annotations, legacy, families)
    assert options.problems == ()
    assert getattr(options, field) == expected


PROBLEMS = [
    # (case, annotations, spec.loadBalancerIP, families, words of the one problem)
    (
        "a bad IP in ips",
        {IPS: "203.0.113.300"},
        None,
        1,
        ["anycastlb.io/ips='203.0.113.300'", "'203.0.113.300' is not an IP address", "e.g."],
    ),
    (
        "a bad IP among good ones",
        {IPS: "203.0.113.10,web"},
        None,
        1,
        ["'web' is not an IP address", "separated by commas"],
    ),
    ("an address listed twice", {IPS: "203.0.113.10,203.0.113.10"}, None, 1, ["listed twice", "once"]),
    (
        "more addresses than a load balancer has",
        {IPS: ",".join(f"203.0.113.{i}" for i in range(1, 18))},
        None,
        1,
        ["lists 17 addresses", "at most 16", "split the ports"],
    ),
    ("ips without an address", {IPS: " , "}, None, 1, ["names no address", "or remove it"]),
    (
        "a bad loadBalancerIP",
        {},
        "not-an-ip",
        1,
        ["spec.loadBalancerIP 'not-an-ip'", "is not an IP address"],
    ),
    ("ip-count zero", {IP_COUNT: "0"}, None, 1, ["anycastlb.io/ip-count='0'", "between 1 and 16"]),
    ("ip-count 1000", {IP_COUNT: "1000"}, None, 1, ["anycastlb.io/ip-count='1000'", "between 1 and 16"]),
    ("ip-count negative", {IP_COUNT: "-1"}, None, 1, ["between 1 and 16"]),
    ("ip-count not a number", {IP_COUNT: "two"}, None, 1, ["'two' is not a number", "e.g. '2'"]),
    ("ip-count a fraction", {IP_COUNT: "1.5"}, None, 1, ["is not a number"]),
    ("ip-count with an underscore", {IP_COUNT: "1_0"}, None, 1, ["is not a number"]),
    (
        "ip-count too many for two families",
        {IP_COUNT: "9"},
        None,
        2,
        ["9 IPs of each of 2 IP families (18 in all)", "lower the count to 8", "single-stack"],
    ),
    (
        "a sharing key with capitals",
        {SHARING_KEY: "Web"},
        None,
        1,
        ["anycastlb.io/sharing-key='Web'", "lowercase", "e.g. 'web-shared'"],
    ),
    ("a sharing key too long", {SHARING_KEY: "k" * 64}, None, 1, ["1-63"]),
    (
        "an unknown PROXY version",
        {PROXY_PROTOCOL: "v3"},
        None,
        1,
        ["anycastlb.io/proxy-protocol='v3'", "use 'v2' (the default), 'v1', or 'none'"],
    ),
    ("an empty PROXY version", {PROXY_PROTOCOL: ""}, None, 1, ["is not a PROXY protocol version"]),
    (
        "a broken node selector",
        {NODE_SELECTOR: "role in (edge"},
        None,
        1,
        [
            "anycastlb.io/node-selector='role in (edge'",
            "character 14: expected ',' or ')'",
            "kubectl get nodes -l",
        ],
    ),
    (
        "a broken IONOS node selector",
        {IONOS_NODE_SELECTOR: "role in"},
        None,
        1,
        ["cloud.ionos.com/node-selector='role in'", "expected '('"],
    ),
    (
        "a bad PoP name",
        {POPS: "fra,AMS"},
        None,
        1,
        ["anycastlb.io/pops='fra,AMS'", "'AMS'", "e.g. 'fra,ams'"],
    ),
    ("pops without a PoP", {POPS: ","}, None, 1, ["names no PoP", "or remove it"]),
    ("a PoP listed twice", {POPS: "fra, ams,fra"}, None, 1, ["fra is listed twice", "list each PoP once"]),
]


@pytest.mark.parametrize(
    ("annotations", "legacy", "families", "words"),
    [case[1:] for case in PROBLEMS],
    ids=[case[0] for case in PROBLEMS],
)
def test_annotation_mistake_says_what_and_how(
    annotations: dict[str, str], legacy: str | None, families: int, words: list[str]
) -> None:
    problems = read_options(annotations, legacy, families).problems
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0]


def test_every_mistake_is_reported_at_once() -> None:
    options = read_options({IPS: "x", SHARING_KEY: "X", PROXY_PROTOCOL: "v9", NODE_SELECTOR: "(", POPS: "!"})
    assert [problem.split("=")[0].split(":")[0] for problem in options.problems] == [
        IPS,
        SHARING_KEY,
        PROXY_PROTOCOL,
        NODE_SELECTOR,
        POPS,
    ]
    assert not options.node_selector_valid


WARNINGS = [
    # (case, annotations, spec.loadBalancerIP, words of the one warning)
    (
        "loadBalancerIP is deprecated",
        {},
        "198.51.100.7",
        ["deprecated", "move '198.51.100.7' to the annotation anycastlb.io/ips", "clear spec.loadBalancerIP"],
    ),
    (
        "loadBalancerIP beside ips is ignored",
        {IPS: "203.0.113.10"},
        "198.51.100.7",
        ["spec.loadBalancerIP '198.51.100.7' is ignored because anycastlb.io/ips is set"],
    ),
    (
        "ip-count beside named addresses is ignored",
        {IPS: "203.0.113.10", IP_COUNT: "2"},
        None,
        ["anycastlb.io/ip-count='2' is ignored"],
    ),
    (
        "two different node selectors",
        {NODE_SELECTOR: "a", IONOS_NODE_SELECTOR: "b"},
        None,
        ["cloud.ionos.com/node-selector is ignored because anycastlb.io/node-selector is set"],
    ),
    (
        "a misspelt annotation",
        {"anycastlb.io/ip": "203.0.113.10"},
        None,
        ["unknown annotation 'anycastlb.io/ip'", "check its spelling", "anycastlb.io/ips"],
    ),
]


@pytest.mark.parametrize(
    ("annotations", "legacy", "words"), [case[1:] for case in WARNINGS], ids=[case[0] for case in WARNINGS]
)
def test_annotation_warning(annotations: dict[str, str], legacy: str | None, words: list[str]) -> None:
    options = read_options(annotations, legacy)
    assert options.problems == ()
    assert len(options.warnings) == 1, options.warnings
    for word in words:
        assert word in options.warnings[0]


def test_a_selector_error_counts_characters_of_the_annotation_as_written() -> None:
    (problem,) = read_options({NODE_SELECTOR: "  role=(edge"}).problems
    assert "(character 8: expected a label value, found '(')" in problem


def test_the_same_selector_twice_is_not_a_warning() -> None:
    options = read_options({NODE_SELECTOR: "role=edge", IONOS_NODE_SELECTOR: "role=edge"})
    assert options.warnings == ()


def test_other_annotations_are_none_of_our_business() -> None:
    options = read_options({"kubectl.kubernetes.io/last-applied-configuration": "{}", "example.com/x": "y"})
    assert options.problems == options.warnings == ()
