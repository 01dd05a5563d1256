"""Request and response bodies of the HTTP API (load balancer specs are the tier contract,
``anycastlb.model.desired``; these are the control plane's own objects around them)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from anycastlb.control.backend_policy import check_tenant_allow_list
from anycastlb.control.cluster_schemas import check_tunnel_endpoint
from anycastlb.control.ipam import SniSharing
from anycastlb.control.tokens import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, MAX_TTL_SECONDS
from anycastlb.model.addresses import Address, AddressError, parse_address, parse_network
from anycastlb.model.base import Frozen, IPAddress, check_name
from anycastlb.model.desired import IPFamily, LoadBalancerSpec, PopProblem

__all__ = [
    "AddressOut",
    "IPReservation",
    "LimitsOut",
    "LoadBalancerOut",
    "LoadBalancerStatus",
    "PoolCreate",
    "PoolOut",
    "PoolUpdate",
    "PopCreate",
    "PopCreated",
    "PopOut",
    "PopStatusSummary",
    "TenantCreate",
    "TenantLimits",
    "TenantLimitsOut",
    "TenantOut",
    "TenantUpdate",
    "TokenCreate",
    "TokenCreated",
    "TokenOut",
    "TokenRotate",
    "WhoAmI",
    "parse_range",
]

Name = Annotated[str, Field(min_length=1, max_length=63, examples=["acme"])]


def parse_range(text: str) -> tuple[Address, Address]:
    """``203.0.113.10-203.0.113.20``, a CIDR, or one address → an inclusive (first, last) pair.
    Each part goes through the one parser (``model/addresses.py``): no spaces, no scope ids."""
    try:
        if "-" in text:
            first_text, last_text = text.split("-", 1)
            first, last = parse_address(first_text), parse_address(last_text)
        elif "/" in text:
            network = parse_network(text)
            first, last = network[0], network[-1]
        else:
            first = last = parse_address(text)
    except AddressError as error:
        raise ValueError(
            f"reserved range {text!r} is not FIRST-LAST, a CIDR or an address ({error})"
        ) from None
    if first.version != last.version or int(first) > int(last):
        raise ValueError(f"reserved range {text!r}: first must not be after last, same family")
    return first, last


def _networks(value: tuple[str, ...], what: str) -> tuple[str, ...]:
    """Each network in its canonical text (the store compares them as text)."""
    normalized = []
    for text in value:
        try:
            normalized.append(str(parse_network(text)))
        except AddressError as error:
            raise ValueError(f"{what}: {error}") from None
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{what} lists a network twice")
    return tuple(normalized)


class WhoAmI(Frozen):
    kind: Literal["admin", "tenant", "pop"]
    name: str


AllowedBackendNetworks = Annotated[
    tuple[str, ...],
    Field(
        max_length=64,
        description="Private networks (RFC 1918, 100.64.0.0/10, fc00::/7) this tenant's backends may use, "
        "e.g. an on-premises cluster's nodes; set by the admin only. Empty: no private backends.",
        examples=[["10.20.0.0/16"]],
    ),
]


class TenantCreate(Frozen):
    name: Name
    allowed_backend_networks: AllowedBackendNetworks = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "tenant name")

    @field_validator("allowed_backend_networks")
    @classmethod
    def _allowed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_tenant_allow_list(_networks(value, "allowed_backend_networks"))


class TenantUpdate(Frozen):
    allowed_backend_networks: AllowedBackendNetworks | None = None

    @field_validator("allowed_backend_networks")
    @classmethod
    def _allowed(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return check_tenant_allow_list(_networks(value, "allowed_backend_networks"))


class TenantOut(Frozen):
    name: str
    created_at: datetime
    load_balancers: int
    addresses: int
    allowed_backend_networks: tuple[str, ...] = ()


TtlSeconds = Annotated[
    int | None,
    Field(
        ge=1,
        le=MAX_TTL_SECONDS,
        description="Seconds until the token expires; null (the default): it never expires",
    ),
]


class TokenCreate(Frozen):
    description: Annotated[str, Field(max_length=200)] = ""
    ttl_seconds: TtlSeconds = None


class TokenRotate(Frozen):
    """A new secret for the same tenant or PoP; the old one keeps working for ``grace_seconds``."""

    grace_seconds: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_GRACE_SECONDS,
            description="How long the old secret keeps working (0: it stops now)",
        ),
    ] = DEFAULT_GRACE_SECONDS
    ttl_seconds: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_TTL_SECONDS,
            description="The new token's lifetime; null: the old token's lifetime (never, if it had none)",
        ),
    ] = None


class TokenOut(Frozen):
    token_id: str
    description: str
    created_at: datetime
    expires_at: datetime | None = Field(description="null: never expires")


class TokenCreated(TokenOut):
    secret: str = Field(description="Shown once; store it now. Only its hash is kept.")


class PoolCreate(Frozen):
    name: Name
    networks: Annotated[tuple[str, ...], Field(min_length=1, max_length=64, examples=[["203.0.113.0/24"]])]
    reserved: Annotated[tuple[str, ...], Field(max_length=256)] = ()
    owner: str | None = Field(default=None, description="Tenant that owns this BYOIP pool; null: platform")
    auto_assign: bool = True
    sni_sharing: SniSharing = Field(
        default="tenant",
        description="Who may share an address of this pool on one port, routed by TLS SNI: 'tenant' "
        "(load balancers of the holder tenant under one sharing key) or 'pool' (any tenant that names "
        "this pool in ips.pool and the same ips.sharing_key)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "pool name")

    @field_validator("networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value, "networks")

    @field_validator("reserved")
    @classmethod
    def _reserved(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_range(text)
        return value


class PoolUpdate(Frozen):
    auto_assign: bool | None = None
    sni_sharing: SniSharing | None = None
    reserved: Annotated[tuple[str, ...] | None, Field(max_length=256)] = None

    @field_validator("reserved")
    @classmethod
    def _reserved(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for text in value or ():
            parse_range(text)
        return value


class PoolOut(Frozen):
    name: str
    networks: tuple[str, ...]
    reserved: tuple[str, ...]
    owner: str | None
    auto_assign: bool
    sni_sharing: SniSharing = "tenant"
    capacity: dict[str, int]
    in_use: int
    created_at: datetime


class IPReservation(Frozen):
    address: IPAddress | None = None
    pool: str | None = None
    family: IPFamily = "ipv4"

    @model_validator(mode="after")
    def _family_matches(self) -> "IPReservation":
        if self.address is not None and f"ipv{self.address.version}" != self.family:
            return self.model_copy(update={"family": f"ipv{self.address.version}"})
        return self


class AddressOut(Frozen):
    address: str
    tenant: str
    pool: str
    static: bool
    sharing_key: str | None
    load_balancers: tuple[str, ...]
    created_at: datetime


class LoadBalancerOut(Frozen):
    id: str
    tenant: str
    name: str
    version: int
    addresses: tuple[str, ...]
    spec: LoadBalancerSpec
    created_at: datetime
    updated_at: datetime


class LoadBalancerVersion(Frozen):
    """A load balancer without its spec: what a controller compares, in one small request, on
    each resync (a version other than the one it was answered: changed or deleted behind its
    back) and when it starts (a digest equal to its own spec's: nothing to send)."""

    name: str
    version: int
    spec_digest: str | None  # LoadBalancerSpec.digest(); None until the next PUT on old rows
    addresses: tuple[str, ...]


class PopCreate(Frozen):
    name: Name
    tunnel_endpoint: str | None = Field(
        default=None, description="The PoP's public address nodes dial for tunnels (each cluster's port)"
    )

    @field_validator("tunnel_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return check_tunnel_endpoint(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "pop name")


class PopOut(Frozen):
    name: str
    desired_version: int
    applied_version: int | None
    last_report_at: datetime | None
    report_age_seconds: float | None
    stale: bool
    draining: bool
    listeners: int
    listeners_serving: int
    announced: tuple[str, ...]
    problems: tuple[PopProblem, ...] = Field(
        description="Every problem the PoP reported (the admin, the PoP itself); empty for tenants"
    )
    created_at: datetime
    tunnel_endpoint: str | None = Field(
        default=None, description="The public address nodes dial for tunnels (null: no tunnels here)"
    )


class PopCreated(PopOut):
    token: TokenCreated


class PopStatusSummary(Frozen):
    """One PoP's view of one load balancer."""

    pop: str
    applied: bool  # the PoP runs this load balancer's current version
    stale: bool  # no report for a while: the numbers below are old
    listeners_serving: int
    listeners: int
    backends_up: int
    backends: int
    active_connections: int
    announced: tuple[str, ...]
    problems: tuple[PopProblem, ...] = Field(description="Only the problems naming this load balancer")
    last_report_at: datetime | None


class LoadBalancerStatus(Frozen):
    name: str
    version: int
    addresses: tuple[str, ...]
    ready: bool = Field(description="Applied and serving at one PoP at least")
    pops_applied: int
    pops_serving: int
    pops: tuple[PopStatusSummary, ...]


class LimitsOut(Frozen):
    """The control plane's process-level limits (``anycastlb control --max-…``)."""

    max_body_bytes: int
    listeners_per_load_balancer: int
    backends_per_listener: int
    backends_per_load_balancer: int
    load_balancers_per_tenant: int = Field(description="Default; the admin may override it per tenant")
    addresses_per_tenant: int = Field(description="Default; the admin may override it per tenant")


class TenantLimits(Frozen):
    """The admin's quota overrides for one tenant; null: the process default."""

    load_balancers: Annotated[int | None, Field(ge=1, le=10_000_000)] = None
    addresses: Annotated[int | None, Field(ge=1, le=10_000_000)] = None


class TenantLimitsOut(Frozen):
    """A tenant's effective quotas and what it holds now."""

    tenant: str
    load_balancers: int
    addresses: int
    load_balancers_held: int
    addresses_held: int
    overridden: tuple[str, ...] = Field(description="Quotas set for this tenant rather than the default")
