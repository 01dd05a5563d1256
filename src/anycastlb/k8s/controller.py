"""The controller's main loop, while it is the leader: three informers fill caches, changes become
Service keys on a work queue, workers reconcile each key against the newest state.

What wakes which Service: a change to the Service itself; a Node change (of what reconcile reads:
labels, addresses, taints, deletion) wakes every Service of ours; an EndpointSlice change wakes
its Service; and a full resync every ``resync`` seconds wakes them all (a missed event, or a load
balancer changed on the control plane behind our back, heals there).

What is sent: a spec equal to the one the control plane last accepted is not sent again, as long
as that load balancer is still at the version the answer named. Each resync first asks for every
load balancer in one request (``GET …/loadbalancer-versions``: versions, spec digests, VIPs) and
forgets the answers that no longer hold, so a load balancer edited or deleted behind our back is
PUT again. A leader that just started asks the same once and skips each Service whose spec has
the digest the control plane holds. At 5,000 Services x 500 nodes a resync that PUT every spec
took minutes of control plane CPU; one that sends only changes takes the reconcile time (see
docs/benchmarks.md).

Processing one key (the order is what keeps a typo from causing an outage):
1. reconcile (pure) → not ours / release / invalid / desired;
2. invalid: a Warning Event per problem; the load balancer already serving stays untouched;
3. desired: our finalizer first (so a delete can never leak a load balancer), then ``PUT`` the
   spec to the control plane (idempotent: an unchanged spec keeps its version), then the Service's
   ``status.loadBalancer.ingress`` (compared without ``ipMode``, which older API servers drop);
4. release (deleted, or left our class): delete the load balancer (dynamic IPs are freed, reserved
   ones stay), clear the status we wrote if the Service lives on, remove our finalizer;
5. any failure (control plane down, API conflict): the key comes back with backoff; the Service's
   status is left as it was.

Tunnels (``--tunnels``, k8s/tunnel_sync.py): before the first pass and after every Node change,
the node set is registered with the control plane, whose answer gives each node's tunnel address;
those are the backends (never the nodes' own addresses), and every node's config is written to the
``anycastlb-tunnel`` Secret in our namespace. Services are reconciled after that, so a joining node
gets traffic once it has an address. With ``--tunnel-nodes SELECTOR`` only the matching nodes are
registered (and get a key and a Secret entry); the others are reached at their own addresses as
without tunnels, so a change to one of them wakes every Service at once. A label change that moves
a node across the selector does both: the sync registers or drops it, and the Services follow.
"""

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node, Service
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.types import PatchType

from anycastlb.k8s.control_client import ControlClient, ControlError, EnsuredLoadBalancer, HeldLoadBalancer
from anycastlb.k8s.convert import endpoint_slice_view, ingress_of, node_view, service_view
from anycastlb.k8s.events import EventRecorder
from anycastlb.k8s.informer import Informer, Key
from anycastlb.k8s.metrics import ControllerMetrics
from anycastlb.k8s.reconcile import Desired, Invalid, NodeIndex, Release, SliceIndex, reconcile
from anycastlb.k8s.status import ingress_for, same_ingress
from anycastlb.k8s.tunnel_sync import TunnelSync
from anycastlb.k8s.views import FINALIZER, ControllerSettings, EndpointSliceView, NodeView, ServiceView
from anycastlb.k8s.workqueue import WorkQueue
from anycastlb.model.desired import LoadBalancerSpec

__all__ = ["Controller"]

log = logging.getLogger("anycastlb.k8s")

_GC_OFF_AT_MOST = 120.0  # seconds of first pass with the garbage collector off


@dataclass(frozen=True, slots=True)
class CachedService:
    view: ServiceView
    ingress: tuple[dict[str, Any], ...]


def _cached_service(obj: Any) -> CachedService:  # noqa: ANN401
    return CachedService(service_view(obj), ingress_of(obj))


