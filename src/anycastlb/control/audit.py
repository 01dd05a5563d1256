"""What the audit log records about a change, and how it answers (``GET /v1/audit``).

A route describes its change as a :class:`Change` (who, what, which object) and hands it to
``Runtime.write`` with the work; the runtime writes the audit row in the same transaction as the
work (``service/audit.py``), so a change that rolled back leaves no row and a committed change
always has one. What is recorded, and what is not:

- every configuration change: tenants, their tokens (issue, rotate, revoke), quotas, pools,
  load balancers, reserved addresses, PoPs and their credentials; once per successful request;
- not a PoP's status report (``PUT /v1/pops/{pop}/status``): it is an observation the PoP repeats
  every few seconds, not a change of configuration; the PoP's row keeps the last one;
- not a ``PUT`` of a load balancer whose spec did not change (a controller's resync): nothing
  changed, the version stays;
- not a ``PUT`` of a cluster or its node set that changed nothing (the controller's resync);
- never a secret: a token is named by its id (``alb_tenant_<id>``), its secret is not stored; a
  key rotation is recorded as ``rotate cluster_keys <cluster>``, never a key.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from anycastlb.control.principal import Principal
from anycastlb.model.base import Frozen

__all__ = ["Action", "AuditEntryOut", "AuditPage", "Change", "ObjectType"]

Action = Literal["create", "update", "delete", "rotate", "reserve", "release"]
ObjectType = Literal[
    "tenant",
    "token",
    "tenant_limits",
    "pool",
    "load_balancer",
    "address",
    "pop",
    "pop_credential",
    "pop_tunnel_endpoint",
    "cluster",
    "cluster_nodes",
    "cluster_keys",
]


@dataclass(frozen=True, slots=True)
class Change:
    """One change a request makes. ``name`` is the object's name (a load balancer's name, a token's
    id, an address); ``name_of`` names it from the work's result when only that knows it (a new
    token's id, the address the allocator chose). ``tenant``: whose object it is (None: the
    platform's), which is what a tenant may read back."""

    actor: Principal
    action: Action
    object_type: ObjectType
    name: str = ""
    tenant: str | None = None
    name_of: Callable[[Any], str] | None = None


class AuditEntryOut(Frozen):
    id: int = Field(description="Grows with every change, in commit order")
    at: datetime = Field(description="When the change was committed (UTC)")
    request_id: str = Field(description="The request's X-Request-Id (the client's, or one generated)")
    actor_kind: Literal["admin", "tenant", "pop"]
    actor: str = Field(description='"admin", the tenant or the PoP')
    actor_token: str | None = Field(
        description="The id of the token used (never its secret); null: the admin"
    )
    action: str = Field(description="create, update, delete, rotate, reserve or release")
    object_type: str = Field(
        description="tenant, token, tenant_limits, pool, load_balancer, address, pop, pop_credential, "
        "pop_tunnel_endpoint, cluster, cluster_nodes or cluster_keys"
    )
    object_name: str
    tenant: str | None = Field(description="Whose object it is; null: the platform's (pools, PoPs)")
    version_before: int | None = Field(description="The object's version before (load balancers; null: none)")
    version_after: int | None = Field(description="The object's version after (null: deleted, or none)")


class AuditPage(Frozen):
    entries: tuple[AuditEntryOut, ...] = Field(description="Newest first")
    next_cursor: str | None = Field(
        description="Pass as cursor to read the next (older) page; null: this was the last"
    )
