"""What the edge reports for accounting: every worker's per-listener counters summed from the
multiprocess files (dead workers' too), under an epoch that lives as long as those files."""

import os
import subprocess
import sys
from pathlib import Path

from anycastlb.edge.desired_listeners import ListenerOrigin
from anycastlb.edge.usage_counters import counter_epoch, read_listener_counts, usage_report

_WORKER = """
from anycastlb.dataplane.metrics import BYTES, CONNECTIONS
BYTES.labels("acme-web-443", "client_to_backend").inc({bytes_in})
BYTES.labels("acme-web-443", "backend_to_client").inc({bytes_out})
CONNECTIONS.labels("acme-web-443").inc({connections})
"""


def _worker(directory: Path, bytes_in: int, bytes_out: int, connections: int) -> None:
    """A process that counts and exits, as a worker folds its counters and stops."""
    code = _WORKER.format(bytes_in=bytes_in, bytes_out=bytes_out, connections=connections)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def test_the_counts_of_every_worker_are_summed_and_outlive_them(tmp_path: Path) -> None:
    _worker(tmp_path, 1_000_000_007, 5, 3)
    _worker(tmp_path, 13, 2**40, 1)
    assert read_listener_counts(tmp_path) == {"acme-web-443": (1_000_000_020, 2**40 + 5, 4)}


def test_an_empty_directory_counts_nothing(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").touch()  # created, not yet sized: skipped, not an error
    assert read_listener_counts(tmp_path) == {}


def test_the_epoch_lives_with_the_directory(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    epoch = counter_epoch(first)
    assert counter_epoch(first) == epoch  # a follower started again reads the same one
    assert counter_epoch(second) != epoch  # a fresh directory (an edge restart) a new one
    assert sorted(path.name for path in first.iterdir()) == ["accounting-epoch"]


def test_the_report_names_each_listener_s_load_balancer_and_vip_and_skips_unknown_ones() -> None:
    origins = {"acme-web-443": ListenerOrigin("lb-1", "127.79.0.1", 443, "tcp")}
    counts = {"acme-web-443": (10, 20, 1), "gone-80": (5, 5, 1)}
    report = usage_report("e1", 7, counts, origins)
    assert (report.epoch, report.sequence) == ("e1", 7)
    (entry,) = report.listeners
    assert (entry.listener, entry.load_balancer, str(entry.address), entry.port) == (
        "acme-web-443",
        "lb-1",
        "127.79.0.1",
        443,
    )
    assert (entry.bytes_in, entry.bytes_out, entry.connections) == (10, 20, 1)
