"""The collector behind the edge's ``/metrics``: every worker's files, minus the one being created.

Workers write Prometheus multiprocess files (``<type>_<pid>.db``). ``prometheus_client`` creates such
a file empty and only then sizes it; a scrape that lands in between reads zero bytes and
``MultiProcessCollector`` raises ``struct.error``, so the whole scrape fails (the client sees the
connection closed without a response). Seen in tests that scrape while workers count their first
connections. A file that is still empty holds no value yet, so skipping it loses nothing: the next
scrape reads it.
"""

import glob
import os
from collections.abc import Iterable

from prometheus_client import multiprocess
from prometheus_client.metrics_core import Metric

__all__ = ["SettledFilesCollector"]

_HEADER = 8  # bytes: "used" (u32) and padding, written when the file is sized


class SettledFilesCollector(multiprocess.MultiProcessCollector):
    """``MultiProcessCollector`` that skips files too short to hold even their header."""

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(path) >= _HEADER:
                    files.append(path)
            except FileNotFoundError:  # a dead worker's file removed meanwhile
                continue
        merged: Iterable[Metric] = self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return merged
