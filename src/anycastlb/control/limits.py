"""The control plane's limits: how large one request and one load balancer may be, and how many
load balancers and addresses one tenant may hold.

Why these exist: one tenant's load balancer of 200,000 backends (10 MB of JSON) took 4-9 s to
accept, held the writers' lock so another tenant's create waited 3.3 s, and made every PoP's
desired state 20 MB. The spec bounds keep the work a single request can do under the lock (and
under the GIL) small; the tenant quotas keep one tenant from filling the pools or the PoPs.

Defaults are sized for real clusters: Kubernetes' largest supported cluster is 5,000 nodes, so a
listener may have 5,000 backends (one per node, or 2,500 dual-stack nodes); bench/controller.py's
500-node cluster with three ports is 1,500 backends. Every default is measured against the
100 ms stall target in docs/benchmarks.md ("Limits"). The admin raises or lowers each with an
``anycastlb control`` option or its environment variable; the two tenant quotas can also be
overridden per tenant (``PUT /v1/tenants/{tenant}/limits``).
"""

from dataclasses import dataclass

from anycastlb.model.bounds import SpecBounds

__all__ = ["LIMIT_OPTIONS", "Limits", "TenantQuota"]

# field -> (command-line option, environment variable); the error messages quote the option.
LIMIT_OPTIONS: dict[str, tuple[str, str]] = {
    "max_body_bytes": ("--max-body-bytes", "ANYCASTLB_MAX_BODY_BYTES"),
    "listeners": ("--max-listeners", "ANYCASTLB_MAX_LISTENERS"),
    "backends_per_listener": ("--max-backends-per-listener", "ANYCASTLB_MAX_BACKENDS_PER_LISTENER"),
    "backends_per_load_balancer": (
        "--max-backends-per-load-balancer",
        "ANYCASTLB_MAX_BACKENDS_PER_LOAD_BALANCER",
    ),
    "load_balancers_per_tenant": (
        "--max-load-balancers-per-tenant",
        "ANYCASTLB_MAX_LOAD_BALANCERS_PER_TENANT",
    ),
    "addresses_per_tenant": ("--max-addresses-per-tenant", "ANYCASTLB_MAX_ADDRESSES_PER_TENANT"),
}


def _hint(field: str) -> str:
    option, variable = LIMIT_OPTIONS[field]
    return f"the admin sets it with `anycastlb control {option}` or {variable}"


@dataclass(frozen=True, slots=True)
class TenantQuota:
    """How many load balancers and addresses one tenant may hold, and where each figure comes from."""

    load_balancers: int
    addresses: int
    overridden: frozenset[str] = frozenset()  # fields set for this tenant rather than the default

    def hint(self, field: str, tenant: str) -> str:
        if field in self.overridden:
            return f"set for tenant {tenant!r} by the admin: PUT /v1/tenants/{tenant}/limits"
        return _hint(f"{field}_per_tenant")


@dataclass(frozen=True, slots=True)
class Limits:
    """Process-level limits (``anycastlb control`` options). Spec bounds are not per tenant: they
    protect the process and the PoPs every tenant shares."""

    max_body_bytes: int = 4 * 1024 * 1024  # a 10,000-backend IPv6 spec is ~0.8 MB of JSON
    listeners: int = 64
    backends_per_listener: int = 5_000
    backends_per_load_balancer: int = 5_000  # 10,000 measured +215 ms on B (docs/benchmarks.md)
    load_balancers_per_tenant: int = 10_000  # bench/controller.py resyncs 5,000 Services
    addresses_per_tenant: int = 10_000

    def __post_init__(self) -> None:
        for field in LIMIT_OPTIONS:
            value = getattr(self, field)
            if value < 1:
                raise ValueError(f"{LIMIT_OPTIONS[field][0]} must be at least 1, not {value}")

    @property
    def spec_bounds(self) -> SpecBounds:
        fields = ("listeners", "backends_per_listener", "backends_per_load_balancer")
        return SpecBounds(
            listeners=self.listeners,
            backends_per_listener=self.backends_per_listener,
            backends_per_load_balancer=self.backends_per_load_balancer,
            hint={field: _hint(field) for field in fields},
        )

    def body_hint(self) -> str:
        return _hint("max_body_bytes")

    def quota(self, load_balancers: int | None = None, addresses: int | None = None) -> TenantQuota:
        """The tenant's quota: its own overrides (None: the process default)."""
        pairs = (("load_balancers", load_balancers), ("addresses", addresses))
        overridden = {name for name, value in pairs if value is not None}
        return TenantQuota(
            load_balancers=self.load_balancers_per_tenant if load_balancers is None else load_balancers,
            addresses=self.addresses_per_tenant if addresses is None else addresses,
            overridden=frozenset(overridden),
        )
