"""Prometheus metrics of the follower (multiprocess mode, summed into the edge's scrape)."""

from prometheus_client import Counter, Gauge

__all__ = ["APPLIED_VERSION", "CONNECTED", "DESIRED_VERSION", "LAST_SUCCESS", "LAST_SYNC", "WATCH_ERRORS"]

APPLIED_VERSION = Gauge(
    "anycastlb_control_applied_version",
    "Version of the PoP's desired state the edge runs (its last-known-good)",
    multiprocess_mode="livemax",
)
WATCH_ERRORS = Counter(
    "anycastlb_control_watch_errors",
    "Failed watches of the desired state, by reason (connect, timeout, server_error, auth, invalid, ...)",
    ["reason"],
)
CONNECTED = Gauge(
    "anycastlb_control_connected",
    "1 while the control plane answers (the last watch or status report succeeded)",
    multiprocess_mode="livemax",
)
LAST_SYNC = Gauge(
    "anycastlb_control_last_sync_timestamp_seconds",
    "Unix time of the last desired state received from the control plane",
    multiprocess_mode="livemax",
)
DESIRED_VERSION = Gauge(
    "anycastlb_control_desired_version",
    "Newest version of the PoP's desired state the control plane answered (above the applied version "
    "while a version is being applied, or after the edge refused it)",
    multiprocess_mode="livemax",
)
LAST_SUCCESS = Gauge(
    "anycastlb_control_last_success_timestamp_seconds",
    "Unix time of the last answered watch or accepted status report (every 5 s while connected); "
    "0 until the first. Only an edge that follows a control plane has it, labelled with its URL",
    ["url"],
    multiprocess_mode="livemax",
)
