"""What the status page shows, built from the store's records for one viewer (pure: no I/O).

Visibility rules, all here:

- The admin sees every PoP, every load balancer, every problem and every announced VIP.
- A tenant sees its own load balancers only: another tenant's are dropped before any view is
  built (the HTTP shell answers 404 for them, as the API does). Of each PoP it sees whether it
  runs what it was told (not the version numbers: they count every tenant's changes), how old
  its report is, the VIPs it announces *of this tenant*, and the problems naming this tenant's
  load balancers by id (never a PoP-wide problem: those may name anything). Not its BGP sessions.
- A PoP credential sees nothing (the shell refuses it at sign-in).

The view models are pydantic models so that the page's JSON endpoint is ``model_dump`` of the
same objects the templates render: what the HTML shows and what the JSON says cannot differ.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from anycastlb.control.principal import Principal
from anycastlb.control.service.pops import STALE_AFTER
from anycastlb.model.base import Frozen
from anycastlb.model.config import ListenerSettings
from anycastlb.model.desired import BgpSession, ListenerStatus, LoadBalancerSpec, PopProblem, PopStatusReport

__all__ = [
    "BackendCell",
    "LbDetail",
    "LbRecord",
    "LbRow",
    "ListenerAtPop",
    "PopOfLb",
    "PopRecord",
    "PopRow",
    "lb_detail",
    "lb_rows",
    "pop_rows",
    "visible_load_balancers",
]


@dataclass(frozen=True, slots=True)
class PopRecord:
    """A PoP as stored: its desired version and its last report (None: it never reported)."""

    name: str
    desired_version: int
    status_at: datetime | None
    report: PopStatusReport | None


@dataclass(frozen=True, slots=True)
class LbRecord:
    """A load balancer as stored, with its VIPs in allocation order."""

    id: str
    tenant: str
    name: str
    version: int
    addresses: tuple[str, ...]
    spec: LoadBalancerSpec

    def served_by(self, pop: str) -> bool:
        return not self.spec.pops or pop in self.spec.pops


class PopRow(Frozen):
    name: str
    desired_version: int | None  # None for a tenant (see the module docstring)
    applied_version: int | None
    in_sync: bool  # it reported, and runs the version it was told
    reported: bool
    report_age_seconds: float | None
    stale: bool
    draining: bool
    listeners_serving: int
    listeners: int
    backends_up: int
    backends: int
    announced: tuple[str, ...]
    problems: tuple[str, ...]
    bgp_sessions: tuple[BgpSession, ...]  # the admin's only: peers are the platform's


class BackendCell(Frozen):
    address: str
    port: int
    up: bool
    weight: int | None  # the configured weight, or the one the node reported (k8s checks)
    reason: str  # why it last went down or up, as the PoP reported it


class ListenerAtPop(Frozen):
    address: str
    port: int
    protocol: str
    serving: bool
    supported: bool
    reason: str
    active_connections: int
    backends: tuple[BackendCell, ...]


class PopOfLb(Frozen):
    pop: str
    reported: bool
    applied: bool  # runs this load balancer's current version
    stale: bool
    report_age_seconds: float | None
    serving: bool  # applied, fresh, and at least one listener serving
    announced: tuple[str, ...]
    problems: tuple[str, ...]
    listeners: tuple[ListenerAtPop, ...]


class LbRow(Frozen):
    tenant: str
    name: str
    version: int
    addresses: tuple[str, ...]
    listeners: tuple[str, ...]  # "443/tcp"
    pops: int
    pops_serving: int
    pops_announcing: int
    backends_up: int
    backends: int


class LbDetail(Frozen):
    row: LbRow
    configured: tuple[str, ...]  # "443/tcp → 10.0.0.11:30443 w1, …"
    pops: tuple[PopOfLb, ...]


def _age(record: PopRecord, now: datetime) -> float | None:
    if record.status_at is None:
        return None
    return max(0.0, (now - record.status_at).total_seconds())


def _stale(age: float | None) -> bool:
    return age is None or age > STALE_AFTER


def visible_load_balancers(viewer: Principal, lbs: Iterable[LbRecord]) -> list[LbRecord]:
    """The admin's: all; a tenant's: its own; a PoP's: none."""
    if viewer.kind == "admin":
        return list(lbs)
    if viewer.kind == "tenant":
        return [lb for lb in lbs if lb.tenant == viewer.name]
    return []


def _problem_text(problem: PopProblem, names: dict[str, str]) -> str:
    where = names.get(problem.load_balancer or "")
    return f"{where}: {problem.message}" if where else problem.message


def _listeners_of(report: PopStatusReport | None, ids: set[str]) -> list[ListenerStatus]:
    return [item for item in (report.listeners if report else ()) if item.load_balancer in ids]


def _announced_of(report: PopStatusReport | None, addresses: set[str] | None) -> tuple[str, ...]:
    """Announced prefixes; ``addresses`` None: all of them (the admin)."""
    announced = report.announced if report else ()
    if addresses is None:
        return tuple(announced)
    return tuple(prefix for prefix in announced if prefix.split("/")[0] in addresses)


