"""The status page when load balancers of two tenants share one VIP:443 by SNI: each tenant sees
its own listener and hostnames there, never the other's; rows show which names route where."""

from datetime import UTC, datetime, timedelta

from anycastlb.control.principal import Principal
from anycastlb.control.status_page.views import LbRecord, PopRecord, lb_detail, lb_rows, pop_rows
from anycastlb.model.desired import LoadBalancerSpec, PopStatusReport

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
VIP = "198.51.100.1"
ACME, GLOBEX = Principal("tenant", "acme"), Principal("tenant", "globex")


def lb(tenant: str, name: str, hostnames: list[str], default: bool = False) -> LbRecord:
    spec = LoadBalancerSpec.model_validate(
        {
            "name": name,
            "listeners": [
                {
                    "port": 443,
                    "hostnames": hostnames,
                    "sni_default": default,
                    "backends": [{"address": "10.0.0.11", "port": 30443}],
                }
            ],
        }
    )
    return LbRecord(id=f"id-{tenant}", tenant=tenant, name=name, version=1, addresses=(VIP,), spec=spec)


LBS = [
    lb("acme", "shop", ["shop.acme.com", "*.acme.com"], default=True),
    lb("globex", "api", ["api.globex.com"]),
]
FRA = PopRecord(
    name="fra",
    desired_version=1,
    status_at=NOW - timedelta(seconds=1),
    report=PopStatusReport.model_validate(
        {
            "pop": "fra",
            "applied_version": 1,
            "announced": [f"{VIP}/32"],
            "listeners": [
                {"load_balancer": f"id-{tenant}", "address": VIP, "port": 443, "serving": up, "backends": []}
                for tenant, up in (("acme", True), ("globex", False))
            ],
        }
    ),
)


def test_each_tenant_sees_only_its_own_listener_on_a_shared_vip_and_port() -> None:
    (acme,) = pop_rows(ACME, [FRA], LBS, NOW)
    (globex,) = pop_rows(GLOBEX, [FRA], LBS, NOW)
    assert (acme.listeners, acme.listeners_serving) == (1, 1)
    assert (globex.listeners, globex.listeners_serving) == (1, 0)
    assert "globex" not in repr(pop_rows(ACME, [FRA], LBS, NOW))


def test_a_row_shows_the_hostnames_a_shared_port_routes_to_it() -> None:
    (row,) = lb_rows(ACME, LBS, [FRA], NOW)
    assert row.listeners == ("443/tcp (SNI shop.acme.com, *.acme.com; default)",)
    detail = lb_detail(GLOBEX, LBS, [FRA], "globex", "api", NOW)
    assert detail is not None
    assert detail.configured[0].startswith("443/tcp (SNI api.globex.com) → ")
    assert [item.serving for pop in detail.pops for item in pop.listeners] == [False]
