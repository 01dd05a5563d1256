"""Prometheus multiprocess mode must be chosen before ``prometheus_client`` creates any metric.

Workers write their samples to files in a private directory; the supervisor's scrape sums them.
This module therefore imports nothing from prometheus_client and runs first.
"""

import atexit
import os
import shutil
import tempfile

__all__ = ["prepare_metrics_dir"]


def prepare_metrics_dir() -> str:
    """Create a fresh directory for this agent's samples and remove it at exit."""
    existing = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if existing:
        return existing
    path = tempfile.mkdtemp(prefix="anycastlb-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # forked workers inherit atexit hooks: only the supervisor cleans up
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path
