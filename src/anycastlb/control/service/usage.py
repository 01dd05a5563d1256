"""Traffic accounting in the store: a PoP's cumulative counters in, per-minute deltas per load
balancer and VIP out (the arithmetic is control/accounting.py; this is its I/O)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from anycastlb.control.accounting import Counts, Window, advance, bucket_start, into_steps, is_stale
from anycastlb.control.errors import NotFound
from anycastlb.control.store.tables import LoadBalancer, Pop, Tenant, UsageBucket, UsageCursor, UsageEpoch
from anycastlb.control.usage_schemas import UsageCounts, UsageOut, UsagePoint, UsageSeries
from anycastlb.model.usage import UsageReport

__all__ = ["StoredUsage", "last_reports", "query_usage", "record_usage"]


@dataclass(frozen=True, slots=True)
class StoredUsage:
    """What one report added for one load balancer's VIP (for the control plane's own metrics)."""

    tenant: str
    load_balancer: str
    vip: str
    counts: Counts


@dataclass(frozen=True, slots=True)
class _Owner:
    tenant_id: int
    tenant: str
    load_balancer: str


def _owners(session: Session, ids: set[str]) -> dict[str, _Owner]:
    """Who each load balancer id belongs to: from the live table, else (deleted since the edge
    counted it) from the usage it already stored."""
    found = {
        lb_id: _Owner(tenant_id, tenant, name)
        for lb_id, name, tenant_id, tenant in session.execute(
            select(LoadBalancer.id, LoadBalancer.name, Tenant.id, Tenant.name)
            .join(Tenant, Tenant.id == LoadBalancer.tenant_id)
            .where(LoadBalancer.id.in_(ids))
        )
    }
    for lb_id in ids - found.keys():
        row = session.execute(
            select(UsageBucket.tenant_id, UsageBucket.tenant, UsageBucket.load_balancer)
            .where(UsageBucket.load_balancer_id == lb_id)
            .order_by(UsageBucket.start.desc())
            .limit(1)
        ).first()
        if row is not None:
            found[lb_id] = _Owner(row[0], row[1], row[2])
    return found


def last_reports(session: Session) -> dict[str, float]:
    """Every registered PoP: when its last accounting report was stored (Unix time; 0: never)."""
    return {
        name: reported_at.timestamp() if reported_at is not None else 0.0
        for name, reported_at in session.execute(
            select(Pop.name, UsageEpoch.reported_at).outerjoin(UsageEpoch, UsageEpoch.pop_id == Pop.id)
        )
    }


def record_usage(session: Session, pop_name: str, usage: UsageReport, now: datetime) -> list[StoredUsage]:
    """Store what grew since the PoP's last report; returns it per load balancer and VIP."""
    pop_id = session.execute(select(Pop.id).where(Pop.name == pop_name)).scalar_one_or_none()
    if pop_id is None:
        raise NotFound(f"PoP {pop_name!r} not found")
    # The lock: a second report of this PoP waits here, then sees the cursors this one wrote.
    state = session.execute(
        select(UsageEpoch).where(UsageEpoch.pop_id == pop_id).with_for_update()
    ).scalar_one_or_none()
    if state is not None and is_stale((state.epoch, state.sequence), usage.epoch, usage.sequence):
        return []  # sent before what is stored: its counters are in the stored ones already
    cursors = {
        row.listener: row
        for row in session.execute(select(UsageCursor).where(UsageCursor.pop_id == pop_id)).scalars()
    }
    current = {
        entry.listener: Counts(entry.bytes_in, entry.bytes_out, entry.connections)
        for entry in usage.listeners
    }
    stored_epoch = state.epoch if state is not None else None
    deltas = advance(
        stored_epoch,
        {name: Counts(row.bytes_in, row.bytes_out, row.connections) for name, row in cursors.items()},
        usage.epoch,
        current,
    )
    if state is None:
        session.add(UsageEpoch(pop_id=pop_id, epoch=usage.epoch, sequence=usage.sequence, reported_at=now))
    else:
        state.epoch, state.sequence, state.reported_at = usage.epoch, usage.sequence, now
    if stored_epoch != usage.epoch and cursors:
        session.execute(delete(UsageCursor).where(UsageCursor.pop_id == pop_id))
        session.flush()
        cursors = {}
    for name, value in current.items():
        row = cursors.get(name)
        if row is None:
            session.add(UsageCursor(pop_id=pop_id, listener=name, **_columns(value)))
        else:
            row.bytes_in, row.bytes_out, row.connections = value.bytes_in, value.bytes_out, value.connections
    return _add_to_buckets(session, pop_name, usage, deltas, bucket_start(now))


