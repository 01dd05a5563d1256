"""Read what the status page shows from the store: the PoPs with their last reports, the load
balancers the viewer may see and their usage (a tenant's query never loads another tenant's rows)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from anycastlb.control.accounting import Window
from anycastlb.control.errors import NotFound
from anycastlb.control.principal import Principal
from anycastlb.control.service.load_balancers import addresses_of
from anycastlb.control.service.usage import query_usage
from anycastlb.control.status_page.views import LbRecord, PopRecord
from anycastlb.control.store.tables import LoadBalancer, Pop, Tenant
from anycastlb.control.usage_schemas import UsageOut
from anycastlb.model.desired import LoadBalancerSpec, PopStatusReport
from anycastlb.model.duration import STORED_SECONDS

__all__ = ["read_load_balancers", "read_pops", "read_usage"]


def read_pops(session: Session) -> list[PopRecord]:
    return [
        PopRecord(
            name=pop.name,
            desired_version=pop.desired_version,
            status_at=pop.status_at,
            report=PopStatusReport.model_validate(pop.status) if pop.status is not None else None,
        )
        for pop in session.execute(select(Pop).order_by(Pop.name)).scalars()
    ]


def read_load_balancers(
    session: Session, viewer: Principal, only: tuple[str, str] | None = None
) -> list[LbRecord]:
    """The admin's: all (or ``only`` the one (tenant, name)); a tenant's: its own; a PoP's: none."""
    if viewer.kind not in ("admin", "tenant"):
        return []
    query = select(LoadBalancer, Tenant.name).join(Tenant, Tenant.id == LoadBalancer.tenant_id)
    if viewer.kind == "tenant":
        query = query.where(Tenant.name == viewer.name)
    if only is not None:
        query = query.where(Tenant.name == only[0], LoadBalancer.name == only[1])
    rows = session.execute(query.order_by(Tenant.name, LoadBalancer.name)).all()
    addresses = addresses_of(session, [lb.id for lb, _ in rows])
    return [
        LbRecord(
            id=lb.id,
            tenant=tenant,
            name=lb.name,
            version=lb.version,
            addresses=addresses.get(lb.id, ()),
            spec=LoadBalancerSpec.model_validate(lb.spec, context=STORED_SECONDS),  # an earlier release's
        )
        for lb, tenant in rows
    ]


def read_usage(session: Session, viewer: Principal, window: Window) -> tuple[UsageOut, set[str]]:
    """The usage API's answer for ``viewer`` (the admin's: every tenant's; a tenant's: its own,
    deleted load balancers included; a PoP's: none), and the ids of the load balancers that exist."""
    empty = UsageOut(since=window.since, until=window.until, step_seconds=window.step, series=())
    if viewer.kind == "admin":
        usage = query_usage(session, window)
    elif viewer.kind == "tenant":
        try:
            usage = query_usage(session, window, viewer.name, own=True)
        except NotFound:  # the tenant was deleted since its token was accepted
            usage = empty
    else:
        usage = empty
    return usage, {lb.id for lb in read_load_balancers(session, viewer)}
