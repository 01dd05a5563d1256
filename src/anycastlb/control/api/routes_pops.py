"""``/v1/pops``: the admin registers PoPs; each PoP long-polls its desired state and reports back.

The watch is a long poll, not a stream, on purpose: every answer is the complete desired state, so
a PoP that missed anything (a restart, a dropped connection, a control plane fail-over) is whole
again after one request, and any HTTP proxy or load balancer in between handles it.
"""

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.api.runtime import Runtime
from anycastlb.control.audit import Change
from anycastlb.control.errors import Invalid
from anycastlb.control.schemas import PopCreate, PopCreated, PopOut, TokenCreated, TokenOut, TokenRotate
from anycastlb.control.service import pops, tokens
from anycastlb.control.service.usage import StoredUsage, record_usage
from anycastlb.control.store.tables import utcnow
from anycastlb.model.desired import PopDesiredState, PopStatusReport

router = APIRouter(prefix="/v1/pops", tags=["pops"])

# Watchers also re-read the version this often: a change committed by another control plane
# replica (PostgreSQL) wakes no local notifier.
_CROSS_REPLICA_POLL = 1.0
# The longest a watch waits: well under the idle timeouts of the proxies a PoP may sit behind.
MAX_WATCH_SECONDS = 60.0
WATCH_TIMEOUT_HEADER = "Anycastlb-Watch-Timeout"


@router.post("", status_code=status.HTTP_201_CREATED)
def create_pop(body: PopCreate, caller: Caller, rt: Rt) -> PopCreated:
    """Register a PoP; the answer carries its credential (shown once)."""
    caller.require_admin()
    return rt.write(
        lambda s: pops.create_pop(s, body.name, body.tunnel_endpoint),
        change=Change(caller, "create", "pop", body.name),
    )


@router.get("")
def list_pops(caller: Caller, rt: Rt) -> list[PopOut]:
    """Every PoP with its last report. Tenants may list them (a spec's ``pops`` names them) but see
    no problems: those name other tenants' load balancers."""
    if caller.kind == "pop":
        caller.require_admin()
    found = rt.read(pops.list_pops)
    if caller.kind == "tenant":
        found = [pop.model_copy(update={"problems": ()}) for pop in found]
    return found


@router.get("/{pop}")
def get_pop(pop: str, caller: Caller, rt: Rt) -> PopOut:
    caller.require_pop_read(pop)
    return rt.read(lambda s: pops.get_pop(s, pop))


@router.delete("/{pop}", status_code=status.HTTP_204_NO_CONTENT)
def delete_pop(pop: str, caller: Caller, rt: Rt) -> None:
    caller.require_admin()
    rt.write(lambda s: pops.delete_pop(s, pop), change=Change(caller, "delete", "pop", pop))
    rt.forget_tokens()


@router.get("/{pop}/credentials")
def list_credentials(pop: str, caller: Caller, rt: Rt) -> list[TokenOut]:
    """The PoP's credentials (ids, expiry; never secrets): after a rotation, the old one with the
    end of its grace period."""
    caller.require_admin()
    return rt.read(lambda s: tokens.list_pop_credentials(s, pop))


@router.post("/{pop}/credentials/rotate", status_code=status.HTTP_201_CREATED)
def rotate_credential(pop: str, body: TokenRotate, caller: Caller, rt: Rt) -> TokenCreated:
    """A new credential for the PoP (shown once). Its old ones keep working for ``grace_seconds``
    (default an hour): install the new one on the PoP and restart its agent within that time."""
    caller.require_admin()
    created = rt.write(
        lambda s: tokens.rotate_pop_credential(s, pop, body),
        change=Change(caller, "rotate", "pop_credential", pop),
        notify=False,
    )
    rt.forget_tokens()
    return created


@router.get(
    "/{pop}/desired",
    response_class=Response,
    responses={
        200: {
            "model": PopDesiredState,
            "description": "The PoP's complete desired state",
            "headers": {
                WATCH_TIMEOUT_HEADER: {
                    "description": "With watch: the seconds the request waited at most (timeout, "
                    f"capped at {MAX_WATCH_SECONDS:.0f})",
                    "schema": {"type": "string"},
                }
            },
        }
    },
)
async def desired_state(
    pop: str,
    caller: Caller,
    rt: Rt,
    request: Request,
    watch: Annotated[bool, Query(description="Long poll: answer once the version is above `since`")] = False,
    since: Annotated[int, Query(ge=0, description="The version the PoP has")] = 0,
    timeout: Annotated[
        float,
        Query(
            ge=0,
            description=f"Seconds to wait at most; more than {MAX_WATCH_SECONDS:.0f} is capped at "
            f"{MAX_WATCH_SECONDS:.0f} (the {WATCH_TIMEOUT_HEADER} header of a watch answer says the "
            "wait used)",
        ),
    ] = 30,
) -> Response:
    """The complete desired state of one PoP. With ``watch``, waits until it is newer than
    ``since`` (or ``timeout`` passes, then answers the current state). A longer ``timeout`` than
    the maximum is capped rather than refused: a client asking to wait longer loses nothing by
    being answered sooner, and a refusal would stop it following at all."""
    caller.require_pop_read(pop)
    headers: dict[str, str] = {}
    if watch:
        waited = min(timeout, MAX_WATCH_SECONDS)
        headers[WATCH_TIMEOUT_HEADER] = f"{waited:g}"
        rt.metrics.watchers.inc()
        try:
            if not await _wait_for_version(rt, request, pop, since, time.monotonic() + waited):
                return Response(status_code=499)  # the PoP hung up; nobody reads this
        finally:
            rt.metrics.watchers.dec()
    body = rt.cached_state(pop)
    if body is None:
        body = await run_in_threadpool(rt.desired_state, pop)
    return Response(body, media_type="application/json", headers=headers)


async def _wait_for_version(rt: Runtime, request: Request, pop: str, since: int, deadline: float) -> bool:
    """Wait until the PoP's version is above ``since`` or the deadline passed; False if the client
    went away meanwhile (its long poll must not keep re-reading versions until the timeout)."""
    while True:
        event = rt.notifier.snapshot()
        version = rt.cached_pop_version(pop)
        if version is None:
            version = await run_in_threadpool(rt.pop_version, pop)
        remaining = deadline - time.monotonic()
        if version > since or remaining <= 0:
            return True
        await rt.notifier.wait(event, min(remaining, _CROSS_REPLICA_POLL))
        if await request.is_disconnected():
            return False


@router.put("/{pop}/status", status_code=status.HTTP_204_NO_CONTENT)
def report_status(pop: str, report: PopStatusReport, caller: Caller, rt: Rt) -> None:
    """What the PoP runs: applied version, listeners serving, backends up, VIPs announced."""
    caller.require_pop_itself(pop)
    if report.pop != pop:
        raise Invalid(f"the report's pop {report.pop!r} differs from the path's {pop!r}")

    def store(session: Session) -> list[StoredUsage]:
        pops.store_status(session, report)
        if report.usage is None:  # a PoP of an earlier release
            return []
        return record_usage(session, pop, report.usage, utcnow())

    # Not audited: an observation the PoP repeats every few seconds, not a change of configuration
    # (control/audit.py). No PoP's desired state changed either: no wake-up.
    stored = rt.write(store, change=None, notify=False)
    rt.metrics.usage.stored(stored)
