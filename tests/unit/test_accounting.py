"""Traffic accounting's arithmetic: cumulative reports across failures and restarts into deltas,
deltas into query steps (control/accounting.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycastlb.control.accounting import (
    RESOLUTION,
    Counts,
    WindowError,
    advance,
    bucket_start,
    into_steps,
    is_stale,
    window,
)

T0 = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)


def test_same_epoch_stores_the_growth() -> None:
    deltas = advance("e1", {"web-80": Counts(100, 50, 2)}, "e1", {"web-80": Counts(150, 80, 3)})
    assert deltas == {"web-80": Counts(50, 30, 1)}


def test_a_new_listener_counts_its_whole_value() -> None:
    assert advance("e1", {}, "e1", {"web-80": Counts(7, 8, 1)}) == {"web-80": Counts(7, 8, 1)}


def test_a_new_epoch_counts_the_new_values_from_zero() -> None:
    deltas = advance("e1", {"web-80": Counts(1000, 1000, 10)}, "e2", {"web-80": Counts(5, 6, 1)})
    assert deltas == {"web-80": Counts(5, 6, 1)}


def test_a_new_epoch_with_larger_values_still_counts_from_zero() -> None:
    deltas = advance("e1", {"web-80": Counts(10, 10, 1)}, "e2", {"web-80": Counts(50, 60, 2)})
    assert deltas == {"web-80": Counts(50, 60, 2)}


def test_a_value_that_went_down_is_a_reset_of_all_three() -> None:
    # bytes went down, connections up: the counters started again; the 3 connections are all new
    deltas = advance("e1", {"web-80": Counts(1000, 1000, 2)}, "e1", {"web-80": Counts(10, 2000, 3)})
    assert deltas == {"web-80": Counts(10, 2000, 3)}


def test_an_unchanged_report_adds_nothing() -> None:
    deltas = advance("e1", {"web-80": Counts(1, 2, 3)}, "e1", {"web-80": Counts(1, 2, 3)})
    assert deltas == {"web-80": Counts()}
    assert not deltas["web-80"]


# An edge: traffic adds to counters; a report is delivered or lost; a restart begins a new epoch
# from zero. What is stored must be exactly the traffic counted up to each epoch's last delivered
# report, however many reports were lost and however often the edge restarted.
_traffic = st.tuples(
    st.sampled_from(["a-80", "b-443", "c-80-1"]),
    st.integers(0, 10**12),
    st.integers(0, 10**12),
    st.integers(0, 100),
)
_event = st.one_of(
    st.tuples(st.just("traffic"), _traffic),
    st.tuples(st.just("report"), st.booleans()),  # delivered?
    st.tuples(st.just("restart"), st.none()),
)


@settings(max_examples=300)
@given(st.lists(_event, max_size=60))
def test_stored_deltas_are_the_traffic_of_every_delivered_report(events: list) -> None:  # type: ignore[type-arg]
    epoch_number = 0
    counters: dict[str, Counts] = {}
    stored_epoch: str | None = None
    cursors: dict[str, Counts] = {}
    stored = Counts()
    expected = Counts()
    delivered_in_epoch = Counts()
    for kind, value in events:
        if kind == "traffic":
            listener, bytes_in, bytes_out, connections = value
            counters[listener] = counters.get(listener, Counts()) + Counts(bytes_in, bytes_out, connections)
        elif kind == "report" and value:
            epoch = f"e{epoch_number}"
            deltas = advance(stored_epoch, cursors, epoch, counters)
            assert all(delta.covers(Counts()) for delta in deltas.values())
            for delta in deltas.values():
                stored += delta
            cursors = dict(counters) if stored_epoch != epoch else {**cursors, **counters}
            stored_epoch = epoch
            delivered_in_epoch = sum(counters.values(), Counts())
        elif kind == "restart":
            expected += delivered_in_epoch
            delivered_in_epoch = Counts()
            epoch_number += 1
            counters = {}
    expected += delivered_in_epoch
    assert stored == expected


@pytest.mark.parametrize(
    ("stored", "epoch", "sequence", "stale"),
    [
        (None, "e1", 0, False),  # the PoP's first report
        (("e1", 10), "e1", 11, False),
        (("e1", 10), "e1", 10, True),  # the same report again
        (("e1", 10), "e1", 9, True),  # sent before the stored one
        (("e1", 10), "e2", 1, False),  # another epoch: sequences start again
    ],
)
def test_a_report_older_than_the_stored_one_is_stale(
    stored: tuple[str, int] | None, epoch: str, sequence: int, stale: bool
) -> None:
    assert is_stale(stored, epoch, sequence) is stale


def test_buckets_start_on_whole_minutes() -> None:
    assert bucket_start(T0 + timedelta(seconds=59.9)) == T0
    assert bucket_start(T0 + timedelta(seconds=60)) == T0 + timedelta(seconds=60)


def test_a_window_rounds_out_to_whole_buckets() -> None:
    found = window(T0 + timedelta(seconds=10), T0 + timedelta(seconds=130), 60)
    assert (found.since, found.until, found.step) == (T0, T0 + timedelta(seconds=180), 60)


@pytest.mark.parametrize(
    ("since", "until", "step", "message"),
    [
        (T0, T0 + timedelta(hours=1), 90, "multiple of 60s"),
        (T0, T0 + timedelta(hours=1), 30, "multiple of 60s"),
        (T0, T0, 60, "must be after since"),
        (T0, T0 + timedelta(days=30), 60, "at most 10000"),
    ],
)
def test_windows_the_store_cannot_answer_are_refused(
    since: datetime, until: datetime, step: int, message: str
) -> None:
    with pytest.raises(WindowError, match=message):
        window(since, until, step)


def test_buckets_are_summed_into_steps_from_since() -> None:
    found = window(T0, T0 + timedelta(hours=2), 3600)
    buckets = [
        (T0, Counts(1, 1, 1)),
        (T0 + timedelta(minutes=59), Counts(2, 2, 2)),
        (T0 + timedelta(minutes=60), Counts(4, 4, 4)),
        (T0 + timedelta(minutes=120), Counts(8, 8, 8)),  # until is exclusive
        (T0 - timedelta(minutes=1), Counts(16, 16, 16)),
    ]
    assert into_steps(found, buckets) == {T0: Counts(3, 3, 3), T0 + timedelta(hours=1): Counts(4, 4, 4)}


@given(
    st.lists(st.tuples(st.integers(0, 24 * 60 - 1), st.integers(0, 10**9)), max_size=50),
    st.sampled_from([1, 5, 15, 60, 1440]),
)
def test_steps_keep_every_byte_of_the_window(buckets: list[tuple[int, int]], step_minutes: int) -> None:
    found = window(T0, T0 + timedelta(days=1), step_minutes * RESOLUTION)
    rows = [(T0 + timedelta(minutes=minute), Counts(amount, 0, 0)) for minute, amount in buckets]
    steps = into_steps(found, rows)
    assert sum(counts.bytes_in for counts in steps.values()) == sum(amount for _, amount in buckets)
    assert all((start - T0).total_seconds() % (step_minutes * 60) == 0 for start in steps)
