"""PoPs: their credentials, the desired state each must serve, and the status each reports."""

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from anycastlb.control.errors import Conflict, NotFound
from anycastlb.control.schemas import LoadBalancerStatus, PopCreated, PopOut, PopStatusSummary
from anycastlb.control.service.clusters import ensure_pop_keys, forget_pop, pop_tunnels
from anycastlb.control.service.load_balancers import addresses_of, get_load_balancer
from anycastlb.control.service.revision import bump, bump_token_generation, lock
from anycastlb.control.service.tokens import issue_token
from anycastlb.control.store.tables import LoadBalancer, Pop, Tenant, utcnow
from anycastlb.control.tunnels.served import backend_blocks
from anycastlb.model.addresses import parse_address
from anycastlb.model.config import ListenerSettings
from anycastlb.model.desired import DesiredLoadBalancer, PopDesiredState, PopProblem, PopStatusReport
from anycastlb.model.duration import STORED_SECONDS

__all__ = [
    "STALE_AFTER",
    "all_desired_versions",
    "create_pop",
    "delete_pop",
    "desired_state",
    "desired_version",
    "desired_version_and_tunnels",
    "get_pop",
    "list_pops",
    "load_balancer_status",
    "store_status",
]

STALE_AFTER = 30.0  # seconds without a report before a PoP's numbers are shown as stale


def _pop(session: Session, name: str) -> Pop:
    pop = session.execute(select(Pop).where(Pop.name == name)).scalar_one_or_none()
    if pop is None:
        raise NotFound(f"PoP {name!r} not found")
    return pop


def _age(pop: Pop) -> float | None:
    if pop.status_at is None:
        return None
    return max(0.0, (datetime.now(UTC) - pop.status_at).total_seconds())


def _report(pop: Pop) -> PopStatusReport | None:
    return PopStatusReport.model_validate(pop.status) if pop.status is not None else None


def _problems_of(report: PopStatusReport | None, load_balancer_id: str) -> tuple[PopProblem, ...]:
    """The problems that name this load balancer by id: a tenant's view of a PoP's report. PoP-wide
    problems (no load balancer; every line of a previous-release PoP) are the admin's only."""
    if report is None:
        return ()
    return tuple(problem for problem in report.problems if problem.load_balancer == load_balancer_id)


def _out(pop: Pop) -> PopOut:
    report, age = _report(pop), _age(pop)
    listeners = report.listeners if report else ()
    return PopOut(
        name=pop.name,
        desired_version=pop.desired_version,
        applied_version=report.applied_version if report else None,
        last_report_at=pop.status_at,
        report_age_seconds=age,
        stale=age is None or age > STALE_AFTER,
        draining=report.draining if report else False,
        listeners=len(listeners),
        listeners_serving=sum(1 for listener in listeners if listener.serving),
        announced=report.announced if report else (),
        problems=report.problems if report else (),
        created_at=pop.created_at,
        tunnel_endpoint=pop.tunnel_endpoint,
    )


def create_pop(session: Session, name: str, tunnel_endpoint: str | None = None) -> PopCreated:
    lock(session)
    if session.execute(select(Pop.id).where(Pop.name == name)).first() is not None:
        raise Conflict(f"PoP {name!r} already exists")
    pop = Pop(name=name, desired_version=bump(session), tunnel_endpoint=tunnel_endpoint)
    session.add(pop)
    session.flush()
    ensure_pop_keys(session, pop)  # its side of every cluster's tunnel
    token = issue_token(session, kind="pop", tenant_id=None, pop_id=pop.id, description=f"PoP {name}")
    return PopCreated(**_out(pop).model_dump(), token=token)


def list_pops(session: Session) -> list[PopOut]:
    return [_out(pop) for pop in session.execute(select(Pop).order_by(Pop.name)).scalars()]


def get_pop(session: Session, name: str) -> PopOut:
    return _out(_pop(session, name))


def delete_pop(session: Session, name: str) -> None:
    lock(session)
    pop = _pop(session, name)
    users = [
        lb.name for lb in session.execute(select(LoadBalancer)).scalars() if name in lb.spec.get("pops", [])
    ]
    if users:
        raise Conflict(
            f"PoP {name!r} is named by load balancers {', '.join(sorted(users)[:10])}; "
            "remove it from their pops first"
        )
    session.delete(pop)  # its credentials and its tunnel keys go with it (ON DELETE CASCADE)
    bump_token_generation(session)
    forget_pop(session)


