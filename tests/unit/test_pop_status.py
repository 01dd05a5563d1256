"""A PoP's status report says which version runs, how each listener's backends are, what the PoP
announces and what it could not do."""

from anycastlb.edge.pop_status import Refusal, pop_status
from anycastlb.model.desired import (
    BgpSession,
    DesiredLoadBalancer,
    PopDesiredState,
    PopProblem,
    PopStatusReport,
)
from anycastlb.wire.health_view import HealthView, ListenerHealth


def lb(name: str, vip: str, ports: list[tuple[int, str]]) -> DesiredLoadBalancer:
    backends = [{"address": "10.0.0.11", "port": 30443}, {"address": "10.0.0.12", "port": 30443}]
    return DesiredLoadBalancer.model_validate(
        {
            "id": f"lb-{name}",
            "tenant": "acme",
            "name": name,
            "version": 1,
            "vips": [vip],
            "listeners": [
                {"port": port, "protocol": protocol, "backends": backends} for port, protocol in ports
            ],
        }
    )


STATE = PopDesiredState(
    pop="fra",
    version=9,
    load_balancers=(
        lb("web", "203.0.113.10", [(443, "tcp")]),
        lb("api", "203.0.113.11", [(443, "tcp"), (53, "udp")]),
    ),
)
VIEW = HealthView(
    published_at=1.0,
    reports_through=1.0,
    listeners={
        "acme-web-443": ListenerHealth(
            serving=True,
            down=frozenset({"10.0.0.12:30443"}),
            weights={"10.0.0.11:30443": 4},
            reasons={"10.0.0.12:30443": "down: connect refused (2 in a row)"},
        ),
        "acme-api-443": ListenerHealth(serving=False, down=frozenset({"10.0.0.11:30443", "10.0.0.12:30443"})),
    },
)


def report(
    applied: PopDesiredState | None = STATE,
    view: HealthView | None = VIEW,
    *,
    bgp: bool = True,
    draining: bool = False,
    refusals: tuple[Refusal, ...] = (),
    unbound: dict[str, str] | None = None,
) -> PopStatusReport:
    return pop_status(
        "fra",
        applied,
        view,
        bgp=bgp,
        draining=draining,
        refusals=refusals,
        active_connections=lambda name: {"acme-web-443": 7}.get(name, 0),
        unbound=unbound,
    )


def test_before_anything_is_applied_the_report_is_version_zero_and_empty() -> None:
    empty = report(applied=None)

    assert (empty.applied_version, empty.listeners, empty.announced, empty.problems) == (0, (), (), ())


def test_each_listener_reports_serving_backends_weights_and_connections() -> None:
    web, api, _ = report().listeners

    assert (web.load_balancer, str(web.address), web.port, web.serving, web.active_connections) == (
        "lb-web",
        "203.0.113.10",
        443,
        True,
        7,
    )
    assert [(str(b.address), b.up, b.weight) for b in web.backends] == [
        ("10.0.0.11", True, 4),
        ("10.0.0.12", False, None),
    ]
    assert (api.serving, [b.up for b in api.backends]) == (False, [False, False])


def test_each_backend_reports_the_reason_of_its_last_transition_or_a_generic_one() -> None:
    web, api, _ = report().listeners

    assert [b.reason for b in web.backends] == ["", "down: connect refused (2 in a row)"]
    assert [b.reason for b in api.backends] == ["down (health checks or failed connects)"] * 2


def test_a_listener_without_a_health_verdict_is_not_serving_yet() -> None:
    web = report(view=None).listeners[0]

    assert (web.serving, web.reason) == (False, "no health verdict yet")


def test_a_skipped_listener_is_reported_unsupported_and_as_a_problem_naming_its_load_balancer() -> None:
    status = report()

    udp = status.listeners[-1]
    assert (udp.load_balancer, udp.protocol, udp.supported, udp.serving) == ("lb-api", "udp", False, False)
    (problem,) = status.problems
    assert problem.message == (
        "203.0.113.11 port 53/udp is not served: udp listeners are not supported by this data plane yet"
    )
    assert (problem.kind, problem.load_balancer) == ("listener_unsupported", "lb-api")
    assert problem.listener is not None
    assert (str(problem.listener.address), problem.listener.port, problem.listener.protocol) == (
        "203.0.113.11",
        53,
        "udp",
    )


def test_only_vips_with_a_serving_listener_are_announced_and_none_while_draining() -> None:
    assert report().announced == ("203.0.113.10/32",)
    assert report(draining=True).announced == ()
    assert report(bgp=False).announced == ()
    assert report(draining=True).draining is True


def test_a_refused_version_newer_than_the_applied_one_is_a_pop_wide_problem() -> None:
    status = report(refusals=(Refusal(8, "old news"), Refusal(10, "listener x: cannot listen")))

    assert status.applied_version == 9
    rejected = [problem for problem in status.problems if problem.kind == "version_rejected"]
    assert [(p.message, p.load_balancer, p.listener) for p in rejected] == [
        ("version 10 rejected: listener x: cannot listen", None, None)
    ]
    assert not any("old news" in problem.message for problem in status.problems)


def test_an_unbound_listener_is_not_serving_not_announced_and_a_problem() -> None:
    status = report(unbound={"acme-web-443": "cannot listen on 203.0.113.10 port 443: in use"})

    web = next(listener for listener in status.listeners if listener.load_balancer == "lb-web")
    assert not web.serving and "in use" in web.reason
    assert status.announced == ()  # its VIP had no other serving listener
    unbound_problems = [problem for problem in status.problems if problem.kind == "listener_unbound"]
    assert [(p.load_balancer, p.listener and p.listener.port) for p in unbound_problems] == [("lb-web", 443)]
    assert "203.0.113.10 port 443/tcp is not served: cannot listen" in unbound_problems[0].message


def test_a_report_of_the_previous_release_with_plain_problem_lines_is_read_as_pop_wide() -> None:
    old = PopStatusReport.model_validate(
        {"pop": "fra", "applied_version": 3, "problems": ["load balancer lb-a: 203.0.113.9 port 53/udp bad"]}
    )

    assert old.problems == (
        PopProblem(kind="other", message="load balancer lb-a: 203.0.113.9 port 53/udp bad"),
    )


def test_a_problem_kind_this_release_does_not_know_is_read_as_other() -> None:
    newer = PopProblem.model_validate({"kind": "listener_on_fire", "message": "hot", "load_balancer": "lb-a"})

    assert (newer.kind, newer.load_balancer) == ("other", "lb-a")


def test_bgp_sessions_are_reported_with_a_bgp_block_only() -> None:
    sessions = (BgpSession(peer="192.0.2.1", up=True), BgpSession(peer="192.0.2.2", up=False))

    with_bgp = pop_status(
        "fra",
        STATE,
        VIEW,
        bgp=True,
        draining=False,
        refusals=(),
        active_connections=lambda _: 0,
        sessions=sessions,
    )
    without = pop_status(
        "fra",
        STATE,
        VIEW,
        bgp=False,
        draining=False,
        refusals=(),
        active_connections=lambda _: 0,
        sessions=sessions,
    )

    assert with_bgp.bgp_sessions == sessions
    assert without.bgp_sessions == ()