@dataclass
class Controller:
    kube: AsyncClient
    control: ControlClient
    settings: ControllerSettings
    metrics: ControllerMetrics
    resync: float = 300.0
    workers: int = 4
    namespace: str = "default"  # ours: where the anycastlb-tunnel Secret is written
    queue: WorkQueue = field(default_factory=WorkQueue)
    _nodes: NodeIndex | None = None
    _nodes_stale: bool = True
    _slices: SliceIndex | None = None
    _problems: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Service key → the spec the control plane last accepted for it, and its answer.
    _accepted: dict[str, tuple[LoadBalancerSpec, EnsuredLoadBalancer]] = field(default_factory=dict)
    # Until the first pass is done: what the control plane held when we started, by load balancer.
    _held_at_start: dict[str, HeldLoadBalancer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.events = EventRecorder(self.kube)
        self.services: Informer[CachedService] = Informer(
            self.kube, Service, _cached_service, self._service_changed, kind="Service"
        )
        self.nodes: Informer[NodeView] = Informer(self.kube, Node, node_view, self._node_changed, kind="Node")
        self.slices: Informer[EndpointSliceView] = Informer(
            self.kube, EndpointSlice, endpoint_slice_view, self._slice_changed, kind="EndpointSlice"
        )
        self.tunnels: TunnelSync | None = (
            TunnelSync(self.kube, self.control, self.settings.cluster, self.namespace, self._tunnels_changed)
            if self.settings.tunnels
            else None
        )

    # ---- triggers --------------------------------------------------------------------------------

    @staticmethod
    def _key(namespace: str, name: str) -> str:
        return f"{namespace}/{name}"

    def _service_changed(self, key: Key, _old: CachedService | None, _new: CachedService | None) -> None:
        self.queue.add(self._key(*key))

    def _node_changed(self, _key: Key, old: NodeView | None, new: NodeView | None) -> None:
        self._nodes_stale = True
        if self.tunnels is None:
            self._wake_all()
            return
        # Only a tunnelled node the control plane has not given an address yet (a joining one) waits
        # for the sync, which wakes the Services once it has one. Every other change counts now: a
        # registered tunnelled node tainted, excluded or relabelled (its address is unchanged, so
        # the sync would wake nobody), a node deleted, or one reached at its own address (left out
        # by --tunnel-nodes, before or after a label change); the sync (re)registers or drops it.
        self.tunnels.wake()
        joining = (
            new is not None
            and self.settings.through_tunnel(new.labels)
            and new.name not in self.tunnels.addresses
            and (old is None or self.settings.through_tunnel(old.labels))
        )
        if not joining:
            self._wake_all()

    def _tunnels_changed(self) -> None:
        self._nodes_stale = True
        self._wake_all()

    def _node_names(self) -> list[str]:
        """The nodes to register for tunnels: those --tunnel-nodes matches (every node without it)."""
        return sorted(
            node.name for node in self.nodes.items.values() if self.settings.through_tunnel(node.labels)
        )

    def _slice_changed(self, _key: Key, old: EndpointSliceView | None, new: EndpointSliceView | None) -> None:
        self._slices = None
        for view in (old, new):
            if view is not None and view.service_name:
                self.queue.add(self._key(view.namespace, view.service_name))

    def _wake_all(self) -> None:
        self.queue.add_all(
            [
                self._key(*key)
                for key, cached in self.services.items.items()
                if cached.view.type == "LoadBalancer" or FINALIZER in cached.view.finalizers
            ]
        )

    @property
    def synced(self) -> bool:
        """Every cache holds its initial list (readiness, k8s/probes.py); a relist later keeps
        serving the cache it replaces, so this never turns false again."""
        return all(informer.synced.is_set() for informer in (self.nodes, self.slices, self.services))

    # ---- main loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.control.whoami()
        try:
            self._held_at_start = await self.control.held()
        except ControlError as error:  # every Service is PUT instead, with backoff while it fails
            log.warning("held_unknown error=%r (every spec will be sent)", str(error))
        informers = [asyncio.create_task(inf.run()) for inf in (self.nodes, self.slices, self.services)]
        try:
            for informer in (self.nodes, self.slices, self.services):
                await informer.synced.wait()
            log.info(
                "controller_synced services=%d nodes=%d endpointslices=%d",
                len(self.services.items),
                len(self.nodes.items),
                len(self.slices.items),
            )
            if self.tunnels is not None:  # addresses before the first pass (or every node is missing one)
                await self.tunnels.start(self._node_names())
                informers.append(asyncio.create_task(self.tunnels.run(self._node_names, self.resync)))
            gc.disable()  # until the first pass is done: see _first_pass_done
            workers = [asyncio.create_task(self._work()) for _ in range(self.workers)]
            workers.append(asyncio.create_task(self._first_pass_done()))
            while True:
                await asyncio.sleep(self.resync)
                await self._forget_changed_behind_our_back()
                self._wake_all()
                self.metrics.resyncs.inc()
        finally:
            gc.enable()  # if the first pass never finished (leadership lost, cancelled)
            for task in informers:
                task.cancel()
            await asyncio.gather(*informers, return_exceptions=True)
            if "workers" in locals():
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def _forget_changed_behind_our_back(self) -> None:
        """Drop the accepted answers whose load balancer is gone or at another version: their
        Services are PUT again by the resync that follows."""
        try:
            held = await self.control.held()
        except ControlError as error:
            # Unreachable: the PUTs would fail too. Keep what we know; the next resync asks again.
            log.warning("resync_versions_failed error=%r (drift is checked at the next resync)", str(error))
            return
        stale = [
            key
            for key, (_, ensured) in self._accepted.items()
            if (found := held.get(ensured.name)) is None or found.version != ensured.version
        ]
        for key in stale:
            self._accepted.pop(key, None)
        if stale:
            log.info("resync_drift services=%d (changed or deleted on the control plane)", len(stale))

    async def _first_pass_done(self) -> None:
        """The first pass builds every Service's listeners: millions of long-lived backend objects
        at 5,000 Services x 500 nodes, and with the garbage collector on, each full collection
        walked all of them again (6.8 s of the first pass's 12 s in bench/controller.py). So the
        pass runs with the collector off; at its end one collection frees the cycles it left and
        everything still alive is frozen out of later collections' reach. A pass that takes
        longer than ``_GC_OFF_AT_MOST`` (thousands of PUTs) turns the collector back on."""
        started = time.monotonic()
        try:
            while not self.queue.idle():
                if not gc.isenabled() and time.monotonic() - started > _GC_OFF_AT_MOST:
                    gc.enable()
                await asyncio.sleep(0.1)
        finally:
            gc.enable()
        self._held_at_start.clear()
        gc.collect()
        gc.freeze()
        log.info("first_pass_done services=%d", len(self.services.items))

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            started = time.perf_counter()
            try:
                await self.process(key)
                self.queue.forget(key)
                self.metrics.reconciles.labels("ok").inc()
            except (ControlError, ApiError) as error:
                delay = self.queue.retry(key)
                self.metrics.reconciles.labels("retry").inc()
                log.warning("reconcile_failed service=%s error=%r retry_in=%.1fs", key, str(error), delay)
            except Exception:
                delay = self.queue.retry(key)
                self.metrics.reconciles.labels("error").inc()
                log.exception("reconcile_crashed service=%s retry_in=%.1fs", key, delay)
            finally:
                self.queue.done(key)
                self.metrics.reconcile_seconds.observe(time.perf_counter() - started)
                self.metrics.queue_depth.set(len(self.queue))

    def _indexes(self) -> tuple[NodeIndex, SliceIndex]:
        if self._nodes is None or self._nodes_stale:
            # previous=: a joining or leaving node is spliced into the listeners built before
            # instead of rebuilding every Service's backends (0.3 s instead of 7 s at 5,000 x 500)
            self._nodes = NodeIndex.build(
                tuple(self.nodes.items.values()),
                self.settings,
                previous=self._nodes,
                tunnel_addresses=self.tunnels.addresses if self.tunnels is not None else None,
            )
            self._nodes_stale = False
        if self._slices is None:
            self._slices = SliceIndex.build(tuple(self.slices.items.values()))
        return self._nodes, self._slices

    # ---- one Service -----------------------------------------------------------------------------

    async def process(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        cached = self.services.items.get((namespace, name))
        if cached is None:
            return  # gone: it never carried our finalizer, or we already released it
        nodes, slices = self._indexes()
        decision = reconcile(cached.view, nodes, slices, self.settings)
        if isinstance(decision, Release):
            await self._release(cached, decision.reason)
        elif isinstance(decision, Invalid):
            await self._invalid(cached, decision)
        elif isinstance(decision, Desired):
            await self._ensure(cached, decision)

    async def _invalid(self, cached: CachedService, decision: Invalid) -> None:
        service = cached.view
        key = self._key(service.namespace, service.name)
        if self._problems.get(key) != decision.problems:
            log.warning("service_invalid service=%s problems=%r action=keep-serving", key, decision.problems)
        self._problems[key] = decision.problems
        for problem in decision.problems:
            await self.events.post(service, "Warning", "InvalidConfiguration", problem)
        self.metrics.invalid.inc()

    async def _ensure(self, cached: CachedService, decision: Desired) -> None:
        service = cached.view
        key = self._key(service.namespace, service.name)
        self._problems.pop(key, None)
        if FINALIZER not in service.finalizers:
            await self._set_finalizers(service, (*service.finalizers, FINALIZER))
        accepted = self._accepted.get(key) or self._held_since_start(key, decision.spec)
        previous = accepted[1].version if accepted is not None else None
        # Listeners reconcile left unchanged are the same objects, so this is cheap when equal.
        if accepted is not None and accepted[0] == decision.spec:
            ensured = accepted[1]
            self.metrics.ensures.labels("unchanged").inc()
        else:
            try:
                ensured = await self.control.ensure(decision.spec)
            except ControlError as error:
                if error.status is not None:  # refused: say why on the Service
                    await self.events.post(service, "Warning", "AllocationFailed", str(error))
                raise
            self.metrics.ensures.labels("sent").inc()
            self._accepted[key] = (decision.spec, ensured)
            if ensured.created or previous != ensured.version:
                log.info(
                    "load_balancer_ensured service=%s load_balancer=%s version=%d created=%s vips=%s",
                    key,
                    ensured.name,
                    ensured.version,
                    ensured.created,
                    ",".join(ensured.addresses),
                )
        for warning in decision.warnings:
            await self.events.post(service, "Warning", "Configuration", warning)
        desired = ingress_for(ensured.addresses, service)
        if not same_ingress(cached.ingress, desired):
            await self.kube.patch(
                Service.Status,
                service.name,
                {"status": {"loadBalancer": {"ingress": list(desired)}}},
                namespace=service.namespace,
                patch_type=PatchType.MERGE,
            )
            log.info(
                "service_allocated service=%s load_balancer=%s vips=%s",
                key,
                ensured.name,
                ",".join(ensured.addresses),
            )
            await self.events.post(
                service,
                "Normal",
                "Allocated",
                f"load balancer {ensured.name}: {', '.join(ensured.addresses)}",
            )
            self.metrics.status_updates.inc()
        if previous is not None and previous != ensured.version:
            await self.events.post(
                service,
                "Normal",
                "BackendsUpdated",
                f"load balancer {ensured.name} version {ensured.version}",
            )

    def _held_since_start(
        self, key: str, spec: LoadBalancerSpec
    ) -> tuple[LoadBalancerSpec, EnsuredLoadBalancer] | None:
        """The control plane's answer from before we started, if it holds exactly ``spec``."""
        held = self._held_at_start.pop(spec.name, None)
        if held is None or held.spec_digest is None or held.spec_digest != spec.digest():
            return None
        accepted = spec, EnsuredLoadBalancer(spec.name, held.version, held.addresses, created=False)
        self._accepted[key] = accepted
        return accepted

    async def _release(self, cached: CachedService, reason: str) -> None:
        service = cached.view
        key = self._key(service.namespace, service.name)
        name = self.settings.load_balancer_name(service)
        deleted = await self.control.delete(name)
        log.info(
            "service_released service=%s load_balancer=%s existed=%s reason=%r", key, name, deleted, reason
        )
        if not service.deleting and cached.ingress:
            await self.kube.patch(
                Service.Status,
                service.name,
                {"status": {"loadBalancer": {"ingress": None}}},
                namespace=service.namespace,
                patch_type=PatchType.MERGE,
            )
        await self._set_finalizers(service, tuple(item for item in service.finalizers if item != FINALIZER))
        await self.events.post(service, "Normal", "Released", f"load balancer {name} deleted: {reason}")
        self._accepted.pop(key, None)
        self._problems.pop(key, None)

    async def _set_finalizers(self, service: ServiceView, finalizers: tuple[str, ...]) -> None:
        await self.kube.patch(
            Service,
            service.name,
            {"metadata": {"finalizers": list(finalizers)}},
            namespace=service.namespace,
            patch_type=PatchType.MERGE,
        )
