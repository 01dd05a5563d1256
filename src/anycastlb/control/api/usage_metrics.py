"""The control plane's accounting metrics: what this replica stored, per tenant, load balancer and
VIP, and when it last stored each PoP's accounting report.

Counters count what *this process* stored (each replica its own share; sum them across replicas).
The timestamp is read from the store at each scrape, so every replica exports every registered PoP
(0: it never sent a report) and they agree; a deleted PoP disappears.
"""

from collections.abc import Iterable, Mapping

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
            "When the PoP's last accounting report was stored (Unix time; 0: never)",
            ["pop"],
            registry=registry,
        )

    def stored(self, items: Iterable[StoredUsage]) -> None:
        """After the commit (a retried transaction must not count twice)."""
        for item in items:
            labels = (item.tenant, item.load_balancer, item.vip)
            if item.counts.bytes_in:
                self.bytes.labels(*labels, "in").inc(item.counts.bytes_in)
            if item.counts.bytes_out:
                self.bytes.labels(*labels, "out").inc(item.counts.bytes_out)
            if item.counts.connections:
                self.connections.labels(*labels).inc(item.counts.connections)

    def last_reports(self, reported: Mapping[str, float]) -> None:
        """Before a scrape: every registered PoP's last report, as the store has it."""
        self.last_report.clear()
        for pop, timestamp in reported.items():
            self.last_report.labels(pop).set(timestamp)
