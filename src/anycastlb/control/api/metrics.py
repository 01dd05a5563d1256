"""The control plane's Prometheus metrics, one registry per app (tests build several apps)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from anycastlb.control.api.usage_metrics import UsageMetrics

__all__ = ["ControlMetrics"]


class ControlMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "anycastlb_control_requests",
            "API requests by route template and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "anycastlb_control_request_seconds",
            "API request duration by route template (long polls excluded)",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.watchers = Gauge(
            "anycastlb_control_watchers", "PoP long polls waiting right now", registry=self.registry
        )
        self.write_retries = Counter(
            "anycastlb_control_write_retries",
            "Transactions retried after losing a race to a concurrent writer",
            registry=self.registry,
        )
        self.write_transaction = Histogram(
            "anycastlb_control_write_transaction_seconds",
            "Writing transactions from BEGIN to commit: on SQLite the time the writers' lock is "
            "held, on PostgreSQL also the wait for the revision row (target: held < 0.1 s)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=self.registry,
        )
        self.usage = UsageMetrics(self.registry)
