"""IPAM: which VIPs a load balancer gets, which addresses a tenant may reserve and release.

A pure core (no I/O, no database, no clock): the control plane's services load pools and holdings,
call these functions inside one transaction, and apply the plan they return. Every refusal is an
:class:`AllocationError` whose ``kind`` picks the HTTP status and whose message says what to change.

Invariants the functions keep, given holdings that satisfy them (tests/unit/test_ipam_properties.py):
an address is held once, by one tenant, from a pool that tenant may use, never from a reserved range
or a skipped network/broadcast address; load balancers share an address only under one sharing key,
within one tenant (or across tenants on a pool with ``sni_sharing: pool``), on distinct ports or on
one port routed apart by SNI (``sni``); re-planning an unchanged request changes nothing; a
request fails as exhausted exactly when too few free addresses exist.

Modules: ``pools`` (pools and who may use them), ``spans`` (the lowest-free search that never
enumerates a network), ``holdings`` (addresses in use and their index), ``plan`` (load balancers'
VIPs), ``sni`` (when listeners share one port), ``reserve`` (static addresses), ``choose`` (what
the last two share), ``errors``.
"""

from anycastlb.control.ipam.errors import AllocationError, AllocationErrorKind, InvalidPoolError
from anycastlb.control.ipam.holdings import Holding, HoldingTable, NewHolding, PortSet
from anycastlb.control.ipam.plan import AddressPlan, plan_addresses
from anycastlb.control.ipam.pools import (
    Address,
    AddressRange,
    Network,
    PoolView,
    SniSharing,
    check_new_pool,
    pool_containing,
    usable_pools,
)
from anycastlb.control.ipam.reserve import check_release, plan_reservation
from anycastlb.control.ipam.sni import Clash, PortClaim, clash_text, first_clash
from anycastlb.control.ipam.spans import pool_capacity

__all__ = [
    "Address",
    "AddressPlan",
    "AddressRange",
    "AllocationError",
    "AllocationErrorKind",
    "Clash",
    "Holding",
    "HoldingTable",
    "InvalidPoolError",
    "Network",
    "NewHolding",
    "PoolView",
    "PortClaim",
    "PortSet",
    "SniSharing",
    "check_new_pool",
    "check_release",
    "clash_text",
    "first_clash",
    "plan_addresses",
    "plan_reservation",
    "pool_capacity",
    "pool_containing",
    "usable_pools",
]
