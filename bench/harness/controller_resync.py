"""A full resync's pure part, timed step by step in this process: what the controller does in CPU
before its first request (the PUTs are ``controller_puts.py``).

One round, in this order (each step's input is the previous one's output):

1. ``parse``: the listed JSON dicts → lightkube models (``from_dict``, what lightkube's client does
   for every listed or watched object), Services, Nodes and EndpointSlices separately;
2. ``views``: lightkube models → the controller's views (``anycastlb.k8s.convert``), which the
   informers do on arrival and keep;
3. ``indexes``: ``NodeIndex.build`` + ``SliceIndex.build``;
4. ``reconcile first``: every Service against those fresh indexes, with reconcile's and the
   annotation parser's process-wide caches emptied: a controller's first sync after it starts,
   with the garbage collector off and one collection at the end, as the runtime does;
5. ``reconcile again``: every Service against the same indexes: the periodic resync (the runtime
   keeps its indexes until a Node or an EndpointSlice changes);
6. ``spec compare``: each decision's spec against the one the control plane last accepted (the
   first reconcile's), as the controller does before it would PUT; equal specs are not sent;
7. ``status check``: ``ingress_for`` + ``same_ingress`` per Service (the controller compares the
   status it would write with the Service's);
8. ``node change``: one Node joins; a new ``NodeIndex`` is built with ``previous=`` the old one and
   every Service reconciled (listeners patched instead of rebuilt), as ``Controller._indexes`` does;
   then, with the old index dropped, the same with a ``NodeIndex`` built from scratch (what the
   runtime did before it passed ``previous=``, and what a cold start costs once caches are warm).

Each step records wall time, process CPU time, the time the garbage collector ran inside it and
its longest single run; the reconcile steps also record this process's resident memory afterwards.
Objects alive before a round (the JSON cluster, the modules) are frozen out of the collector's
sight (``gc.freeze``), so it walks what a controller holds: its views, the indexes and the listeners
built on them; after the first reconcile everything is frozen, as the runtime does after its first
pass.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lightkube.resources.core_v1 import Node, Service
from lightkube.resources.discovery_v1 import EndpointSlice

from anycastlb.k8s import annotations as annotations_module
from anycastlb.k8s import reconcile as reconcile_module
from anycastlb.k8s.convert import endpoint_slice_view, ingress_of, node_view, service_view
from anycastlb.k8s.reconcile import Decision, Desired, NodeIndex, SliceIndex, reconcile
from anycastlb.k8s.status import ingress_for, same_ingress
from anycastlb.k8s.views import ControllerSettings, EndpointSliceView, NodeView, ServiceView
from anycastlb.model.desired import LoadBalancerSpec
from bench.harness.controller_cluster import Cluster, node_object

__all__ = [
    "STEPS",
    "GcClock",
    "ResyncRound",
    "Step",
    "Views",
    "desired_specs",
    "measure_resync",
    "own_cpu_seconds",
    "settings",
    "to_views",
]

STEPS = (
    "parse Services",
    "parse Nodes",
    "parse EndpointSlices",
    "views Services",
    "views Nodes",
    "views EndpointSlices",
    "indexes",
    "reconcile first",
    "reconcile again",
    "spec compare",
    "status check",
    "node change: previous=",
    "node change: rebuild",
)
_SAMPLE = 500  # decisions compared between the two ways of following a Node change
T = TypeVar("T")


def settings() -> ControllerSettings:
    return ControllerSettings(cluster="bench")


@dataclass
class Step:
    wall_s: float
    cpu_s: float
    gc_s: float
    gc_longest_s: float = 0.0  # the longest single collection inside the step
    rss_mib: float = 0.0  # resident memory after the step (reconcile steps)


@dataclass
class ResyncRound:
    round: int
    steps: dict[str, Step] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # decisions other than Desired, mismatches


@dataclass
class Views:
    services: list[ServiceView]
    ingress: list[tuple[dict[str, Any], ...]]  # each Service's status.loadBalancer.ingress
    nodes: list[NodeView]
    slices: list[EndpointSliceView]


class GcClock:
    """Seconds the collector ran, and its longest single run, from gc.callbacks' start/stop pairs.
    While it runs nothing else in the process does: in a controller, its event loop stands still."""

    def __init__(self) -> None:
        self.total = 0.0
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            took = time.perf_counter() - self._started
            self.total += took
            self.longest = max(self.longest, took)

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def _timed(result: ResyncRound, name: str, clock: GcClock, *, rss: bool = False) -> Iterator[None]:
    gc_before, cpu, wall = clock.total, time.process_time(), time.perf_counter()
    clock.longest = 0.0
    yield
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result.steps[name] = Step(wall, cpu, clock.total - gc_before, clock.longest, _rss_mib() if rss else 0.0)


def _each(function: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    return [function(item) for item in items]


def to_views(cluster: Cluster, services: int) -> Views:
    """The informers' caches for the first ``services`` Services (untimed: for the other phases)."""
    models = [Service.from_dict(obj) for obj in cluster.services[:services]]
    return Views(
        [service_view(model) for model in models],
        [ingress_of(model) for model in models],
        [node_view(Node.from_dict(obj)) for obj in cluster.nodes],
        [endpoint_slice_view(EndpointSlice.from_dict(obj)) for obj in cluster.slices[:services]],
    )