def desired_version(session: Session, name: str) -> int:
    version = session.execute(select(Pop.desired_version).where(Pop.name == name)).scalar_one_or_none()
    if version is None:
        raise NotFound(f"PoP {name!r} not found")
    return int(version)


def desired_version_and_tunnels(session: Session, name: str) -> tuple[int, bool]:
    """The PoP's desired version, and whether it has a tunnel endpoint (without one it gets no
    tunnel interfaces, and the renderer skips looking for them: no query more than before)."""
    row = session.execute(
        select(Pop.desired_version, Pop.tunnel_endpoint).where(Pop.name == name)
    ).one_or_none()
    if row is None:
        raise NotFound(f"PoP {name!r} not found")
    return int(row[0]), row[1] is not None


def all_desired_versions(session: Session) -> dict[str, int]:
    return {name: int(version) for name, version in session.execute(select(Pop.name, Pop.desired_version))}


def desired_state(session: Session, name: str) -> PopDesiredState:
    """Every load balancer this PoP serves (named in its ``pops``, or with ``pops`` empty)."""
    pop = _pop(session, name)
    rows = session.execute(
        select(LoadBalancer, Tenant.name)
        .join(Tenant, Tenant.id == LoadBalancer.tenant_id)
        .order_by(Tenant.name, LoadBalancer.name)
    ).all()
    served = [(lb, tenant) for lb, tenant in rows if not lb.spec.get("pops") or name in lb.spec["pops"]]
    vips = addresses_of(session, [lb.id for lb, _ in served])
    load_balancers = tuple(desired_load_balancer(lb, tenant, vips.get(lb.id, ())) for lb, tenant in served)

    def blocks_of(tenants: frozenset[str]) -> dict[str, frozenset[int]]:
        blocks: dict[str, frozenset[int]] = {}
        for lb in load_balancers:
            if lb.tenant in tenants:
                blocks[lb.tenant] = blocks.get(lb.tenant, frozenset()) | backend_blocks(lb.listeners)
        return blocks

    return PopDesiredState(
        pop=name,
        version=pop.desired_version,
        load_balancers=load_balancers,
        tunnels=pop_tunnels(session, name, blocks_of),
    )


def store_status(session: Session, report: PopStatusReport) -> None:
    pop = _pop(session, report.pop)
    pop.status = report.model_dump(mode="json", exclude={"usage"})  # accounting: service/usage.py
    pop.status_at = utcnow()


def load_balancer_status(session: Session, tenant: str, name: str) -> LoadBalancerStatus:
    """Aggregate the PoPs' reports for one load balancer."""
    lb = get_load_balancer(session, tenant, name)
    pops = session.execute(select(Pop).order_by(Pop.name)).scalars().all()
    summaries = []
    for pop in pops:
        if lb.spec.pops and pop.name not in lb.spec.pops:
            continue
        report, age = _report(pop), _age(pop)
        mine = (
            [listener for listener in report.listeners if listener.load_balancer == lb.id] if report else []
        )
        announced = tuple(
            prefix for prefix in (report.announced if report else ()) if prefix.split("/")[0] in lb.addresses
        )
        summaries.append(
            PopStatusSummary(
                pop=pop.name,
                applied=report is not None and report.applied_version >= lb.version,
                stale=age is None or age > STALE_AFTER,
                listeners_serving=sum(1 for listener in mine if listener.serving),
                listeners=len(mine),
                backends_up=sum(1 for listener in mine for backend in listener.backends if backend.up),
                backends=sum(len(listener.backends) for listener in mine),
                active_connections=sum(listener.active_connections for listener in mine),
                announced=announced,
                problems=_problems_of(report, lb.id),
                last_report_at=pop.status_at,
            )
        )
    serving = [s for s in summaries if s.applied and not s.stale and s.listeners_serving > 0]
    return LoadBalancerStatus(
        name=lb.name,
        version=lb.version,
        addresses=lb.addresses,
        ready=bool(serving),
        pops_applied=sum(1 for s in summaries if s.applied),
        pops_serving=len(serving),
        pops=tuple(summaries),
    )


def desired_load_balancer(lb: LoadBalancer, tenant: str, vips: Iterable[str]) -> DesiredLoadBalancer:
    """A stored load balancer as a PoP's desired state lists it; its listeners may have been stored
    by an earlier release (durations as bare seconds)."""
    return DesiredLoadBalancer(
        id=lb.id,
        tenant=tenant,
        name=lb.name,
        version=lb.version,
        vips=tuple(parse_address(text) for text in vips),
        listeners=tuple(
            ListenerSettings.model_validate(item, context=STORED_SECONDS) for item in lb.spec["listeners"]
        ),
    )
