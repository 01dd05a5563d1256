"""The backend policy (control/backend_policy.py) and the edge's own-endpoint check
(edge/own_endpoints.py) as pure functions: the rule table, row by row."""

import ipaddress

import pytest

from anycastlb.control.backend_policy import BackendPolicy, PlatformAddresses, backend_refusal
from anycastlb.edge.own_endpoints import OwnEndpoints, self_backend_reason
from anycastlb.model.config import Backend, MetricsEndpoint

ip = ipaddress.ip_address
net = ipaddress.ip_network

POLICY = BackendPolicy(
    platform=PlatformAddresses(
        control_plane=(ip("192.0.2.10"),), platform_networks=(net("198.51.100.0/24"),), lab_networks=()
    ),
    pools=(("platform", net("203.0.113.0/24")), ("v6", net("2001:db8:1::/64"))),
    tenant_allowed=(net("10.1.0.0/16"),),
)


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("0.0.0.0", "not-unicast"),
        ("::", "not-unicast"),
        ("255.255.255.255", "not-unicast"),
        ("239.1.1.1", "not-unicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.254", "reserved"),
        ("::ffff:127.0.0.1", "ipv4-mapped"),
        ("203.0.113.9", "vip"),
        ("2001:db8:1::5", "vip"),
        ("192.0.2.10", "control-plane"),
        ("198.51.100.1", "platform-network"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.2.0.1", "private"),
        ("172.31.255.1", "private"),
        ("100.127.0.1", "private"),
        ("fc00::1", "private"),
        ("10.1.2.3", None),  # inside the tenant's allow-list
        ("192.0.2.11", None),  # a public (documentation) address
        ("2001:db8:2::1", None),
    ],
)
def test_each_backend_is_judged_by_the_first_rule_of_the_table(address: str, rule: str | None) -> None:
    refusal = backend_refusal(ip(address), POLICY)
    assert (refusal.rule if refusal else None) == rule


def test_the_lab_switch_lifts_loopback_private_and_platform_rules_but_never_vips_or_broadcast() -> None:
    lab = BackendPolicy(
        platform=PlatformAddresses(
            control_plane=(ip("127.0.0.1"),), lab_networks=(net("127.0.0.0/8"), net("10.0.0.0/8"))
        ),
        pools=(("lab", net("127.77.0.0/24")),),
    )
    assert backend_refusal(ip("127.0.0.1"), lab) is None
    assert backend_refusal(ip("10.9.9.9"), lab) is None
    refusal = backend_refusal(ip("127.77.0.5"), lab)
    assert refusal is not None and refusal.rule == "vip"
    refusal = backend_refusal(ip("192.168.0.1"), lab)
    assert refusal is not None and refusal.rule == "private"


METRICS = MetricsEndpoint(address=ip("127.0.0.1"), port=9100)


@pytest.mark.parametrize(
    ("metrics", "backend", "words"),
    [
        (METRICS, "127.0.0.1:9100", "metrics endpoint"),
        (METRICS, "127.0.0.2:9100", None),
        (MetricsEndpoint(address=ip("0.0.0.0"), port=9100), "127.0.0.2:9100", "metrics endpoint"),
        (MetricsEndpoint(address=ip("::"), port=9100), "203.0.113.1:9100", "metrics endpoint"),  # a VIP
        (MetricsEndpoint(address=ip("0.0.0.0"), port=9100), "192.0.2.1:9100", None),
        (None, "127.0.0.1:9100", None),
        (METRICS, "203.0.113.1:443", "a listener of this edge"),
        (METRICS, "203.0.113.1:444", None),
    ],
)
def test_the_edge_refuses_a_backend_that_is_one_of_its_own_endpoints(
    metrics: MetricsEndpoint | None, backend: str, words: str | None
) -> None:
    address, _, port = backend.rpartition(":")
    own = OwnEndpoints.of([(ip("203.0.113.1"), 443)], metrics)
    reason = self_backend_reason([Backend(address=ip(address), port=int(port))], own)
    assert (reason is None) == (words is None)
    if words is not None:
        assert reason is not None and words in reason and backend in reason
