"""Prometheus metrics of the health process (multiprocess mode, summed into the edge's scrape).

Gauges use ``livemax``: there is one health process at a time, and when a replaced one is marked
dead its last values disappear instead of lingering beside the new process's.
"""

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BACKEND_UP",
    "BACKEND_WEIGHT",
    "CHECK_SECONDS",
    "LISTENER_SERVING",
    "PASSIVE_FAILURES",
    "TRANSITIONS",
]

BACKEND_UP = Gauge(
    "anycastlb_backend_up",
    "1 if the backend receives new connections, 0 if health checks ejected it",
    ["listener", "backend"],
    multiprocess_mode="livemax",
)
BACKEND_WEIGHT = Gauge(
    "anycastlb_backend_weight",
    "The backend's Maglev weight: configured, or learned from a k8s check (local endpoints)",
    ["listener", "backend"],
    multiprocess_mode="livemax",
)
LISTENER_SERVING = Gauge(
    "anycastlb_listener_serving",
    "1 while the listener has at least one healthy backend (what the BGP announcer follows)",
    ["listener"],
    multiprocess_mode="livemax",
)
TRANSITIONS = Counter(
    "anycastlb_health_transitions",
    "Backend health changes, by the state entered (down, up)",
    ["listener", "backend", "to"],
)
PASSIVE_FAILURES = Counter(
    "anycastlb_health_passive_failures",
    "Failed client connects reported by the data plane, by reason",
    ["listener", "backend", "reason"],
)
CHECK_SECONDS = Histogram(
    "anycastlb_health_check_seconds",
    "Duration of health probes, by check type and result (ok, fail)",
    ["type", "result"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
