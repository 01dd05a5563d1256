"""The edge's traffic counters per listener, read for accounting; the counter epoch they run under.

The workers fold the core's per-listener counters into Prometheus multiprocess files once a second
and when they exit (dataplane/metrics.py: ``anycastlb_bytes``, ``anycastlb_connections``). A
counter file outlives its worker, so the sum over the directory is cumulative for as long as the
directory lives: from the edge's start (the supervisor makes a fresh one) to its stop, across
worker restarts and reloads. The *epoch* names that life: a random id written into the directory
the first time it is asked for, so a follower started again reads the same one, and an operator's
own ``PROMETHEUS_MULTIPROC_DIR`` that survives restarts keeps its epoch with its counters.
"""

import glob
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from prometheus_client import multiprocess

from anycastlb.edge.desired_listeners import ListenerOrigin
from anycastlb.model.addresses import parse_address
from anycastlb.model.usage import ListenerUsage, UsageReport

__all__ = ["ListenerCounts", "counter_epoch", "read_listener_counts", "usage_report"]

ListenerCounts = tuple[int, int, int]  # bytes_in, bytes_out, connections
_EPOCH_FILE = "accounting-epoch"
_HEADER = 8  # bytes of a sized multiprocess file (edge/scrape.py)


def counter_epoch(directory: Path) -> str:
    """The epoch of the counters in ``directory``: read, or drawn and written once."""
    path = directory / _EPOCH_FILE
    try:
        text = path.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    epoch = f"{int(time.time())}-{secrets.token_hex(6)}"
    partial = directory / f".{_EPOCH_FILE}.{os.getpid()}"
    partial.write_text(epoch)
    try:
        os.link(partial, path)  # first writer wins; a concurrent one reads the winner's
    except FileExistsError:
        epoch = path.read_text().strip()
    finally:
        partial.unlink()
    return epoch


def read_listener_counts(directory: Path) -> dict[str, ListenerCounts]:
    """The cumulative counters of every listener the workers have counted in ``directory``."""
    files = []
    for path in glob.glob(os.path.join(directory, "counter_*.db")):
        try:
            if os.path.getsize(path) >= _HEADER:
                files.append(path)
        except FileNotFoundError:
            continue
    counts: dict[str, list[int]] = {}
    for metric in multiprocess.MultiProcessCollector.merge(files, accumulate=True):  # type: ignore[no-untyped-call]
        for sample in metric.samples:
            listener = sample.labels.get("listener")
            if listener is None or not sample.name.endswith("_total"):
                continue
            if sample.name == "anycastlb_bytes_total":
                slot = 0 if sample.labels.get("direction") == "client_to_backend" else 1
            elif sample.name == "anycastlb_connections_total":
                slot = 2
            else:
                continue
            counts.setdefault(listener, [0, 0, 0])[slot] += int(sample.value)
    return {name: (values[0], values[1], values[2]) for name, values in counts.items()}


def usage_report(
    epoch: str,
    sequence: int,
    counts: Mapping[str, ListenerCounts],
    origins: Mapping[str, ListenerOrigin],
) -> UsageReport:
    """The report of every counted listener whose origin is known (pure). A listener without one
    (removed before this follower started) cannot be attributed and is left out."""
    return UsageReport(epoch=epoch, sequence=sequence, listeners=tuple(_entries(counts, origins)))


def _entries(
    counts: Mapping[str, ListenerCounts], origins: Mapping[str, ListenerOrigin]
) -> Iterable[ListenerUsage]:
    for name in sorted(counts):
        origin = origins.get(name)
        if origin is None or origin.protocol != "tcp":
            continue
        bytes_in, bytes_out, connections = counts[name]
        yield ListenerUsage(
            listener=name,
            load_balancer=origin.load_balancer_id,
            address=parse_address(origin.address),
            port=origin.port,
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            connections=connections,
        )
