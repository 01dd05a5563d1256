"""A scrape that lands while a worker creates its metrics file still answers."""

import struct
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from anycastlb.edge.scrape import SettledFilesCollector


def test_a_metrics_file_still_empty_is_skipped_instead_of_failing_the_scrape(tmp_path: Path) -> None:
    (tmp_path / "counter_4242.db").write_bytes(b"")  # created, not yet sized: what a scrape can meet
    upstream, ours = CollectorRegistry(), CollectorRegistry()
    multiprocess.MultiProcessCollector(upstream, path=str(tmp_path))  # type: ignore[no-untyped-call]
    SettledFilesCollector(ours, path=str(tmp_path))  # type: ignore[no-untyped-call]

    with pytest.raises(struct.error):
        generate_latest(upstream)  # the failure the edge's /metrics used to answer with
    assert generate_latest(ours) == b""
