"""``/v1/audit``: who changed what, when (control/audit.py says what is recorded)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.audit import AuditPage
from anycastlb.control.errors import Forbidden
from anycastlb.control.service import audit

router = APIRouter(prefix="/v1", tags=["audit"])
_TEXT = {"max_length": 200, "pattern": r"^[^\x00-\x1f\x7f]*$"}  # a name or an id: no control characters


@router.get("/audit")
def read_audit(
    caller: Caller,
    rt: Rt,
    since: Annotated[
        datetime | None, Query(description="Changes at or after this time (ISO 8601; no zone: UTC)")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Changes before this time (ISO 8601; no zone: UTC)")
    ] = None,
    object_type: Annotated[
        str | None,
        Query(alias="type", description="tenant, token, pool, load_balancer, address, pop, …", **_TEXT),
    ] = None,
    object_name: Annotated[
        str | None, Query(alias="object", description="The object's name", **_TEXT)
    ] = None,
    actor: Annotated[
        str | None, Query(description='"admin", a tenant or PoP name, or a token id (alb_tenant_…)', **_TEXT)
    ] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page", **_TEXT)] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE, description="Entries per page")] = 100,
) -> AuditPage:
    """Changes, newest first: the admin reads all of them, a tenant those of its own objects (also
    the admin's changes to them); a PoP none."""
    if caller.kind == "pop":
        raise Forbidden("a PoP credential cannot read the audit log")
    query = audit.AuditQuery(
        since=since,
        until=until,
        object_type=object_type,
        object_name=object_name,
        actor=actor,
        cursor=cursor,
        limit=limit,
    )
    return rt.read(lambda s: audit.read_audit(s, caller, query))
