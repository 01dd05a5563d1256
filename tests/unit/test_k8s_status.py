"""status.loadBalancer.ingress: IPs only (never a hostname), ipMode Proxy, the Service's ports; and a
comparison that ignores ipMode (older API servers drop it) so the controller does not loop."""

from collections.abc import Mapping, Sequence

import pytest

from anycastlb.k8s.status import ingress_for, same_ingress
from anycastlb.k8s.views import LOAD_BALANCER_CLASS, ServicePortView, ServiceView

WEB = ServiceView(
    namespace="shop",
    name="web",
    uid="u1",
    type="LoadBalancer",
    load_balancer_class=LOAD_BALANCER_CLASS,
    annotations={},
    ports=(ServicePortView("http", "TCP", 80, 30080), ServicePortView("dns", "UDP", 53, 30053)),
)


def test_ingress_lists_each_ip_with_ip_mode_proxy_and_the_ports() -> None:
    assert ingress_for(["203.0.113.10", "2001:db8::10"], WEB) == (
        {
            "ip": "203.0.113.10",
            "ipMode": "Proxy",
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        },
        {
            "ip": "2001:db8::10",
            "ipMode": "Proxy",
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        },
    )


def test_ingress_never_carries_a_hostname() -> None:
    assert all("hostname" not in entry for entry in ingress_for(["203.0.113.10"], WEB))


def test_no_addresses_is_no_ingress() -> None:
    assert ingress_for([], WEB) == ()


def entry(ip: str, *ports: tuple[int, str], **extra: object) -> dict[str, object]:
    return {"ip": ip, "ports": [{"port": port, "protocol": protocol} for port, protocol in ports], **extra}


DESIRED = ingress_for(["203.0.113.10", "2001:db8::10"], WEB)
HTTP, DNS = (80, "TCP"), (53, "UDP")

COMPARISONS = [
    # (case, current status, same as DESIRED)
    ("what we wrote", list(DESIRED), True),
    (
        "an API server that dropped ipMode",
        [entry("203.0.113.10", HTTP, DNS), entry("2001:db8::10", HTTP, DNS)],
        True,
    ),
    (
        "ipMode VIP instead of Proxy still counts as written",
        [entry("203.0.113.10", HTTP, DNS, ipMode="VIP"), entry("2001:db8::10", HTTP, DNS, ipMode="VIP")],
        True,
    ),
    (
        "ports in another order",
        [entry("203.0.113.10", DNS, HTTP), entry("2001:db8::10", DNS, HTTP)],
        True,
    ),
    (
        "entries in another order",
        [entry("2001:db8::10", HTTP, DNS), entry("203.0.113.10", HTTP, DNS)],
        True,
    ),
    ("an empty status", [], False),
    ("one address missing", [entry("203.0.113.10", HTTP, DNS)], False),
    (
        "another address",
        [entry("203.0.113.11", HTTP, DNS), entry("2001:db8::10", HTTP, DNS)],
        False,
    ),
    ("a port missing", [entry("203.0.113.10", HTTP), entry("2001:db8::10", HTTP, DNS)], False),
    (
        "a port of another protocol",
        [entry("203.0.113.10", HTTP, (53, "TCP")), entry("2001:db8::10", HTTP, DNS)],
        False,
    ),
    (
        "a hostname someone else wrote",
        [entry("203.0.113.10", HTTP, DNS, hostname="lb.example"), entry("2001:db8::10", HTTP, DNS)],
        False,
    ),
    (
        "a port error someone else wrote",
        [
            {
                "ip": "203.0.113.10",
                "ports": [{"port": 80, "protocol": "TCP", "error": "x"}, {"port": 53, "protocol": "UDP"}],
            },
            entry("2001:db8::10", HTTP, DNS),
        ],
        False,
    ),
    (
        "an address twice instead of two",
        [entry("203.0.113.10", HTTP, DNS), entry("203.0.113.10", HTTP, DNS)],
        False,
    ),
]


@pytest.mark.parametrize(("current", "same"), [c[1:] for c in COMPARISONS], ids=[c[0] for c in COMPARISONS])
def test_status_comparison(current: Sequence[Mapping[str, object]], same: bool) -> None:
    assert same_ingress(current, DESIRED) is same
    assert same_ingress(DESIRED, current) is same


def test_a_port_without_protocol_defaults_to_tcp() -> None:
    assert same_ingress([{"ip": "203.0.113.10", "ports": [{"port": 80}]}], [entry("203.0.113.10", HTTP)])


def test_entries_without_ports_compare_by_ip() -> None:
    assert same_ingress([{"ip": "203.0.113.10"}], [{"ip": "203.0.113.10", "ipMode": "Proxy", "ports": []}])
