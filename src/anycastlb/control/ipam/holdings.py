"""Addresses in use, and the index the allocator searches them with.

The planner takes holdings as any ``Mapping[address, Holding]``. A plain dict works; the first
search then sorts the held addresses (O(n log n), about 30-60 ms for 100,000 on a small box). A
caller that plans many times against the same holdings, or holds many of them, builds a
:class:`HoldingTable` once: it is a Mapping too, with the sorted index built in, and each allocation
against it costs a few bisects.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from anycastlb.control.ipam.pools import Address
from anycastlb.control.ipam.sni import PortClaim

__all__ = ["Holding", "HoldingIndex", "HoldingTable", "NewHolding", "PortSet", "index_of"]

PortSet = frozenset[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Holding:
    """An address in use: allocated to ``tenant`` from ``pool``. ``static`` addresses were reserved
    and outlive their load balancers; dynamic ones are freed with the last load balancer using them.
    ``ports`` is the union of the ``(port, protocol)`` pairs of the load balancers using it.
    ``claims``, when known, are its users' listeners one by one (with their hostnames, for the SNI
    rule of ``sni.py``), of every tenant using it: ``load_balancers`` names the holder's own only.
    Without claims the planner falls back to ``ports``: any port in common is a collision."""

    address: Address
    pool: str
    tenant: str
    static: bool
    sharing_key: str | None
    load_balancers: frozenset[str] = field(default_factory=frozenset)
    ports: PortSet = field(default_factory=frozenset)
    claims: tuple[PortClaim, ...] = ()

    @property
    def in_use(self) -> bool:
        return bool(self.load_balancers or self.claims)

    def used_by(self, tenant: str, load_balancer: str) -> bool:
        """Whether that load balancer uses it (any tenant's, where claims are known)."""
        if tenant == self.tenant and load_balancer in self.load_balancers:
            return True
        return any(claim.owner == (tenant, load_balancer) for claim in self.claims)


@dataclass(frozen=True, slots=True)
class NewHolding:
    """An address to insert as held by the tenant the plan was made for."""

    address: Address
    pool: str
    static: bool
    sharing_key: str | None


class HoldingIndex:
    """Held addresses as sorted integers per IP version, and the tenant's shared holdings per sharing
    key; each built on first use from any Mapping (so an update that keeps its VIPs sorts nothing)."""

    __slots__ = ("_held", "_holdings", "_pool_shared", "_shared")

    def __init__(self, holdings: Mapping[Address, Holding]) -> None:
        self._holdings = holdings
        self._held: dict[int, list[int]] = {}
        self._shared: dict[tuple[str, str], list[Holding]] | None = None
        self._pool_shared: dict[tuple[str, str], list[Holding]] | None = None

    def held(self, version: int) -> Sequence[int]:
        """Every held address of one IP version, as sorted integers."""
        if version not in self._held:
            self._held[version] = sorted(
                int(address) for address in self._holdings if address.version == version
            )
        return self._held[version]

    def shared(self, tenant: str, sharing_key: str) -> Sequence[Holding]:
        """The tenant's holdings with this sharing key, by address (IPv4 first)."""
        if self._shared is None:
            groups: defaultdict[tuple[str, str], list[Holding]] = defaultdict(list)
            for holding in self._holdings.values():
                if holding.sharing_key is not None:
                    groups[holding.tenant, holding.sharing_key].append(holding)
            for group in groups.values():
                group.sort(key=lambda holding: (holding.address.version, int(holding.address)))
            self._shared = dict(groups)
        return self._shared.get((tenant, sharing_key), ())

    def pool_shared(self, pool: str, sharing_key: str) -> Sequence[Holding]:
        """Every tenant's holdings in ``pool`` with this sharing key, by address: the candidates of
        cross-tenant SNI sharing on a pool whose admin allows it (``PoolView.sni_sharing``)."""
        if self._pool_shared is None:
            groups: defaultdict[tuple[str, str], list[Holding]] = defaultdict(list)
            for holding in self._holdings.values():
                if holding.sharing_key is not None:
                    groups[holding.pool, holding.sharing_key].append(holding)
            for group in groups.values():
                group.sort(key=lambda holding: (holding.address.version, int(holding.address)))
            self._pool_shared = dict(groups)
        return self._pool_shared.get((pool, sharing_key), ())


class HoldingTable(Mapping[Address, Holding]):
    """Holdings by address with their search index built once, up front: plan many times against it."""

    __slots__ = ("_by_address", "index")

    def __init__(self, holdings: Iterable[Holding]) -> None:
        self._by_address: dict[Address, Holding] = {}
        for holding in holdings:
            if holding.address in self._by_address:
                raise ValueError(f"{holding.address} is listed twice; an address has one holding at most")
            self._by_address[holding.address] = holding
        self.index = HoldingIndex(self._by_address)
        for version in (4, 6):
            self.index.held(version)
        self.index.shared("", "")

    def __getitem__(self, address: Address) -> Holding:
        return self._by_address[address]

    def __iter__(self) -> Iterator[Address]:
        return iter(self._by_address)

    def __len__(self) -> int:
        return len(self._by_address)


def index_of(holdings: Mapping[Address, Holding]) -> HoldingIndex:
    return holdings.index if isinstance(holdings, HoldingTable) else HoldingIndex(holdings)