def desired_specs(views: Views) -> list[LoadBalancerSpec]:
    config = settings()
    nodes, slices = NodeIndex.build(views.nodes, config), SliceIndex.build(views.slices)
    decisions = [reconcile(service, nodes, slices, config) for service in views.services]
    return [decision.spec for decision in decisions if isinstance(decision, Desired)]


def _clear_caches() -> None:
    """reconcile's and the annotation parser's lru_caches: empty, as in a controller just started."""
    reconcile_module._listener_template.cache_clear()
    reconcile_module._ip_request.cache_clear()
    annotations_module._selector.cache_clear()


def _check(result: ResyncRound, label: str, decisions: list[Decision], reference: list[Decision]) -> None:
    wrong = [d for d in decisions if not isinstance(d, Desired)]
    if wrong:
        result.problems.append(f"{label}: {len(wrong)} Services not Desired, e.g. {wrong[0]!r:.300}")
    if reference and decisions != reference:
        result.problems.append(f"{label}: decisions differ from the first reconcile's")


def measure_resync(cluster: Cluster, services: int, index: int) -> ResyncRound:
    """One round over the first ``services`` Services and every Node (see the module docstring)."""
    result, clock, config = ResyncRound(index), GcClock(), settings()
    gc.collect()
    gc.freeze()  # the JSON cluster and the modules: a controller does not hold the JSON
    gc.callbacks.append(clock)
    try:
        with _timed(result, "parse Services", clock):
            service_models = _each(Service.from_dict, cluster.services[:services])
        with _timed(result, "parse Nodes", clock):
            node_models = _each(Node.from_dict, cluster.nodes)
        with _timed(result, "parse EndpointSlices", clock):
            slice_models = _each(EndpointSlice.from_dict, cluster.slices[:services])
        with _timed(result, "views Services", clock):
            service_views = _each(service_view, service_models)
            ingress = _each(ingress_of, service_models)
        with _timed(result, "views Nodes", clock):
            node_views = _each(node_view, node_models)
        with _timed(result, "views EndpointSlices", clock):
            slice_views = _each(endpoint_slice_view, slice_models)
        del service_models, node_models, slice_models
        _clear_caches()
        with _timed(result, "indexes", clock, rss=True):
            nodes, slices = NodeIndex.build(node_views, config), SliceIndex.build(slice_views)
        with _timed(result, "reconcile first", clock, rss=True):
            gc.disable()  # as the runtime's first pass does (Controller._first_pass_done)...
            try:
                first = [reconcile(service, nodes, slices, config) for service in service_views]
            finally:
                gc.enable()
            gc.collect()  # ...and the one collection at its end
        _check(result, "first", first, [])
        gc.freeze()  # as the runtime does after its first pass (Controller._first_pass_done)
        with _timed(result, "reconcile again", clock, rss=True):
            again = [reconcile(service, nodes, slices, config) for service in service_views]
        _check(result, "again", again, first)
        with _timed(result, "spec compare", clock):
            unchanged = sum(
                1
                for new, old in zip(again, first, strict=True)
                if isinstance(new, Desired) and isinstance(old, Desired) and new.spec == old.spec
            )
        if unchanged != len(again):
            result.problems.append(f"spec compare: {len(again) - unchanged} specs differ on a resync")
        with _timed(result, "status check", clock):
            for service, current, decision in zip(service_views, ingress, again, strict=True):
                if isinstance(decision, Desired):
                    same_ingress(current, ingress_for([item["ip"] for item in current], service))
        del again
        joined = [*node_views, node_view(Node.from_dict(node_object(len(node_views))))]
        with _timed(result, "node change: previous=", clock, rss=True):
            patched = NodeIndex.build(joined, config, previous=nodes)
            followed = [reconcile(service, patched, slices, config) for service in service_views]
        sample = followed[:_SAMPLE]
        del first, followed, nodes, patched  # the runtime drops its NodeIndex when a Node changes
        gc.collect()
        with _timed(result, "node change: rebuild", clock, rss=True):
            rebuilt = NodeIndex.build(joined, config)
            changed = [reconcile(service, rebuilt, slices, config) for service in service_views]
        _check(result, "rebuild", changed, [])
        if changed[:_SAMPLE] != sample:
            result.problems.append("node change: previous= gives other decisions than a rebuild")
        del changed, rebuilt, sample
    finally:
        gc.callbacks.remove(clock)
        gc.unfreeze()
        gc.collect()
    return result


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
