"""The SNI-sharing annotations (anycastlb.io/hostnames, sni-ports, sni-default): what each asks
for, each mistake as a problem that quotes the annotation, and the listeners reconcile builds."""

import dataclasses

import pytest

from anycastlb.k8s.annotations import HOSTNAMES, POOL, SHARING_KEY, SNI_DEFAULT, SNI_PORTS, read_options
from anycastlb.k8s.reconcile import Desired, Invalid, reconcile
from anycastlb.k8s.views import ControllerSettings, NodeView, ServicePortView, ServiceView

SETTINGS = ControllerSettings(cluster="prod")
HTTP = ServicePortView("http", "TCP", 80, 30080)
HTTPS = ServicePortView("https", "TCP", 443, 30443)
ALT = ServicePortView("alt", "TCP", 8443, 30843)
NODES = (NodeView("n1", {}, (("InternalIP", "10.0.0.1"),)),)
WEB = ServiceView(
    namespace="shop",
    name="web",
    uid="uid-web",
    type="LoadBalancer",
    load_balancer_class=SETTINGS.load_balancer_class,
    annotations={},
    ports=(HTTP, HTTPS),
)


def service(annotations: dict[str, str], ports: tuple[ServicePortView, ...] = (HTTP, HTTPS)) -> ServiceView:
    return dataclasses.replace(WEB, ports=ports, annotations=annotations)


def test_hostnames_are_read_in_canonical_form() -> None:
    options = read_options({HOSTNAMES: " Shop.Example.com , *.shop.example.com."})
    assert options.problems == ()
    assert options.hostnames == ("shop.example.com", "*.shop.example.com")
    assert options.sni_ports == (443,) and options.sni_default is False


def test_sni_ports_and_default_are_read() -> None:
    options = read_options({HOSTNAMES: "a.example.com", SNI_PORTS: "8443, 443", SNI_DEFAULT: "True"})
    assert options.problems == ()
    assert options.sni_ports == (443, 8443) and options.sni_default is True


@pytest.mark.parametrize(
    ("annotations", "words"),
    [
        ({HOSTNAMES: "shop"}, [f"{HOSTNAMES}='shop'", "at least two labels"]),
        ({HOSTNAMES: "a.example.com,A.example.com"}, ["listed twice"]),
        ({HOSTNAMES: "sh*p.example.com"}, ["only as the whole first label"]),
        ({HOSTNAMES: " , "}, ["names no hostname"]),
        ({HOSTNAMES: "a.example.com", SNI_PORTS: "https"}, [f"{SNI_PORTS}='https'", "is not a port"]),
        ({HOSTNAMES: "a.example.com", SNI_PORTS: "70000"}, ["is not a port"]),
        (
            {HOSTNAMES: "a.example.com", SNI_DEFAULT: "yes"},
            [f"{SNI_DEFAULT}='yes' must be 'true' or 'false'"],
        ),
        ({SNI_DEFAULT: "true"}, [f"needs {HOSTNAMES}"]),
    ],
)
def test_a_bad_sni_annotation_is_one_problem_that_quotes_it(
    annotations: dict[str, str], words: list[str]
) -> None:
    problems = read_options(annotations).problems
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0]


def test_sni_ports_without_hostnames_is_a_warning() -> None:
    options = read_options({SNI_PORTS: "443"})
    assert options.problems == ()
    assert options.warnings == (f"{SNI_PORTS} has no effect without {HOSTNAMES}; add hostnames or remove it",)


def test_the_hostnames_go_to_port_443_only_by_default() -> None:
    decision = reconcile(
        service({HOSTNAMES: "shop.example.com", SNI_DEFAULT: "true", SHARING_KEY: "web"}),
        NODES,
        (),
        SETTINGS,
    )
    assert isinstance(decision, Desired), decision
    by_port = {listener.port: listener for listener in decision.spec.listeners}
    assert by_port[443].hostnames == ("shop.example.com",) and by_port[443].sni_default
    assert by_port[80].hostnames == () and not by_port[80].sni_default
    assert decision.spec.ips.sharing_key == "web"


def test_sni_ports_choose_the_tls_ports() -> None:
    decision = reconcile(
        service({HOSTNAMES: "a.example.com", SNI_PORTS: "8443"}, (HTTPS, ALT)), NODES, (), SETTINGS
    )
    assert isinstance(decision, Desired), decision
    assert [(listener.port, listener.hostnames) for listener in decision.spec.listeners] == [
        (443, ()),
        (8443, ("a.example.com",)),
    ]


def test_hostnames_on_a_service_without_port_443_is_invalid_and_says_what_to_set() -> None:
    decision = reconcile(service({HOSTNAMES: "a.example.com"}, (ALT,)), NODES, (), SETTINGS)
    assert isinstance(decision, Invalid)
    assert any(f"set {SNI_PORTS} to its TLS port(s), e.g. '8443'" in problem for problem in decision.problems)


def test_sni_ports_naming_a_port_the_service_lacks_is_invalid() -> None:
    decision = reconcile(service({HOSTNAMES: "a.example.com", SNI_PORTS: "443,8443"}), NODES, (), SETTINGS)
    assert isinstance(decision, Invalid)
    assert any(
        "names 8443, which the Service has no TCP port for" in problem for problem in decision.problems
    )
    assert any("its TCP ports: 80, 443" in problem for problem in decision.problems)


def test_the_pool_annotation_names_the_pool_to_allocate_from() -> None:
    decision = reconcile(service({POOL: "shared-https", SHARING_KEY: "https"}), NODES, (), SETTINGS)
    assert isinstance(decision, Desired), decision
    assert (decision.spec.ips.pool, decision.spec.ips.sharing_key) == ("shared-https", "https")
    (problem,) = read_options({POOL: "Bad Pool"}).problems
    assert problem.startswith(f"{POOL}='Bad Pool': pool 'Bad Pool' must be 1-63 lowercase letters")
