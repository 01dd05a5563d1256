"""The control plane's tables (SQLAlchemy 2 declarative). Alembic migrations create them.

Why these columns: an address row exists exactly while the address is held (dynamic: by at least
one load balancer; static: reserved until released), so the UNIQUE index on ``addresses.address`` is
what makes a double allocation impossible, whatever the allocator or the number of API replicas
does. Load balancer specs are stored as the validated JSON of ``LoadBalancerSpec``: the contract
model is the schema, the table only indexes what queries need.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from anycastlb.control.store.utc import UTCDateTime

__all__ = [
    "Address",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Cluster",
    "ClusterNode",
    "ClusterPopKey",
    "LoadBalancer",
    "LoadBalancerAddress",
    "Pool",
    "Pop",
    "Revision",
    "Tenant",
    "TokenGeneration",
    "UsageBucket",
    "UsageCursor",
    "UsageEpoch",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Revision(Base):
    """One row: the store's revision, bumped (under a row lock) by every change a PoP must see.

    Locking this row first in every writing transaction also serializes allocations across API
    replicas on PostgreSQL, so the allocator plans against holdings nobody else is changing.
    """

    __tablename__ = "revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class TokenGeneration(Base):
    """One row: a counter every token change (issue, rotate, revoke, a tenant or PoP deleted) bumps
    in the same transaction. Each control plane replica caches who a token belongs to, and reads
    this counter at most every half second: when it moved, the replica drops its cache, so a
    revocation made on one replica holds on every replica within a second (api/runtime.py)."""

    __tablename__ = "token_generation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    # Private networks (canonical CIDR texts) the admin lets this tenant's backends use; NULL: none.
    allowed_backend_networks: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # The admin's quota overrides; NULL: the process default (control/limits.py).
    max_load_balancers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_addresses: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Pop(Base):
    __tablename__ = "pops"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    desired_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # The public address nodes dial for tunnels (each cluster's own UDP port); NULL: no tunnels here.
    tunnel_endpoint: Mapped[str | None] = mapped_column(String(45), nullable=True)


class ApiToken(Base):
    """A tenant's API token or a PoP's credential. Only the SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # tenant | pop
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True)
    pop_id: Mapped[int | None] = mapped_column(ForeignKey("pops.id", ondelete="CASCADE"), nullable=True)
    description: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # NULL: never expires. Rotation sets it on the old token to the end of its grace period.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Pool(Base):
    __tablename__ = "pools"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    owner_tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=True
    )
    networks: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    reserved: Mapped[list[list[str]]] = mapped_column(JSON, nullable=False)  # [[first, last], ...]
    auto_assign: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Who may share one of its addresses by SNI: "tenant" (the holder's own load balancers under
    # one sharing key) or "pool" (any tenant naming this pool and the key; ipam/plan.py).
    sni_sharing: Mapped[str] = mapped_column(String(8), nullable=False, default="tenant")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Address(Base):
    __tablename__ = "addresses"
    __table_args__ = (Index("ix_addresses_tenant", "tenant_id"), Index("ix_addresses_pool", "pool_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(45), unique=True, nullable=False)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="RESTRICT"), nullable=False)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False)
    static: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    sharing_key: Mapped[str | None] = mapped_column(String(63), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class LoadBalancer(Base):
    __tablename__ = "load_balancers"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_load_balancers_tenant_name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # LoadBalancerSpec.digest() of ``spec``; NULL on rows written before migration 0002 until
    # their next PUT (which then fills it in even when the spec is unchanged).
    spec_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class LoadBalancerAddress(Base):
    __tablename__ = "load_balancer_addresses"
    __table_args__ = (Index("ix_lb_addresses_address", "address_id"),)
    load_balancer_id: Mapped[str] = mapped_column(
        ForeignKey("load_balancers.id", ondelete="CASCADE"), primary_key=True
    )
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id", ondelete="RESTRICT"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)


class AuditEntry(Base):
    """One change made through the API, written in the transaction that made it (service/audit.py):
    a change that rolled back leaves no row, and no committed change lacks one. Never a secret."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_tenant", "tenant", "id"),
        Index("ix_audit_log_at", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the cursor; grows in commit order
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    actor_kind: Mapped[str] = mapped_column(String(8), nullable=False)  # admin | tenant | pop
    actor: Mapped[str] = mapped_column(String(63), nullable=False)  # "admin", the tenant or the PoP
    actor_token: Mapped[str | None] = mapped_column(String(32), nullable=True)  # token id, never a secret
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # create | update | delete | ...
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    object_name: Mapped[str] = mapped_column(String(200), nullable=False)
    # The tenant whose object it is (what a tenant may read); NULL for platform objects.
    tenant: Mapped[str | None] = mapped_column(String(63), nullable=True)
    # The object's version before and after (load balancers; NULL where an object has none, or
    # before a create and after a delete).
    version_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version_after: Mapped[int | None] = mapped_column(Integer, nullable=True)


class UsageEpoch(Base):
    """Per PoP: the counter epoch of its last accounting report, and when it was stored. Its row is
    locked while a report is stored, so two reports of one PoP (a retry racing the original on
    another replica) cannot both count the same growth (control/service/usage.py)."""

    __tablename__ = "usage_epochs"
    pop_id: Mapped[int] = mapped_column(ForeignKey("pops.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[str] = mapped_column(String(64), nullable=False)
    sequence: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class UsageCursor(Base):
    """Per (PoP, edge listener): the cumulative values last stored, in the PoP's current epoch."""

    __tablename__ = "usage_cursors"
    pop_id: Mapped[int] = mapped_column(ForeignKey("pops.id", ondelete="CASCADE"), primary_key=True)
    listener: Mapped[str] = mapped_column(String(63), primary_key=True)
    bytes_in: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bytes_out: Mapped[int] = mapped_column(BigInteger, nullable=False)
    connections: Mapped[int] = mapped_column(BigInteger, nullable=False)


class UsageBucket(Base):
    """Traffic stored in one minute (control/accounting.py RESOLUTION) at one PoP for one load
    balancer's VIP. No foreign keys on purpose: usage outlives the load balancer, the tenant and
    the PoP it was counted for (it is billed after they are gone), so their names are kept too."""

    __tablename__ = "usage_buckets"
    __table_args__ = (
        UniqueConstraint("start", "pop", "load_balancer_id", "vip", name="uq_usage_buckets_key"),
        Index("ix_usage_buckets_tenant_start", "tenant_id", "start"),
        Index("ix_usage_buckets_start", "start"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    pop: Mapped[str] = mapped_column(String(63), nullable=False)
    tenant_id: Mapped[int] = mapped_column(Integer, nullable=False)
    tenant: Mapped[str] = mapped_column(String(63), nullable=False)
    load_balancer_id: Mapped[str] = mapped_column(String(36), nullable=False)
    load_balancer: Mapped[str] = mapped_column(String(63), nullable=False)
    vip: Mapped[str] = mapped_column(String(45), nullable=False)
    bytes_in: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bytes_out: Mapped[int] = mapped_column(BigInteger, nullable=False)
    connections: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Cluster(Base):
    """A tenant's Kubernetes cluster whose nodes reach the PoPs through WireGuard tunnels
    (control/tunnels/). ``version`` grows with every change a node's config shows."""

    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_clusters_tenant_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    tunnels: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    network: Mapped[str] = mapped_column(String(49), unique=True, nullable=False)
    listen_port: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class ClusterPopKey(Base):
    """A PoP's side of one cluster's tunnel: its key (private: only that PoP's desired state
    carries it) and its address in the cluster's network."""

    __tablename__ = "cluster_pop_keys"
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True)
    pop_id: Mapped[int] = mapped_column(ForeignKey("pops.id", ondelete="CASCADE"), primary_key=True)
    private_key: Mapped[str] = mapped_column(String(44), nullable=False)
    public_key: Mapped[str] = mapped_column(String(44), nullable=False)
    address: Mapped[str] = mapped_column(String(45), nullable=False)


class ClusterNode(Base):
    """A node of a cluster: its key and tunnel address, and during a rotation the previous public
    key and address, kept as a PoP peer until ``previous_until`` (control/tunnels/rotation.py)."""

    __tablename__ = "cluster_nodes"
    __table_args__ = (UniqueConstraint("cluster_id", "name", name="uq_cluster_nodes_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(253), nullable=False)
    private_key: Mapped[str] = mapped_column(String(44), nullable=False)
    public_key: Mapped[str] = mapped_column(String(44), nullable=False)
    address: Mapped[str] = mapped_column(String(45), nullable=False)
    previous_public_key: Mapped[str | None] = mapped_column(String(44), nullable=True)
    previous_address: Mapped[str | None] = mapped_column(String(45), nullable=True)
    previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
