"""Prometheus metrics of the data plane, kept off the per-connection path.

The hot path only bumps plain ``int`` fields on :class:`ListenerStats` / :class:`BackendStats`
(one attribute add per event). Once a second, and on exit, each worker folds those into
``prometheus_client`` metrics, which run in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
the edge supervisor before this module is imported) so the supervisor can serve one scrape that
sums all workers.
"""

from bisect import bisect_left
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["CONNECT_SECONDS", "LIMIT_REASONS", "BackendStats", "ListenerStats", "add_bucketed"]

CONNECTIONS = Counter("anycastlb_connections", "Client connections accepted by a listener", ["listener"])
ACTIVE = Gauge(
    "anycastlb_connections_active", "Open client connections", ["listener"], multiprocess_mode="livesum"
)
REJECTED = Counter(
    "anycastlb_connections_rejected",
    "Client connections refused: source_rate, source_limit, listener_rate, listener_limit, no_backend,"
    " backends_failed, no_route (a shared port: no listener names the SNI and none is the default)",
    ["listener", "reason"],
)
BYTES = Counter(
    "anycastlb_bytes",
    "Payload bytes relayed: what clients sent (client_to_backend) and nodes answered (backend_to_client);"
    " the PROXY header is not counted",
    ["listener", "direction"],
)
# Refusals by a configured limit (the rest of _core.REJECT_REASONS: no_backend, backends_failed,
# no_route).
# Exported at 0 from a listener's start: Prometheus's increase() cannot see the first refusals in a
# series that appears with them, and the alert on limits (AnycastlbConnectionLimitHit) needs it to.
LIMIT_REASONS = ("source_rate", "source_limit", "listener_rate", "listener_limit")
RETRIES = Counter(
    "anycastlb_connect_retries", "Backend connects retried on the next Maglev candidate", ["listener"]
)
IDLE_CLOSED = Counter(
    "anycastlb_idle_timeouts", "Connections closed after idle_timeout without traffic", ["listener"]
)
BACKEND_CONNECTIONS = Counter(
    "anycastlb_backend_connections", "Connections established to a backend", ["listener", "backend"]
)
BACKEND_ACTIVE = Gauge(
    "anycastlb_backend_connections_active",
    "Open connections to a backend",
    ["listener", "backend"],
    multiprocess_mode="livesum",
)
CONNECT_ERRORS = Counter(
    "anycastlb_backend_connect_errors",
    "Failed backend connects by reason (refused, timeout, unreachable, reset, other)",
    ["listener", "backend", "reason"],
)
CONNECT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONNECT_SECONDS = Histogram(
    "anycastlb_backend_connect_seconds",
    "Time from connect() to an established backend connection",
    ["listener", "backend"],
    buckets=CONNECT_BUCKETS,
)
_UPPER_BOUNDS = (*CONNECT_BUCKETS, float("inf"))


def add_bucketed(histogram: Histogram, counts: list[int], total: float) -> None:
    """Add pre-bucketed observations to a histogram child in one write per bucket.

    ``Histogram.observe`` in multiprocess mode takes a lock and writes two mmapped values per
    call: ~5 us per connection on this machine class. Counting into buckets on the hot path and
    adding the counts here gives the same exposition (tested against ``observe``). This uses the
    child's ``_buckets``/``_sum`` (stable since prometheus-client 0.4; the version is capped).
    """
    buckets = histogram._buckets  # private, see the docstring
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)
    histogram._sum.inc(total)


@dataclass(slots=True, eq=False)
class ListenerStats:
    """Counters a worker bumps on the hot path; :meth:`flush` publishes them."""

    name: str
    accepted: int = 0
    active: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    retries: int = 0
    idle_closed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for reason in LIMIT_REASONS:
            REJECTED.labels(self.name, reason)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def flush(self) -> None:
        name = self.name
        if self.accepted:
            CONNECTIONS.labels(name).inc(self.accepted)
            self.accepted = 0
        ACTIVE.labels(name).set(self.active)
        if self.bytes_in:
            BYTES.labels(name, "client_to_backend").inc(self.bytes_in)
            self.bytes_in = 0
        if self.bytes_out:
            BYTES.labels(name, "backend_to_client").inc(self.bytes_out)
            self.bytes_out = 0
        if self.retries:
            RETRIES.labels(name).inc(self.retries)
            self.retries = 0
        if self.idle_closed:
            IDLE_CLOSED.labels(name).inc(self.idle_closed)
            self.idle_closed = 0
        for reason, count in self.rejected.items():
            REJECTED.labels(name, reason).inc(count)
        self.rejected.clear()


@dataclass(slots=True, eq=False)
class BackendStats:
    """Per (listener, backend) counters; connect latencies are observed at flush time."""

    listener: str
    backend: str
    connections: int = 0
    active: int = 0
    connect_errors: dict[str, int] = field(default_factory=dict)
    connect_counts: list[int] = field(default_factory=lambda: [0] * len(_UPPER_BOUNDS))
    connect_total: float = 0.0

    def connect_failed(self, reason: str) -> None:
        self.connect_errors[reason] = self.connect_errors.get(reason, 0) + 1

    def connected(self, seconds: float) -> None:
        """A connect succeeded after ``seconds``: count it in the histogram bucket it falls into."""
        self.connect_counts[bisect_left(_UPPER_BOUNDS, seconds)] += 1
        self.connect_total += seconds
        self.connections += 1
        self.active += 1

    def flush(self) -> None:
        labels = (self.listener, self.backend)
        if self.connections:
            BACKEND_CONNECTIONS.labels(*labels).inc(self.connections)
            self.connections = 0
        BACKEND_ACTIVE.labels(*labels).set(self.active)
        for reason, count in self.connect_errors.items():
            CONNECT_ERRORS.labels(*labels, reason).inc(count)
        self.connect_errors.clear()
        if any(self.connect_counts):
            add_bucketed(CONNECT_SECONDS.labels(*labels), self.connect_counts, self.connect_total)
            self.connect_counts = [0] * len(_UPPER_BOUNDS)
            self.connect_total = 0.0
