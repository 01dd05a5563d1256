"""How many IPv4 addresses a 1,000-Service platform needs, without and with SNI-routed sharing.

    PYTHONPATH=src python3 bench/ipv4_sharing.py [--services 1000] [--tenants 100] [--seed 15]
        [--https-only 0.7] [--https-and-http 0.2]

Drives the real allocator (``plan_addresses``, the pure core the API calls in its transaction)
against an in-memory store that applies each plan as the control plane does (new holdings
inserted, users and their listeners' claims recorded on joined addresses). A count, not a timing:
the planner's cost is bench/ipam_cost.py's and bench/control_plane.py's business.

The platform (seeded, so every run prints the same numbers for the same arguments):

- ``--services`` Services of ``--tenants`` tenants; tenant sizes are skewed (a few large tenants,
  many with a handful of Services: weights 1/rank, at least one Service each);
- ``--https-only`` of them serve TLS on 443 only (1-3 hostnames each, unique to the Service);
- ``--https-and-http`` serve 443 with hostnames and plain HTTP on 80 (redirects, HTTP-01): port
  80 carries no SNI, so it is never shared by SNI;
- the rest are plain TCP on one port drawn from 22, 1883, 3306, 5432, 6379, 25565 (no TLS SNI).

Scenarios, every Service asking for one IPv4 address:

- ``no sharing``: no sharing key (every Service its own address);
- ``sharing key, ports only``: today's rule, every Service of a tenant tries the tenant's sharing
  keys in turn (``t-0``, ``t-1``, ...) and takes the first one the allocator accepts, so Services
  share an address when their ports differ;
- ``SNI, per tenant``: the same, with the 443 listeners naming their hostnames;
- ``SNI, pool-wide``: every Service names a pool with ``sni_sharing: pool`` and tries pool-wide
  keys (``k-0``, ``k-1``, ...): tenants share addresses with each other.

Greedy key choice is what a platform team would script (try the next key on a 409); it is not an
optimal packing, so the counts are what the rule allows in practice, an upper bound of its best.
"""

import argparse
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from anycastlb.control.ipam import (
    Address,
    AllocationError,
    Holding,
    PoolView,
    PortClaim,
    plan_addresses,
)
from anycastlb.model.desired import IPRequest

PLAIN_PORTS = (22, 1883, 3306, 5432, 6379, 25565)
PLATFORM = PoolView("platform", (ipaddress.IPv4Network("10.0.0.0/16"),))
SHARED = PoolView("shared", (ipaddress.IPv4Network("10.1.0.0/16"),), auto_assign=False, sni_sharing="pool")


@dataclass(frozen=True, slots=True)
class Service:
    tenant: str
    name: str
    kind: str  # https | https+http | tcp
    claims: tuple[PortClaim, ...]

    @property
    def ports(self) -> frozenset[tuple[int, str]]:
        return frozenset((claim.port, claim.protocol) for claim in self.claims)

    def without_hostnames(self) -> tuple[PortClaim, ...]:
        return tuple(replace(claim, hostnames=frozenset()) for claim in self.claims)


def platform(
    services: int, tenants: int, https_only: float, https_and_http: float, seed: int
) -> list[Service]:
    """The Services, in the order they are created (tenants interleaved, as they sign up and deploy)."""
    rng = random.Random(seed)
    weights = [1 / rank for rank in range(1, tenants + 1)]
    owners = list(range(tenants)) + rng.choices(range(tenants), weights, k=services - tenants)
    rng.shuffle(owners)
    found: list[Service] = []
    for index, owner in enumerate(owners):
        tenant, name = f"tenant{owner:03d}", f"svc{index:04d}"
        draw = rng.random()
        names = frozenset(
            f"{label}.{name}.{tenant}.example" for label in ("www", "api", "app")[: rng.randint(1, 3)]
        )
        claims: tuple[PortClaim, ...]
        if draw < https_only:
            kind, claims = "https", (PortClaim(tenant, name, 443, "tcp", names),)
        elif draw < https_only + https_and_http:
            kind = "https+http"
            claims = (PortClaim(tenant, name, 80, "tcp"), PortClaim(tenant, name, 443, "tcp", names))
        else:
            kind, claims = "tcp", (PortClaim(tenant, name, rng.choice(PLAIN_PORTS), "tcp"),)
        found.append(Service(tenant, name, kind, claims))
    return found


class Store:
    """Holdings as the control plane keeps them, each plan applied as ``service/load_balancers.py``
    does: new holdings inserted with the request's key, the load balancer linked to its addresses."""

    def __init__(self) -> None:
        self.holdings: dict[Address, Holding] = {}

    def place(self, service: Service, claims: Sequence[PortClaim], key: str | None, pool: str | None) -> bool:
        """Create ``service``'s load balancer; False if the allocator refuses it (409)."""
        try:
            plan = plan_addresses(
                IPRequest(sharing_key=key, pool=pool),
                tenant=service.tenant,
                load_balancer=service.name,
                ports=service.ports,
                current=[],
                pools=[PLATFORM, SHARED],
                holdings=self.holdings,
                claims=claims,
            )
        except AllocationError as error:
            if error.kind != "conflict":
                raise
            return False
        fresh = {new.address: Holding(new.address, new.pool, service.tenant, False, key) for new in plan.new}
        for address in plan.addresses:
            holding = fresh.get(address) or self.holdings[address]
            own = holding.tenant == service.tenant
            self.holdings[address] = replace(
                holding,
                load_balancers=holding.load_balancers | ({service.name} if own else frozenset()),
                ports=holding.ports | service.ports,
                claims=(*holding.claims, *claims),
            )
        return True


def run(services: Sequence[Service], scenario: str) -> int:
    """Addresses in use after creating every Service under ``scenario``."""
    store = Store()
    for service in services:
        if scenario == "no sharing":
            assert store.place(service, service.without_hostnames(), None, None)
            continue
        sni = scenario.startswith("SNI")
        claims = service.claims if sni else service.without_hostnames()
        pool_wide = scenario == "SNI, pool-wide"
        prefix, pool = ("k", "shared") if pool_wide else (f"{service.tenant}-k", None)
        attempt = 0
        while not store.place(service, claims, f"{prefix}{attempt}", pool):
            attempt += 1
    return len(store.holdings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--https-only", type=float, default=0.7)
    parser.add_argument("--https-and-http", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    services = platform(args.services, args.tenants, args.https_only, args.https_and_http, args.seed)
    kinds = {
        kind: sum(1 for item in services if item.kind == kind) for kind in ("https", "https+http", "tcp")
    }
    largest = max(
        sum(1 for item in services if item.tenant == tenant) for tenant in {s.tenant for s in services}
    )
    print(
        f"{len(services)} Services of {len({s.tenant for s in services})} tenants (largest {largest}): "
        f"{kinds['https']} TLS on 443 only, {kinds['https+http']} on 443 + plain 80, {kinds['tcp']} plain TCP"
    )
    print("| scenario | IPv4 addresses | Services per address | vs no sharing |")
    print("|---|---:|---:|---:|")
    baseline = 0
    for scenario in ("no sharing", "sharing key, ports only", "SNI, per tenant", "SNI, pool-wide"):
        count = run(services, scenario)
        baseline = baseline or count
        print(f"| {scenario} | {count} | {len(services) / count:.1f} | {count / baseline:.1%} |")


if __name__ == "__main__":
    main()
