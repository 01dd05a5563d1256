"""The status page's pure core: which rows each viewer sees, and what they say."""

from datetime import UTC, datetime, timedelta

from anycastlb.control.principal import Principal
from anycastlb.control.status_page.sign_in import cookie_token, csrf_ok, session_value
from anycastlb.control.status_page.views import LbRecord, PopRecord, lb_detail, lb_rows, pop_rows
from anycastlb.model.desired import LoadBalancerSpec, PopStatusReport

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ADMIN, ACME, GLOBEX = Principal("admin", "admin"), Principal("tenant", "acme"), Principal("tenant", "globex")


def lb(tenant: str, name: str, vip: str, pops: tuple[str, ...] = ()) -> LbRecord:
    spec = LoadBalancerSpec.model_validate(
        {
            "name": name,
            "pops": list(pops),
            "listeners": [{"port": 443, "backends": [{"address": "10.0.0.11", "port": 30443, "weight": 3}]}],
        }
    )
    return LbRecord(
        id=f"id-{tenant}-{name}", tenant=tenant, name=name, version=5, addresses=(vip,), spec=spec
    )


LBS = [lb("acme", "web", "203.0.113.10"), lb("globex", "secret", "203.0.113.20", pops=("fra",))]


def listener(lb_id: str, vip: str, up: bool, reason: str = "") -> dict[str, object]:
    return {
        "load_balancer": lb_id,
        "address": vip,
        "port": 443,
        "serving": up,
        "backends": [{"address": "10.0.0.11", "port": 30443, "up": up, "reason": reason}],
    }


FRA = PopRecord(
    name="fra",
    desired_version=7,
    status_at=NOW - timedelta(seconds=3),
    report=PopStatusReport.model_validate(
        {
            "pop": "fra",
            "applied_version": 7,
            "announced": ["203.0.113.10/32", "203.0.113.20/32"],
            "listeners": [
                listener("id-acme-web", "203.0.113.10", False, "down: connect refused (2 in a row)"),
                listener("id-globex-secret", "203.0.113.20", True),
            ],
            "bgp_sessions": [{"peer": "192.0.2.1", "up": True}],
            "problems": [
                {"message": "globex problem", "load_balancer": "id-globex-secret"},
                {"message": "acme problem", "load_balancer": "id-acme-web"},
                {"message": "version 9 rejected: PoP-wide", "kind": "version_rejected"},
            ],
        }
    ),
)
PAR = PopRecord(name="par", desired_version=7, status_at=None, report=None)


def test_the_admin_sees_every_pop_with_versions_all_vips_and_all_problems() -> None:
    fra, par = pop_rows(ADMIN, [PAR, FRA], LBS, NOW)

    assert (fra.name, fra.desired_version, fra.applied_version, fra.in_sync, fra.stale) == (
        "fra",
        7,
        7,
        True,
        False,
    )
    assert fra.announced == ("203.0.113.10/32", "203.0.113.20/32")
    assert fra.problems == (
        "globex/secret: globex problem",
        "acme/web: acme problem",
        "version 9 rejected: PoP-wide",
    )
    assert (fra.listeners_serving, fra.listeners, fra.backends_up, fra.backends) == (1, 2, 1, 2)
    assert (par.reported, par.in_sync, par.stale, par.report_age_seconds) == (False, False, True, None)
    assert [(session.peer, session.up) for session in fra.bgp_sessions] == [("192.0.2.1", True)]


def test_a_tenant_sees_each_pop_only_through_its_own_load_balancers() -> None:
    fra, _ = pop_rows(ACME, [FRA, PAR], LBS, NOW)

    assert (fra.desired_version, fra.applied_version, fra.in_sync) == (None, None, True)
    assert fra.announced == ("203.0.113.10/32",)
    assert fra.problems == ("acme/web: acme problem",)
    assert (fra.listeners, fra.backends_up, fra.backends) == (1, 0, 1)
    assert fra.bgp_sessions == ()  # the platform's peers are not a tenant's business
    assert "globex" not in repr(pop_rows(ACME, [FRA, PAR], LBS, NOW))


def test_a_tenant_lists_only_its_own_load_balancers_and_another_tenants_is_not_found() -> None:
    assert [(row.tenant, row.name) for row in lb_rows(ACME, LBS, [FRA, PAR], NOW)] == [("acme", "web")]
    assert [(row.tenant, row.name) for row in lb_rows(ADMIN, LBS, [FRA, PAR], NOW)] == [
        ("acme", "web"),
        ("globex", "secret"),
    ]
    assert lb_detail(ACME, LBS, [FRA], "globex", "secret", NOW) is None
    assert lb_detail(GLOBEX, LBS, [FRA], "acme", "web", NOW) is None
    assert lb_rows(Principal("pop", "fra"), LBS, [FRA], NOW) == []


def test_a_load_balancers_detail_shows_each_backend_with_weight_and_the_reason_of_its_last_transition() -> (
    None
):
    detail = lb_detail(ACME, LBS, [FRA, PAR], "acme", "web", NOW)
    assert detail is not None
    fra, par = detail.pops

    (backend,) = fra.listeners[0].backends
    assert (backend.address, backend.up, backend.weight, backend.reason) == (
        "10.0.0.11",
        False,
        3,
        "down: connect refused (2 in a row)",
    )
    assert (fra.applied, fra.serving, fra.announced, fra.problems) == (
        True,
        False,
        ("203.0.113.10/32",),
        ("acme problem",),
    )
    assert (par.reported, par.serving, par.listeners) == (False, False, ())
    assert detail.configured == ("443/tcp → 10.0.0.11:30443 w3",)
    assert (detail.row.pops, detail.row.pops_serving, detail.row.pops_announcing) == (2, 0, 1)


def test_a_load_balancer_limited_to_some_pops_is_shown_only_there() -> None:
    detail = lb_detail(ADMIN, LBS, [FRA, PAR], "globex", "secret", NOW)
    assert detail is not None
    assert [pop.pop for pop in detail.pops] == ["fra"]
    assert detail.pops[0].serving


def test_a_report_older_than_30_s_is_stale() -> None:
    old = PopRecord(name="fra", desired_version=7, status_at=NOW - timedelta(seconds=31), report=FRA.report)
    assert pop_rows(ADMIN, [old], LBS, NOW)[0].stale


def test_any_token_survives_the_cookie_and_a_foreign_cookie_is_no_token() -> None:
    for token in ("alb_tenant_ab12_secret", 'admin; "quoted" = ü', "x"):
        assert cookie_token(session_value(token)) == token
    assert cookie_token(None) is None
    assert cookie_token("!!!") is None


def test_a_sign_in_needs_matching_csrf_values_and_this_hosts_origin() -> None:
    assert csrf_ok("abc", "abc", None, "127.0.0.1:8700")
    assert csrf_ok("abc", "abc", "http://127.0.0.1:8700", "127.0.0.1:8700")
    assert not csrf_ok("abc", "abd", None, "127.0.0.1:8700")
    assert not csrf_ok(None, "abc", None, "127.0.0.1:8700")
    assert not csrf_ok("", "", None, "127.0.0.1:8700")
    assert not csrf_ok("abc", "abc", "https://evil.example", "127.0.0.1:8700")
    assert not csrf_ok("abc", "abc", "null", "127.0.0.1:8700")  # a sandboxed frame, a data: page
