"""The audit log: written in the transaction of each change, read newest first.

The row is added after the work, in its session: if the work or the commit fails, the row goes
with it. The transaction takes the writers' lock (the ``revision`` row, service/revision.py)
before anything else, so rows are numbered in commit order and ``id`` is a stable cursor: a page
never shifts when newer changes arrive while someone reads older ones.
"""

import re
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from anycastlb.control.audit import AuditEntryOut, AuditPage, Change
from anycastlb.control.errors import Invalid
from anycastlb.control.principal import Principal
from anycastlb.control.service.revision import lock
from anycastlb.control.store.tables import AuditEntry, Cluster, LoadBalancer, Tenant, utcnow

__all__ = ["AuditQuery", "read_audit", "record", "version_before"]

# Objects with a version: a request that left it unchanged (an idempotent PUT) writes no row.
_VERSIONED = frozenset({"load_balancer", "cluster", "cluster_nodes"})

MAX_PAGE = 1000
_CURSOR = re.compile(r"[0-9]{1,18}")


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC (what every time this API answers is in)."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise Invalid(f"{moment.isoformat()} is out of range once read as UTC") from None


def version_before(session: Session, change: Change) -> int | None:
    """Take the writers' lock, then read the object's version (for objects that have one) before
    the work runs. Under the lock, no concurrent writer moves it between this read and the work
    (PostgreSQL, READ COMMITTED), and audit ids are handed out in commit order."""
    lock(session)
    if change.object_type not in _VERSIONED or not change.name or change.tenant is None:
        return None
    if change.object_type != "load_balancer":
        return session.execute(
            select(Cluster.version)
            .join(Tenant, Tenant.id == Cluster.tenant_id)
            .where(Tenant.name == change.tenant, Cluster.name == change.name)
        ).scalar_one_or_none()
    return session.execute(
        select(LoadBalancer.version)
        .join(Tenant, Tenant.id == LoadBalancer.tenant_id)
        .where(Tenant.name == change.tenant, LoadBalancer.name == change.name)
    ).scalar_one_or_none()


def record(
    session: Session, change: Change, result: object, before: int | None, request_id: str
) -> AuditEntry | None:
    """Add the row for a change whose work returned ``result``; None when nothing changed (a load
    balancer PUT with the spec it already had keeps its version: no row)."""
    after = version_before(session, change)
    if change.object_type in _VERSIONED and before is not None and before == after:
        return None
    name = change.name_of(result) if change.name_of is not None else change.name
    # A PUT creates what does not exist yet: its row says so.
    action = "create" if change.action == "update" and before is None and after is not None else change.action
    entry = AuditEntry(
        at=utcnow(),
        request_id=request_id,
        actor_kind=change.actor.kind,
        actor=change.actor.name,
        actor_token=change.actor.token_id,
        action=action,
        object_type=change.object_type,
        object_name=name,
        tenant=change.tenant,
        version_before=before,
        version_after=after,
    )
    session.add(entry)
    return entry


class AuditQuery:
    """The filters of ``GET /v1/audit``; each is optional."""

    def __init__(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        object_type: str | None = None,
        object_name: str | None = None,
        actor: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> None:
        self.since, self.until = _utc(since), _utc(until)
        self.object_type, self.object_name, self.actor = object_type, object_name, actor
        self.limit = limit
        self.before_id: int | None = None
        if cursor is not None:
            if not _CURSOR.fullmatch(cursor):
                raise Invalid(f"query parameter cursor: {cursor!r} is not a cursor this API answered")
            self.before_id = int(cursor)


def read_audit(session: Session, caller: Principal, query: AuditQuery) -> AuditPage:
    """One page, newest first: the admin reads every row, a tenant those of its objects."""
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(query.limit + 1)
    if caller.kind == "tenant":
        statement = statement.where(AuditEntry.tenant == caller.name)
    if query.before_id is not None:
        statement = statement.where(AuditEntry.id < query.before_id)
    if query.since is not None:
        statement = statement.where(AuditEntry.at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditEntry.at < query.until)
    if query.object_type is not None:
        statement = statement.where(AuditEntry.object_type == query.object_type)
    if query.object_name is not None:
        statement = statement.where(AuditEntry.object_name == query.object_name)
    if query.actor is not None:
        statement = statement.where(
            or_(AuditEntry.actor == query.actor, AuditEntry.actor_token == query.actor)
        )
    rows = list(session.execute(statement).scalars())
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    entries = tuple(
        AuditEntryOut(
            id=row.id,
            at=row.at,
            request_id=row.request_id,
            actor_kind=row.actor_kind,
            actor=row.actor,
            actor_token=row.actor_token,
            action=row.action,
            object_type=row.object_type,
            object_name=row.object_name,
            tenant=row.tenant,
            version_before=row.version_before,
            version_after=row.version_after,
        )
        for row in rows
    )
    return AuditPage(entries=entries, next_cursor=str(rows[-1].id) if more and rows else None)
