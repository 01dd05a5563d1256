"""The compiled core's counter rows and the Python side that folds them into Prometheus agree."""

from anycastlb.dataplane.metrics import CONNECT_BUCKETS
from anycastlb.dataplane.native import core_module


def test_connect_latency_buckets_are_the_histograms() -> None:
    assert core_module.CONNECT_BOUNDS == CONNECT_BUCKETS


def test_reasons_are_the_metric_labels_documented() -> None:
    assert core_module.REJECT_REASONS[:4] == (
        "source_rate",
        "source_limit",
        "listener_rate",
        "listener_limit",
    )
    assert core_module.REJECT_REASONS[4:] == ("no_backend", "backends_failed", "no_route")
    assert core_module.CONNECT_ERRORS == ("refused", "timeout", "unreachable", "reset", "other")


def test_rows_do_not_overlap() -> None:
    layout = core_module.LAYOUT
    listener = sorted(v for k, v in layout.items() if k.startswith("L_"))
    assert listener == list(range(len(listener)))
    assert layout["L_REJECTED"] + len(core_module.REJECT_REASONS) == 13
    assert layout["T_ERRORS"] + len(core_module.CONNECT_ERRORS) == layout["T_BUCKETS"]
    assert layout["T_BUCKETS"] + len(CONNECT_BUCKETS) + 1 == layout["T_SUM_NS"]