def pop_rows(
    viewer: Principal, pops: Sequence[PopRecord], lbs: Sequence[LbRecord], now: datetime
) -> list[PopRow]:
    """One row per PoP, as ``viewer`` may see it."""
    mine = visible_load_balancers(viewer, lbs)
    admin = viewer.kind == "admin"
    ids = {lb.id for lb in mine}
    names = {lb.id: f"{lb.tenant}/{lb.name}" for lb in mine}
    addresses = None if admin else {address for lb in mine for address in lb.addresses}
    rows = []
    for pop in sorted(pops, key=lambda item: item.name):
        report, age = pop.report, _age(pop, now)
        listeners = list(report.listeners if report else ()) if admin else _listeners_of(report, ids)
        problems = report.problems if report else ()
        if not admin:
            problems = tuple(item for item in problems if item.load_balancer in ids)
        rows.append(
            PopRow(
                name=pop.name,
                desired_version=pop.desired_version if admin else None,
                applied_version=(report.applied_version if report else None) if admin else None,
                in_sync=report is not None and report.applied_version >= pop.desired_version,
                reported=report is not None,
                report_age_seconds=age,
                stale=_stale(age),
                draining=report.draining if report else False,
                listeners_serving=sum(1 for item in listeners if item.serving),
                listeners=len(listeners),
                backends_up=sum(1 for item in listeners for backend in item.backends if backend.up),
                backends=sum(len(item.backends) for item in listeners),
                announced=_announced_of(report, addresses),
                problems=tuple(_problem_text(item, names) for item in problems),
                bgp_sessions=(report.bgp_sessions if report else ()) if admin else (),
            )
        )
    return rows


def _pop_of_lb(lb: LbRecord, pop: PopRecord, now: datetime) -> PopOfLb:
    report, age = pop.report, _age(pop, now)
    weights = {
        (str(backend.address), backend.port): backend.weight
        for settings in lb.spec.listeners
        for backend in settings.backends
    }
    listeners = tuple(
        ListenerAtPop(
            address=str(item.address),
            port=item.port,
            protocol=item.protocol,
            serving=item.serving,
            supported=item.supported,
            reason=item.reason,
            active_connections=item.active_connections,
            backends=tuple(
                BackendCell(
                    address=str(backend.address),
                    port=backend.port,
                    up=backend.up,
                    weight=backend.weight
                    if backend.weight is not None
                    else weights.get((str(backend.address), backend.port)),
                    reason=backend.reason,
                )
                for backend in item.backends
            ),
        )
        for item in _listeners_of(report, {lb.id})
    )
    applied = report is not None and report.applied_version >= lb.version
    return PopOfLb(
        pop=pop.name,
        reported=report is not None,
        applied=applied,
        stale=_stale(age),
        report_age_seconds=age,
        serving=applied and not _stale(age) and any(item.serving for item in listeners),
        announced=_announced_of(report, set(lb.addresses)),
        problems=tuple(
            item.message for item in (report.problems if report else ()) if item.load_balancer == lb.id
        ),
        listeners=listeners,
    )


def _listener_text(item: ListenerSettings) -> str:
    """``443/tcp``, or with SNI-routed sharing ``443/tcp (SNI shop.a.com, *.a.com; default)``: the
    port alone does not say which connections reach this load balancer when it shares the port."""
    text = f"{item.port}/{item.protocol}"
    if not item.hostnames:
        return text
    return f"{text} (SNI {', '.join(item.hostnames)}{'; default' if item.sni_default else ''})"


def _row(lb: LbRecord, at_pops: Sequence[PopOfLb]) -> LbRow:
    return LbRow(
        tenant=lb.tenant,
        name=lb.name,
        version=lb.version,
        addresses=lb.addresses,
        listeners=tuple(_listener_text(item) for item in lb.spec.listeners),
        pops=len(at_pops),
        pops_serving=sum(1 for item in at_pops if item.serving),
        pops_announcing=sum(1 for item in at_pops if item.announced),
        backends_up=sum(1 for pop in at_pops for item in pop.listeners for b in item.backends if b.up),
        backends=sum(len(item.backends) for pop in at_pops for item in pop.listeners),
    )


def lb_rows(
    viewer: Principal, lbs: Sequence[LbRecord], pops: Sequence[PopRecord], now: datetime
) -> list[LbRow]:
    """One row per load balancer ``viewer`` may see, by tenant and name."""
    rows = []
    for lb in sorted(visible_load_balancers(viewer, lbs), key=lambda item: (item.tenant, item.name)):
        rows.append(_row(lb, [_pop_of_lb(lb, pop, now) for pop in pops if lb.served_by(pop.name)]))
    return rows


def lb_detail(
    viewer: Principal,
    lbs: Sequence[LbRecord],
    pops: Sequence[PopRecord],
    tenant: str,
    name: str,
    now: datetime,
) -> LbDetail | None:
    """One load balancer in full; None when it does not exist *for this viewer* (the shell: 404)."""
    found = [lb for lb in visible_load_balancers(viewer, lbs) if (lb.tenant, lb.name) == (tenant, name)]
    if not found:
        return None
    lb = found[0]
    at_pops = tuple(
        _pop_of_lb(lb, pop, now) for pop in sorted(pops, key=lambda p: p.name) if lb.served_by(pop.name)
    )
    configured = tuple(
        f"{_listener_text(item)} → "
        + (", ".join(f"{backend.key} w{backend.weight}" for backend in item.backends) or "no backends")
        for item in lb.spec.listeners
    )
    return LbDetail(row=_row(lb, at_pops), configured=configured, pops=at_pops)
