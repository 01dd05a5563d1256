"""``/v1/tenants/{tenant}/…``: a tenant's load balancers and IP addresses."""

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.audit import Change
from anycastlb.control.errors import Invalid
from anycastlb.control.preconditions import etag, parse_if_match
from anycastlb.control.schemas import (
    AddressOut,
    IPReservation,
    LoadBalancerOut,
    LoadBalancerStatus,
    LoadBalancerVersion,
)
from anycastlb.control.service import addresses, load_balancers, pops
from anycastlb.control.service.prepared import PreparedSpec
from anycastlb.model.addresses import AddressError, parse_address
from anycastlb.model.desired import LoadBalancerSpec

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["load balancers"])


_ETAG = {
    "ETag": {
        "description": 'The load balancer\'s version as an entity tag ("7"): send it back as If-Match',
        "schema": {"type": "string"},
    }
}
_PRECONDITION = (
    "If-Match named a version that is no longer current (or a weak tag, or the load balancer does "
    "not exist); the detail gives the current ETag"
)


def _json(out: LoadBalancerOut, status_code: int) -> Response:
    """The answer serialized once, in this worker thread, with its ``ETag``. Returned as a model,
    FastAPI would dump it, validate the dump against the response model again and serialize it in
    the event loop: ~100 ms of GIL-holding calls at 10,000 backends, which stalled every other
    request."""
    return Response(
        out.model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": etag(out.version)},
    )


def _address(reserved: AddressOut) -> str:
    return reserved.address


@router.get("/loadbalancers")
def list_load_balancers(tenant: str, caller: Caller, rt: Rt) -> list[LoadBalancerOut]:
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: load_balancers.list_load_balancers(s, tenant))


@router.get("/loadbalancer-versions")
def load_balancer_versions(tenant: str, caller: Caller, rt: Rt) -> list[LoadBalancerVersion]:
    """Every load balancer's name and version, no specs: a controller's cheap check for changes
    made behind its back (an unchanged version means the spec it last sent is still in force)."""
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: load_balancers.load_balancer_versions(s, tenant))


@router.post(
    "/loadbalancers",
    status_code=status.HTTP_201_CREATED,
    response_model=LoadBalancerOut,
    responses={201: {"headers": _ETAG}},
)
def create_load_balancer(tenant: str, spec: LoadBalancerSpec, caller: Caller, rt: Rt) -> Response:
    """Allocate its VIPs and hand it to its PoPs. 409 if the name exists (PUT updates)."""
    caller.require_tenant_access(tenant)
    prepared = PreparedSpec.of(spec)  # here, in the worker thread: not under the writers' lock
    rt.read(lambda s: load_balancers.check_backends(s, tenant, spec, rt.platform))  # and this
    out = rt.write(
        lambda s: load_balancers.create_load_balancer(s, tenant, prepared, rt.limits),
        change=Change(caller, "create", "load_balancer", spec.name, tenant),
    )
    return _json(out, status.HTTP_201_CREATED)


@router.put(
    "/loadbalancers/{name}",
    response_model=LoadBalancerOut,
    responses={
        200: {"description": "Updated (or unchanged)", "headers": _ETAG},
        201: {"model": LoadBalancerOut, "description": "Created", "headers": _ETAG},
        412: {"description": _PRECONDITION},
    },
)
def ensure_load_balancer(
    tenant: str,
    name: str,
    spec: LoadBalancerSpec,
    caller: Caller,
    rt: Rt,
    if_match: Annotated[
        str | None,
        Header(
            description='Apply only while the load balancer\'s ETag is still this one ("7", as GET and PUT '
            "answer it; a list of them; or * for any existing load balancer). Weak tags (W/) never "
            "match. 412 otherwise."
        ),
    ] = None,
) -> Response:
    """Create or update to exactly this spec (idempotent: the same spec keeps the version)."""
    caller.require_tenant_access(tenant)
    precondition = parse_if_match(if_match)
    if spec.name != name:
        raise Invalid(f"the body's name {spec.name!r} differs from the path's {name!r}")
    prepared = PreparedSpec.of(spec)  # here, in the worker thread: not under the writers' lock
    rt.read(lambda s: load_balancers.check_backends(s, tenant, spec, rt.platform))  # and this
    out, created = rt.write(
        lambda s: load_balancers.ensure_load_balancer(s, tenant, prepared, rt.limits, precondition),
        change=Change(caller, "update", "load_balancer", name, tenant),
    )
    return _json(out, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@router.get("/loadbalancers/{name}", response_model=LoadBalancerOut, responses={200: {"headers": _ETAG}})
def get_load_balancer(tenant: str, name: str, caller: Caller, rt: Rt) -> Response:
    caller.require_tenant_access(tenant)
    return _json(rt.read(lambda s: load_balancers.get_load_balancer(s, tenant, name)), status.HTTP_200_OK)


@router.get("/loadbalancers/{name}/status")
def load_balancer_status(tenant: str, name: str, caller: Caller, rt: Rt) -> LoadBalancerStatus:
    """Per PoP: applied, serving, backends up, VIPs announced; ready once one PoP serves it."""
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: pops.load_balancer_status(s, tenant, name))


@router.delete("/loadbalancers/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_load_balancer(tenant: str, name: str, caller: Caller, rt: Rt) -> None:
    """Stop serving it everywhere; dynamic VIPs are freed, reserved ones stay with the tenant."""
    caller.require_tenant_access(tenant)
    rt.write(
        lambda s: load_balancers.delete_load_balancer(s, tenant, name),
        change=Change(caller, "delete", "load_balancer", name, tenant),
    )


@router.get("/ips", tags=["ips"])
def list_addresses(tenant: str, caller: Caller, rt: Rt) -> list[AddressOut]:
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: addresses.list_addresses(s, tenant))


@router.post("/ips/reserve", status_code=status.HTTP_201_CREATED, tags=["ips"])
def reserve_address(tenant: str, body: IPReservation, caller: Caller, rt: Rt) -> AddressOut:
    """A static IP: a given free address, or the next free one of a family (and pool). Kept after
    its load balancers are deleted, until released. Reserving one of the tenant's dynamic VIPs
    makes it static."""
    caller.require_tenant_access(tenant)
    return rt.write(
        lambda s: addresses.reserve(s, tenant, body, rt.limits),
        change=Change(caller, "reserve", "address", tenant=tenant, name_of=_address),
    )


@router.delete("/ips/{address}", status_code=status.HTTP_204_NO_CONTENT, tags=["ips"])
def release_address(tenant: str, address: str, caller: Caller, rt: Rt) -> None:
    caller.require_tenant_access(tenant)
    try:
        parsed = parse_address(address)
    except AddressError as error:
        raise Invalid(f"path parameter address: {error}") from None
    rt.write(
        lambda s: addresses.release(s, tenant, parsed),
        change=Change(caller, "release", "address", str(parsed), tenant),
    )
