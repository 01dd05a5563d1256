"""The controller's Prometheus metrics."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ControllerMetrics"]


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "anycastlb_controller_reconciles",
            "Service reconciles by result (ok, retry, error)",
            ["result"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "anycastlb_controller_reconcile_seconds",
            "Time to reconcile one Service",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "anycastlb_controller_queue_depth", "Services waiting", registry=self.registry
        )
        self.invalid = Counter(
            "anycastlb_controller_invalid",
            "Reconciles refused for an invalid configuration (annotations or the Service's own fields)",
            registry=self.registry,
        )
        self.status_updates = Counter(
            "anycastlb_controller_status_updates",
            "status.loadBalancer patches written",
            registry=self.registry,
        )
        self.resyncs = Counter("anycastlb_controller_resyncs", "Full resyncs", registry=self.registry)
        self.ensures = Counter(
            "anycastlb_controller_ensures",
            "Load balancer specs reconciled: sent to the control plane (sent), or equal to the one it "
            "last accepted at an unchanged version and not sent (unchanged)",
            ["outcome"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "anycastlb_controller_leader", "1 while this replica leads", registry=self.registry
        )
