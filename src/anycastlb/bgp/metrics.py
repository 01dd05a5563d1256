"""Prometheus metrics of the BGP announcer (multiprocess mode, summed into the edge's scrape)."""

from prometheus_client import Counter, Gauge

__all__ = ["ANNOUNCED", "API_ERRORS", "DRAINING", "SESSION_UP", "SPEAKER_RESTARTS"]

SESSION_UP = Gauge(
    "anycastlb_bgp_session_up",
    "1 while the BGP session with the peer is established",
    ["peer"],
    multiprocess_mode="livemax",
)
ANNOUNCED = Gauge(
    "anycastlb_bgp_announced",
    "1 while the PoP announces the VIP prefix",
    ["prefix"],
    multiprocess_mode="livemax",
)
DRAINING = Gauge(
    "anycastlb_bgp_draining",
    "1 once a drain withdrew every VIP",
    multiprocess_mode="livemax",
)
SPEAKER_RESTARTS = Counter(
    "anycastlb_bgp_child_restarts", "Times a BGP child (exabgp, bfd) exited and was restarted", ["child"]
)
API_ERRORS = Counter("anycastlb_bgp_api_errors", "Speaker API commands answered with an error")
