"""PoPs' desired state rendered as JSON, each load balancer version serialized once.

Why: one change wakes every PoP's long poll at once. Rendering each PoP's state from the database
and pydantic models cost 16 ms at 50 load balancers and 48 ms at 500 (bench/control_plane.py,
py-spy), times 50 PoPs, on one core: a change took seconds to reach the last PoP. A load
balancer's rendering never changes for a given version (its VIPs and spec change only with a new
version), so it is kept as JSON bytes keyed by (id, version); a PoP's state is its load balancers'
fragments joined, cached again per (PoP, version).

Tunnels: each fragment also keeps its tenant and the /24 blocks of its IPv4 backends
(control/tunnels/served.py), from which the PoP's WireGuard interfaces are chosen. They are read
from the store at each render (a few rows per cluster); every tunnel change bumps the PoPs'
versions (service/clusters.py), so the per-version cache stays right.
"""

import json
import threading
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from anycastlb.control.service.clusters import pop_tunnels
from anycastlb.control.service.load_balancers import addresses_of
from anycastlb.control.service.pops import desired_load_balancer, desired_version_and_tunnels
from anycastlb.control.store.tables import LoadBalancer, Tenant
from anycastlb.control.tunnels.served import backend_blocks

__all__ = ["DesiredRenderer"]

# id -> (version, pops, json, tenant, /24 blocks of its IPv4 backends)
_Fragment = tuple[int, tuple[str, ...], bytes, str, frozenset[int]]


def _served_blocks(picked: list[_Fragment], tenants: frozenset[str]) -> dict[str, frozenset[int]]:
    """The /24 blocks of the served load balancers' backends, per tenant of ``tenants``."""
    found: dict[str, set[int]] = {}
    for _, _, _, tenant, blocks in picked:
        if blocks and tenant in tenants:
            found.setdefault(tenant, set()).update(blocks)
    return {tenant: frozenset(blocks) for tenant, blocks in found.items()}


class DesiredRenderer:
    def __init__(self) -> None:
        self._fragments: dict[str, _Fragment] = {}
        self._states: dict[str, tuple[int, bytes]] = {}  # pop -> (version, json)
        self._lock = threading.Lock()

    def cached(self, pop: str, version: int) -> bytes | None:
        cached = self._states.get(pop)
        return cached[1] if cached is not None and cached[0] == version else None

    def render(self, session: Session, pop: str) -> bytes:
        """The PoP's complete desired state (a ``PopDesiredState`` document)."""
        version, has_tunnels = desired_version_and_tunnels(session, pop)
        cached = self._states.get(pop)
        if cached is not None and cached[0] == version:
            return cached[1]
        rows = session.execute(
            select(LoadBalancer.id, LoadBalancer.version, LoadBalancer.name, Tenant.name)
            .join(Tenant, Tenant.id == LoadBalancer.tenant_id)
            .order_by(Tenant.name, LoadBalancer.name)
        ).all()
        with self._lock:
            missing = [row[0] for row in rows if self._fragments.get(row[0], (None,))[0] != row[1]]
        fresh = self._render_missing(session, missing) if missing else {}
        with self._lock:
            self._fragments.update(fresh)
            parts = []
            picked: list[_Fragment] = []  # the served ones, for their tunnels (_served_blocks)
            for lb_id, _, _, _ in rows:
                entry = self._fragments.get(lb_id)
                if entry is None:  # deleted between the two queries
                    continue
                pops = entry[1]
                if not pops or pop in pops:
                    parts.append(entry[2])
                    picked.append(entry)
            if len(self._fragments) > 2 * len(rows) + 64:  # forget deleted load balancers
                alive = {row[0] for row in rows}
                self._fragments = {key: value for key, value in self._fragments.items() if key in alive}
        body = b"".join(
            (
                b'{"pop":',
                json.dumps(pop).encode(),
                b',"version":',
                str(version).encode(),
                b',"load_balancers":[',
                b",".join(parts),
                b'],"tunnels":[',
                b",".join(
                    tunnel.model_dump_json().encode()
                    for tunnel in (
                        pop_tunnels(session, pop, partial(_served_blocks, picked)) if has_tunnels else ()
                    )
                ),
                b"]}",
            )
        )
        self._states[pop] = (version, body)
        return body

    @staticmethod
    def _render_missing(session: Session, ids: list[str]) -> dict[str, _Fragment]:
        rows = session.execute(
            select(LoadBalancer, Tenant.name)
            .join(Tenant, Tenant.id == LoadBalancer.tenant_id)
            .where(LoadBalancer.id.in_(ids))
        ).all()
        vips = addresses_of(session, ids)
        fresh = {}
        for lb, tenant in rows:
            model = desired_load_balancer(lb, tenant, vips.get(lb.id, ()))
            fresh[lb.id] = (
                lb.version,
                tuple(lb.spec.get("pops") or ()),
                model.model_dump_json().encode(),
                tenant,
                backend_blocks(model.listeners),
            )
        return fresh