def _columns(counts: Counts) -> dict[str, int]:
    return {"bytes_in": counts.bytes_in, "bytes_out": counts.bytes_out, "connections": counts.connections}


def _add_to_buckets(
    session: Session, pop: str, usage: UsageReport, deltas: dict[str, Counts], start: datetime
) -> list[StoredUsage]:
    per_vip: dict[tuple[str, str], Counts] = {}
    for entry in usage.listeners:
        delta = deltas[entry.listener]
        if delta:
            key = (entry.load_balancer, str(entry.address))
            per_vip[key] = per_vip.get(key, Counts()) + delta
    if not per_vip:
        return []
    owners = _owners(session, {lb_id for lb_id, _ in per_vip})
    stored = []
    for (lb_id, vip), counts in sorted(per_vip.items()):
        owner = owners.get(lb_id)
        if owner is None:  # deleted before its first count was stored: nobody to bill
            continue
        row = session.execute(
            select(UsageBucket).where(
                UsageBucket.start == start,
                UsageBucket.pop == pop,
                UsageBucket.load_balancer_id == lb_id,
                UsageBucket.vip == vip,
            )
        ).scalar_one_or_none()
        if row is None:
            session.add(
                UsageBucket(
                    start=start,
                    pop=pop,
                    tenant_id=owner.tenant_id,
                    tenant=owner.tenant,
                    load_balancer_id=lb_id,
                    load_balancer=owner.load_balancer,
                    vip=vip,
                    **_columns(counts),
                )
            )
        else:
            row.bytes_in += counts.bytes_in
            row.bytes_out += counts.bytes_out
            row.connections += counts.connections
        stored.append(StoredUsage(owner.tenant, owner.load_balancer, vip, counts))
    return stored


def _counts(counts: Counts) -> UsageCounts:
    return UsageCounts(bytes_in=counts.bytes_in, bytes_out=counts.bytes_out, connections=counts.connections)


def query_usage(
    session: Session,
    window: Window,
    tenant: str | None = None,
    load_balancer: str | None = None,
    *,
    own: bool = False,
) -> UsageOut:
    """Usage in ``window`` per (tenant, load balancer, VIP), summed over PoPs; ``tenant`` None: all.
    ``own``: the tenant asks for its own (it must exist; a deleted namesake's usage is not its own),
    else the admin filters by name (a deleted tenant's usage included)."""
    query = select(UsageBucket).where(UsageBucket.start >= window.since, UsageBucket.start < window.until)
    if tenant is not None and not own:
        query = query.where(UsageBucket.tenant == tenant)
    elif tenant is not None:
        tenant_id = session.execute(select(Tenant.id).where(Tenant.name == tenant)).scalar_one_or_none()
        if tenant_id is None:
            raise NotFound(f"tenant {tenant!r} not found")
        # both: a tenant created again under a deleted one's name (or id) sees none of its usage
        query = query.where(UsageBucket.tenant_id == tenant_id, UsageBucket.tenant == tenant)
    if load_balancer is not None:
        query = query.where(UsageBucket.load_balancer == load_balancer)
    series: dict[tuple[str, str, str, str], list[tuple[datetime, Counts]]] = {}
    for row in session.execute(query).scalars():
        key = (row.tenant, row.load_balancer, row.load_balancer_id, row.vip)
        series.setdefault(key, []).append((row.start, Counts(row.bytes_in, row.bytes_out, row.connections)))
    return UsageOut(
        since=window.since,
        until=window.until,
        step_seconds=window.step,
        series=tuple(_series(window, key, rows) for key, rows in sorted(series.items())),
    )


def _series(
    window: Window, key: tuple[str, str, str, str], rows: Iterable[tuple[datetime, Counts]]
) -> UsageSeries:
    steps = into_steps(window, rows)
    total = sum(steps.values(), Counts())
    tenant, name, lb_id, vip = key
    return UsageSeries(
        tenant=tenant,
        load_balancer=name,
        load_balancer_id=lb_id,
        vip=vip,
        total=_counts(total),
        points=tuple(UsagePoint(start=start, **_columns(counts)) for start, counts in steps.items()),
    )
