"""Hot-path counters publish the same numbers prometheus-client would have computed itself."""

from prometheus_client import CollectorRegistry, Histogram

from anycastlb.dataplane.metrics import CONNECT_BUCKETS, BackendStats, add_bucketed

SAMPLES = [0.00005, 0.0001, 0.0003, 0.0011, 0.004, 0.004, 0.03, 0.7, 3.0, 120.0]


def histogram_samples(fill: str) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    histogram = Histogram("connect_seconds", "test", ["backend"], buckets=CONNECT_BUCKETS, registry=registry)
    child = histogram.labels("b")
    if fill == "observe":
        for seconds in SAMPLES:
            child.observe(seconds)
    else:
        stats = BackendStats(listener="web", backend="b")
        for seconds in SAMPLES:
            stats.connected(seconds)
        add_bucketed(child, stats.connect_counts, stats.connect_total)
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_pre_bucketed_connect_latencies_expose_exactly_what_observe_would() -> None:
    assert histogram_samples("bucketed") == histogram_samples("observe")


def test_a_successful_connect_counts_as_a_connection_and_as_active() -> None:
    stats = BackendStats(listener="web", backend="b")

    stats.connected(0.002)

    assert (stats.connections, stats.active, sum(stats.connect_counts)) == (1, 1, 1)
