"""The control plane's accounting metrics: what this replica stored, per tenant, load balancer and
VIP, and when it last stored each PoP's accounting report.

Counters count what *this process* stored (each replica its own share; sum them across replicas);
the timestamp is this replica's last for the PoP (take the max across replicas).
"""

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from anycastlb.control.service.usage import StoredUsage

__all__ = ["UsageMetrics"]


class UsageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.bytes = Counter(
            "anycastlb_control_usage_bytes",
            "Payload bytes stored by traffic accounting: direction in = clients to the VIP, out = back "
            "to clients (PROXY headers excluded)",
            ["tenant", "load_balancer", "vip", "direction"],
            registry=registry,
        )
        self.connections = Counter(
            "anycastlb_control_usage_connections",
            "Client connections stored by traffic accounting",
            ["tenant", "load_balancer", "vip"],
            registry=registry,
        )
        self.last_report = Gauge(
            "anycastlb_control_accounting_last_report_timestamp_seconds",
            "When this replica last stored the PoP's accounting report (Unix time)",
            ["pop"],
            registry=registry,
        )

    def stored(self, pop: str, items: Iterable[StoredUsage]) -> None:
        """After the commit (a retried transaction must not count twice)."""
        for item in items:
            labels = (item.tenant, item.load_balancer, item.vip)
            if item.counts.bytes_in:
                self.bytes.labels(*labels, "in").inc(item.counts.bytes_in)
            if item.counts.bytes_out:
                self.bytes.labels(*labels, "out").inc(item.counts.bytes_out)
            if item.counts.connections:
                self.connections.labels(*labels).inc(item.counts.connections)
        self.last_report.labels(pop).set(time.time())
