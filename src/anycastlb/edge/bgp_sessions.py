"""The PoP's BGP sessions for its status report, read from the bgp helper's own metric.

The bgp helper (another process) sets ``anycastlb_bgp_session_up{peer}`` in the edge's Prometheus
multiprocess directory whenever its speaker says a session went up or down. The follower reads
that gauge back rather than adding a channel between the two processes: only the live-max gauge
files are read (a few series: sessions, announced prefixes, draining), so a report costs no scan
of the workers' per-listener counters. The values are the ones ``/metrics`` shows.
"""

import glob
import os

from prometheus_client import multiprocess

from anycastlb.model.desired import BgpSession

__all__ = ["bgp_sessions"]

_SESSION_UP = "anycastlb_bgp_session_up"
_HEADER = 8  # bytes: a file shorter than its header is being created (see scrape.py)


def bgp_sessions(metrics_dir: str | None) -> tuple[BgpSession, ...]:
    """Every peer the speaker reported on, by peer; () without a metrics directory."""
    if not metrics_dir:
        return ()
    files = []
    for path in glob.glob(os.path.join(metrics_dir, "gauge_livemax_*.db")):
        try:
            if os.path.getsize(path) >= _HEADER:
                files.append(path)
        except FileNotFoundError:  # a dead helper's file removed meanwhile
            continue
    up: dict[str, bool] = {}
    for metric in multiprocess.MultiProcessCollector.merge(files, accumulate=True):  # type: ignore[no-untyped-call]
        if metric.name == _SESSION_UP:
            for sample in metric.samples:
                peer = sample.labels.get("peer")
                if peer is not None:
                    up[peer] = up.get(peer, False) or sample.value >= 1
    return tuple(BgpSession(peer=peer, up=state) for peer, state in sorted(up.items()))
