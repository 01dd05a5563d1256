"""The controller's readiness rule and the de-duplication of a failure that repeats (pure)."""

import pytest

from anycastlb.k8s.probes import Readiness, readiness
from anycastlb.k8s.repeats import Recovery, RepeatedFailure

READINESS = [
    # (case, leading, lease answered, caches synced, answer)
    ("starting: the Lease not read yet", False, False, False, Readiness(False, "waiting for the Lease")),
    ("a standby that can read the Lease can take over", False, True, False, Readiness(True, "standby")),
    (
        "the leader before its caches hold the lists",
        True,
        True,
        False,
        Readiness(False, "leading, caches syncing"),
    ),
    ("the leader with synced caches", True, True, True, Readiness(True, "leading, caches synced")),
    (
        "the leader that just failed a renewal keeps its caches",
        True,
        False,
        True,
        Readiness(True, "leading, caches synced"),
    ),
]


@pytest.mark.parametrize(
    ("leading", "answered", "synced", "expected"), [c[1:] for c in READINESS], ids=[c[0] for c in READINESS]
)
def test_readiness(leading: bool, answered: bool, synced: bool, expected: Readiness) -> None:
    assert readiness(leading=leading, lease_answered=answered, synced=synced) == expected


def test_the_first_failure_is_logged_and_its_repeats_are_not() -> None:
    repeats = RepeatedFailure(every=60)
    assert repeats.failed("connection refused", 0.0) == 0
    assert [repeats.failed("connection refused", t) for t in (2.0, 4.0, 58.0)] == [None, None, None]


def test_a_failure_that_goes_on_is_logged_once_per_interval_with_the_repeats_counted() -> None:
    repeats = RepeatedFailure(every=60)
    repeats.failed("connection refused", 0.0)
    for t in range(2, 60, 2):
        assert repeats.failed("connection refused", float(t)) is None
    assert repeats.failed("connection refused", 60.0) == 29
    assert repeats.failed("connection refused", 62.0) is None
    assert repeats.failed("connection refused", 120.0) == 1


def test_a_changed_cause_is_logged_at_once() -> None:
    repeats = RepeatedFailure(every=60)
    repeats.failed("connection refused", 0.0)
    repeats.failed("connection refused", 2.0)
    assert repeats.failed("403 Forbidden", 4.0) == 0
    assert repeats.failed("403 Forbidden", 6.0) is None
    assert repeats.failed("connection refused", 8.0) == 0


def test_a_recovery_is_reported_once_with_the_failures_it_ends() -> None:
    repeats = RepeatedFailure(every=60)
    assert repeats.succeeded(0.0) is None  # nothing failed: nothing to say
    for t in (10.0, 12.0, 14.0):
        repeats.failed("connection refused", t)
    assert repeats.succeeded(16.0) == Recovery(failures=3, seconds=6.0, cause="connection refused")
    assert repeats.succeeded(18.0) is None
    assert repeats.failed("connection refused", 20.0) == 0  # a new run starts with a logged line
