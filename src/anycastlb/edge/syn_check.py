"""Read the SYN-flood sysctls at start, log one warning per problem, export the verdicts as gauges.

The judgement itself is pure (``anycastlb.dataplane.syn_posture``); this is the thin shell around
it: ``/proc/sys`` in, log lines and metrics out. Nothing is ever written to ``/proc/sys``.
"""

import logging
from pathlib import Path

from prometheus_client import Gauge

from anycastlb.dataplane.syn_posture import KernelSettings, PostureCheck, judge_syn_posture
from anycastlb.model.config import EdgeConfig

__all__ = ["check_syn_posture", "read_kernel_settings"]

log = logging.getLogger("anycastlb.edge")

POSTURE = Gauge(
    "anycastlb_syn_posture_ok",
    "SYN-flood posture checked at start: 1 = ok, 0 = see the syn_posture warning in the log",
    ["check"],
    multiprocess_mode="max",
)
SYSCTL = Gauge(
    "anycastlb_syn_sysctl",
    "SYN-flood related sysctls as read at start (absent when unreadable)",
    ["sysctl"],
    multiprocess_mode="max",
)
_SYSCTLS = {
    "syncookies": "net.ipv4.tcp_syncookies",
    "somaxconn": "net.core.somaxconn",
    "max_syn_backlog": "net.ipv4.tcp_max_syn_backlog",
}


def _read(root: Path, sysctl: str) -> int | None:
    try:
        return int((root / sysctl.replace(".", "/")).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_kernel_settings(root: Path = Path("/proc/sys")) -> KernelSettings:
    return KernelSettings(**{field: _read(root, sysctl) for field, sysctl in _SYSCTLS.items()})


def check_syn_posture(config: EdgeConfig, root: Path = Path("/proc/sys")) -> tuple[PostureCheck, ...]:
    kernel = read_kernel_settings(root)
    verdicts = judge_syn_posture(kernel, {listener.name: listener.backlog for listener in config.listeners})
    for field, sysctl in _SYSCTLS.items():
        value = getattr(kernel, field)
        if value is not None:
            SYSCTL.labels(sysctl).set(value)
    for verdict in verdicts:
        POSTURE.labels(verdict.check).set(1 if verdict.ok else 0)
        if not verdict.ok:
            log.warning("syn_posture check=%s problem=%r", verdict.check, verdict.message)
    if all(verdict.ok for verdict in verdicts):
        log.info(
            "syn_posture ok syncookies=%s somaxconn=%s max_syn_backlog=%s",
            kernel.syncookies,
            kernel.somaxconn,
            kernel.max_syn_backlog,
        )
    return verdicts
