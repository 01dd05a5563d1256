"""The rise/fall machine of one backend, at zero wall time: verdicts, passive ejection, weight, scheduling.

Every test passes ``now`` explicitly and seeds the jitter, so the rules in the module docstring of
``anycastlb.health.state`` are checked exactly, including a simulated hang driven by a small
discrete-event loop.
"""

import heapq
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycastlb.health.result import ProbeResult
from anycastlb.health.state import LATE_FLOOR, BackendHealth, Change, CheckPolicy

OK = ProbeResult(ok=True, reason="HTTP 200", latency=0.002)
FAIL = ProbeResult(ok=False, reason="HTTP 503", latency=0.002)
EWMA_GAIN = 1 / 8


def _backend(
    rise: int = 2,
    fall: int = 2,
    initial_up: bool = True,
    passive_fall: int = 1,
    *,
    interval: float = 0.5,
    timeout: float = 0.25,
    weight: int = 100,
    now: float = 0.0,
    seed: int = 1,
) -> BackendHealth:
    policy = CheckPolicy(interval, timeout, rise, fall, passive_fall, initial_up)
    return BackendHealth(policy, weight, now, random.Random(seed))


def _probe(health: BackendHealth, result: ProbeResult, now: float = 0.0) -> Change | None:
    """One probe started at ``now`` that answers ``result`` after its latency."""
    token = health.probe_started(now)
    return health.probe_finished(token, result, now + result.latency)


def _run(health: BackendHealth, probes: str, start: float = 0.0) -> list[Change | None]:
    """Probes one after the other, one interval apart: ``s`` succeeds, ``f`` fails."""
    interval = health.policy.interval
    return [_probe(health, OK if p == "s" else FAIL, start + i * interval) for i, p in enumerate(probes)]


def _steps(health: BackendHealth, probes: str, start: float = 0.0) -> list[tuple[bool, Change | None]]:
    """Like :func:`_run`, with the state after each probe: (up, change)."""
    steps = []
    for i, p in enumerate(probes):
        change = _probe(health, OK if p == "s" else FAIL, start + i * health.policy.interval)
        steps.append((health.up, change))
    return steps


def _prove_down(health: BackendHealth, now: float = 0.0) -> None:
    """Make a backend proven and down, whatever its initial state."""
    _probe(health, FAIL, now)
    assert not health.up
    assert health.proven


def _in_a_row(reason: str, count: int) -> str:
    return reason if count == 1 else f"{reason} ({count} in a row)"


def _expected(probes: str, rise: int, fall: int, initial_up: bool) -> list[tuple[bool, Change | None]]:
    """The rules of the module docstring, written independently: (up, change) after each probe."""
    up, proven, run = initial_up, False, 0
    steps: list[tuple[bool, Change | None]] = []
    for p in probes:
        ok = p == "s"
        result = OK if ok else FAIL
        change = None
        if not proven:  # the first probe decides on its own
            proven, run = True, 0
            if ok != up:
                up, change = ok, Change("up" if ok else "down", result.reason, 100)
        elif ok == up:  # evidence for the current state breaks a run against it
            run = 0
        else:
            run += 1
            needed = fall if up else rise
            if run == needed:
                up, run = ok, 0
                change = Change("up" if ok else "down", _in_a_row(result.reason, needed), 100)
        steps.append((up, change))
    return steps


# ---- verdicts of probe sequences ---------------------------------------------------------------


class Case(NamedTuple):
    """``states``: ``u``/``d`` after each probe, upper case where that probe changed the state."""

    rise: int
    fall: int
    initial_up: bool
    probes: str
    states: str
    reasons: tuple[str, ...] = ()


UP, DOWN = True, False
CASES = [
    Case(2, 2, UP, "s", "u"),
    Case(2, 2, UP, "f", "D", ("HTTP 503",)),
    Case(2, 2, DOWN, "s", "U", ("HTTP 200",)),
    Case(2, 2, DOWN, "f", "d"),
    Case(5, 2, DOWN, "s", "U", ("HTTP 200",)),
    Case(2, 5, UP, "f", "D", ("HTTP 503",)),
    Case(2, 2, UP, "sff", "uuD", ("HTTP 503 (2 in a row)",)),
    Case(2, 2, UP, "sfsfsf", "uuuuuu"),
    Case(2, 2, UP, "sffss", "uuDdU", ("HTTP 503 (2 in a row)", "HTTP 200 (2 in a row)")),
    Case(2, 2, UP, "fsfss", "DdddU", ("HTTP 503", "HTTP 200 (2 in a row)")),
    Case(2, 2, DOWN, "sff", "UuD", ("HTTP 200", "HTTP 503 (2 in a row)")),
    Case(2, 2, DOWN, "fss", "ddU", ("HTTP 200 (2 in a row)",)),
    Case(2, 2, UP, "ssssffff", "uuuuuDdd", ("HTTP 503 (2 in a row)",)),
    Case(1, 1, UP, "sfsf", "uDUD", ("HTTP 503", "HTTP 200", "HTTP 503")),
    Case(1, 1, DOWN, "fsfs", "dUDU", ("HTTP 200", "HTTP 503", "HTTP 200")),
    Case(3, 3, UP, "sffsfff", "uuuuuuD", ("HTTP 503 (3 in a row)",)),
    Case(3, 3, UP, "fssfsss", "DdddddU", ("HTTP 503", "HTTP 200 (3 in a row)")),
    Case(3, 1, UP, "sfsssf", "uDddUD", ("HTTP 503", "HTTP 200 (3 in a row)", "HTTP 503")),
    Case(1, 3, DOWN, "ffsfffs", "ddUuuDU", ("HTTP 200", "HTTP 503 (3 in a row)", "HTTP 200")),
    Case(2, 3, DOWN, "ssfsss", "Uuuuuu", ("HTTP 200",)),
    Case(4, 2, UP, "sffssssff", "uuDdddUuD",
         ("HTTP 503 (2 in a row)", "HTTP 200 (4 in a row)", "HTTP 503 (2 in a row)")),
]  # fmt: skip


def _case_id(case: Case) -> str:
    return f"{'up' if case.initial_up else 'down'}-rise{case.rise}-fall{case.fall}-{case.probes}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_each_probe_leaves_the_state_and_changes_of_the_table(case: Case) -> None:
    health = _backend(case.rise, case.fall, case.initial_up)
    states: list[str] = []
    reasons: list[str] = []

    for up, change in _steps(health, case.probes):
        states.append("u" if up else "d")
        if change is not None:
            assert change.kind == ("up" if up else "down")
            states[-1] = states[-1].upper()
            reasons.append(change.reason)

    assert "".join(states) == case.states
    assert tuple(reasons) == case.reasons


def test_every_sequence_of_eight_probes_follows_the_rules() -> None:
    for rise, fall, initial_up in itertools.product(range(1, 5), range(1, 5), (True, False)):
        for sequence in itertools.product("sf", repeat=8):
            probes = "".join(sequence)
            actual = _steps(_backend(rise, fall, initial_up), probes)
            assert actual == _expected(probes, rise, fall, initial_up), (rise, fall, initial_up, probes)


def test_the_first_probe_decides_against_the_initial_state_whatever_rise_and_fall() -> None:
    for threshold in range(1, 6):
        starts_up = _backend(rise=threshold, fall=threshold, initial_up=True)
        assert _probe(starts_up, FAIL) == Change("down", "HTTP 503", 100)
        starts_down = _backend(rise=threshold, fall=threshold, initial_up=False)
        assert _probe(starts_down, OK) == Change("up", "HTTP 200", 100)


def test_after_the_first_probe_rise_and_fall_apply() -> None:
    confirmed_up = _backend(rise=3, fall=3, initial_up=True)
    assert _run(confirmed_up, "sff") == [None, None, None]
    assert confirmed_up.up
    confirmed_down = _backend(rise=3, fall=3, initial_up=False)
    assert _run(confirmed_down, "fss") == [None, None, None]
    assert not confirmed_down.up


probe_sequences = st.lists(st.booleans(), max_size=60)
thresholds = st.integers(min_value=1, max_value=5)


@settings(max_examples=300, deadline=None)
@given(results=probe_sequences, rise=thresholds, fall=thresholds, initial_up=st.booleans())
def test_no_transition_happens_without_rise_or_fall_results_in_a_row_since_the_last(
    results: list[bool], rise: int, fall: int, initial_up: bool
) -> None:
    health = _backend(rise, fall, initial_up)
    changes = [_probe(health, OK if ok else FAIL, float(i)) for i, ok in enumerate(results)]

    previous = -1
    for step, change in enumerate(changes):
        if change is None:
            continue
        if step == 0:  # the unproven first verdict
            previous = 0
            continue
        needed = rise if change.kind == "up" else fall
        assert step - needed >= previous, "the run overlaps the previous transition"
        assert results[step - needed + 1 : step + 1] == [change.kind == "up"] * needed
        previous = step
    transitions = sum(c is not None for c in changes)
    assert transitions <= 1 + len(results) // min(rise, fall)


@settings(max_examples=200, deadline=None)
@given(
    results=probe_sequences,
    rise=thresholds,
    fall=thresholds,
    initial_up=st.booleans(),
    seeds=st.tuples(st.integers(0, 2**32), st.integers(0, 2**32)),
    start=st.floats(min_value=0, max_value=1e6),
)
def test_the_state_is_a_function_of_the_results_alone(
    results: list[bool], rise: int, fall: int, initial_up: bool, seeds: tuple[int, int], start: float
) -> None:
    probes = "".join("s" if ok else "f" for ok in results)
    runs = []
    for seed, t0 in ((seeds[0], 0.0), (seeds[1], start)):
        health = _backend(rise, fall, initial_up, seed=seed, now=t0)
        runs.append(_steps(health, probes, start=t0))

    assert runs[0] == runs[1] == _expected(probes, rise, fall, initial_up)


# ---- passive failures --------------------------------------------------------------------------


def test_one_failed_client_connect_ejects_at_once_with_passive_fall_1() -> None:
    health = _backend(fall=3, passive_fall=1)
    _probe(health, OK)

    assert health.passive_failure("refused") == Change("down", "client connect refused", 100)
    assert not health.up
    assert health.reason == "client connect refused"


def test_passive_fall_3_needs_three_failed_connects_without_a_successful_probe_between() -> None:
    health = _backend(fall=5, passive_fall=3)
    _probe(health, OK)

    assert health.passive_failure("refused") is None
    assert health.passive_failure("refused") is None
    _probe(health, OK, 1.0)  # resets the count
    assert health.passive_failure("refused") is None
    _probe(health, FAIL, 2.0)  # a failed probe does not
    assert health.passive_failure("refused") is None
    assert health.up

    assert health.passive_failure("refused") == Change("down", "client connect refused (3 in a row)", 100)
    assert not health.up


def test_passive_fall_0_never_ejects() -> None:
    health = _backend(passive_fall=0)
    _probe(health, OK)

    assert all(health.passive_failure("refused") is None for _ in range(100))
    assert health.up
    assert health.passive_failures == 0


def test_a_failed_client_connect_while_down_resets_the_rise_count() -> None:
    health = _backend(rise=3)
    _prove_down(health)
    assert _run(health, "ss", start=1.0) == [None, None]

    assert health.passive_failure("refused") is None
    assert _run(health, "ss", start=3.0) == [None, None]
    assert not health.up

    assert _probe(health, OK, 5.0) == Change("up", "HTTP 200 (3 in a row)", 100)


def test_a_failed_client_connect_while_down_changes_nothing_else() -> None:
    health = _backend(passive_fall=1)
    _prove_down(health)

    assert health.passive_failure("refused") is None
    assert not health.up
    assert health.reason == "HTTP 503"


# ---- weight ------------------------------------------------------------------------------------


def _k8s(endpoints: int) -> ProbeResult:
    return ProbeResult(True, f"HTTP 200, {endpoints} local endpoints", 0.002, weight=endpoints)


def test_a_new_weight_while_up_is_a_weight_change() -> None:
    health = _backend(weight=1)

    assert _probe(health, _k8s(4)) == Change("weight", "HTTP 200, 4 local endpoints", 4)
    assert health.weight == 4


def test_an_unchanged_or_absent_weight_is_no_change() -> None:
    health = _backend(weight=4)

    assert _probe(health, _k8s(4)) is None
    assert _probe(health, OK, 1.0) is None
    assert health.weight == 4


def test_the_up_change_carries_the_weight_learnt_while_down() -> None:
    health = _backend(rise=2, weight=1)
    _prove_down(health)

    assert _probe(health, _k8s(3), 1.0) is None
    assert _probe(health, _k8s(5), 2.0) == Change("up", "HTTP 200, 5 local endpoints (2 in a row)", 5)
    assert health.weight == 5


def test_the_down_change_carries_the_current_weight() -> None:
    health = _backend(fall=1, weight=1)
    _probe(health, _k8s(7))

    assert _probe(health, FAIL, 1.0) == Change("down", "HTTP 503", 7)


# ---- scheduling --------------------------------------------------------------------------------


def test_the_first_probe_is_due_within_one_interval_and_backends_spread_out() -> None:
    firsts = [_backend(interval=0.5, now=100.0, seed=seed).next_probe_at() for seed in range(300)]

    assert all(100.0 <= t < 100.5 for t in firsts)
    assert min(firsts) < 100.05
    assert max(firsts) > 100.45


def test_regular_probes_start_every_interval_times_a_jitter_in_0_9_to_1() -> None:
    health = _backend(interval=0.5, seed=7)
    ratios = []
    start = 0.0
    for _ in range(500):
        _probe(health, OK, start)
        due = health.next_probe_at()
        ratios.append((due - start) / 0.5)
        start = due

    assert all(0.9 <= r < 1.0 for r in ratios)
    assert min(ratios) < 0.905
    assert max(ratios) > 0.995


def test_a_failed_probe_while_up_makes_the_next_probe_due_at_once() -> None:
    health = _backend(fall=3)
    _probe(health, OK, 0.0)

    token = health.probe_started(1.0)
    health.probe_finished(token, FAIL, 1.2)

    assert health.next_probe_at() == 1.2
    token = health.probe_started(1.2)
    health.probe_finished(token, FAIL, 1.3)
    assert health.next_probe_at() == 1.3


def test_a_failed_probe_while_down_waits_for_the_next_regular_probe() -> None:
    health = _backend(interval=0.5)
    _prove_down(health)

    token = health.probe_started(5.0)
    health.probe_finished(token, FAIL, 5.1)

    assert 5.0 + 0.45 <= health.next_probe_at() < 5.0 + 0.5


def test_an_ejection_cancels_the_immediate_recheck() -> None:
    health = _backend(fall=3, passive_fall=1, interval=0.5)
    _probe(health, OK)
    token = health.probe_started(1.0)
    health.probe_finished(token, FAIL, 1.1)

    health.passive_failure("refused")

    assert 1.45 <= health.next_probe_at() < 1.5


def test_an_unanswered_probe_while_up_makes_the_next_due_after_late_after() -> None:
    health = _backend(timeout=0.25)
    _probe(health, ProbeResult(True, "connected", 0.02))

    health.probe_started(3.0)

    assert health.late_after() == pytest.approx(0.08)
    assert health.next_probe_at() == 3.0 + health.late_after()


def test_late_after_is_half_the_timeout_before_any_latency_sample() -> None:
    health = _backend(timeout=0.25)
    assert health.late_after() == 0.125

    _probe(health, ProbeResult(False, "timeout after 250 ms", 0.25))
    assert health.late_after() == 0.125


def test_failed_probes_teach_no_latency() -> None:
    health = _backend(fall=3, timeout=0.25)
    _probe(health, ProbeResult(True, "connected", 0.02))

    _probe(health, ProbeResult(False, "connection refused", 0.001), 1.0)

    assert health.late_after() == pytest.approx(0.08)


def _smoothed(latencies: list[float]) -> float:
    smooth = latencies[0]
    for latency in latencies[1:]:
        smooth += EWMA_GAIN * (latency - smooth)
    return smooth


@pytest.mark.parametrize(
    ("latencies", "late_after"),
    [
        ([0.02], 0.08),
        ([0.001], LATE_FLOOR),
        ([0.1], 0.2),
        ([0.02, 0.04], 4 * (0.02 + (0.04 - 0.02) / 8)),
        ([0.001] * 50 + [0.3], 4 * (0.001 + (0.3 - 0.001) / 8)),
    ],
)
def test_late_after_is_four_smoothed_latencies_clamped_to_10_ms_and_half_the_timeout(
    latencies: list[float], late_after: float
) -> None:
    health = _backend(interval=0.4, timeout=0.4)
    for i, latency in enumerate(latencies):
        _probe(health, ProbeResult(True, "connected", latency), float(i))

    assert health.late_after() == pytest.approx(late_after)


@given(latencies=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=30))
def test_late_after_follows_the_smoothed_latency_with_gain_one_eighth(latencies: list[float]) -> None:
    health = _backend(interval=1.0, timeout=0.5)
    for i, latency in enumerate(latencies):
        _probe(health, ProbeResult(True, "connected", latency), float(i))

    expected = min(0.25, max(LATE_FLOOR, 4 * _smoothed(latencies)))
    assert health.late_after() == pytest.approx(expected)


@pytest.mark.parametrize("fall", [1, 2, 3, 4])
def test_never_more_than_fall_probes_are_in_flight_while_up(fall: int) -> None:
    health = _backend(fall=fall)
    _probe(health, OK)
    starts = []

    while math.isfinite(due := health.next_probe_at()):
        health.probe_started(due)
        starts.append(due)

    assert health.in_flight == fall
    assert health.up
    late_after = health.late_after()
    assert [b - a for a, b in itertools.pairwise(starts)] == pytest.approx([late_after] * (fall - 1))


def test_while_down_a_probe_starts_only_when_none_is_in_flight() -> None:
    health = _backend(fall=3, interval=0.5)
    _prove_down(health)

    token = health.probe_started(1.0)
    assert health.next_probe_at() == math.inf
    health.probe_finished(token, OK, 1.3)

    assert 1.45 <= health.next_probe_at() < 1.5


def test_probes_in_flight_at_an_ejection_are_forgotten_and_cannot_count_toward_rise() -> None:
    health = _backend(fall=2, rise=1, passive_fall=1)
    _probe(health, OK)
    first = health.probe_started(1.0)
    second = health.probe_started(1.0 + health.late_after())

    health.passive_failure("refused")

    assert health.in_flight == 0
    assert health.next_probe_at() < math.inf  # the regular schedule goes on while down
    assert health.probe_finished(first, OK, 1.2) is None  # answered from before the ejection
    assert health.probe_finished(second, OK, 1.2) is None
    assert not health.up


# ---- a hung node -------------------------------------------------------------------------------

HANG_POLICY = CheckPolicy(interval=0.1, timeout=0.1, rise=2, fall=2, passive_fall=1)
HEALTHY_LATENCY = 0.0003
EJECTION_BOUND = HANG_POLICY.timeout + LATE_FLOOR + HANG_POLICY.interval  # 4 * 0.3 ms is below the floor


@dataclass
class HangRun:
    down_at: float | None
    most_in_flight: int
    failed_probes: int


def _answer(start: float, hang_at: float, token: int) -> tuple[float, int, ProbeResult]:
    """The node answers in 0.3 ms until ``hang_at``; from then on every probe times out."""
    if start + HEALTHY_LATENCY <= hang_at:
        return start + HEALTHY_LATENCY, token, ProbeResult(True, "connected", HEALTHY_LATENCY)
    return start + HANG_POLICY.timeout, token, ProbeResult(False, "timeout after 100 ms", HANG_POLICY.timeout)


def _simulate(hang_at: float, seed: int, until: float) -> HangRun:
    """A discrete-event driver: answers are delivered at their times, probes start when due."""
    health = BackendHealth(HANG_POLICY, 1, 0.0, random.Random(seed))
    answers: list[tuple[float, int, ProbeResult]] = []
    most_in_flight = failed = 0
    for _ in range(1_000_000):
        start_at = health.next_probe_at()
        answer_at = answers[0][0] if answers else math.inf
        now = min(start_at, answer_at)
        if now > until:
            return HangRun(None, most_in_flight, failed)
        if answer_at <= start_at:  # answers first: a failure may make the next probe due now
            _, token, result = heapq.heappop(answers)
            failed += not result.ok
            change = health.probe_finished(token, result, now)
            if change is not None and change.kind == "down":
                return HangRun(now, most_in_flight, failed)
        else:
            heapq.heappush(answers, _answer(now, hang_at, health.probe_started(now)))
            most_in_flight = max(most_in_flight, health.in_flight)
    raise AssertionError("the simulation did not advance")


def _assert_ejected_in_time(hang_at: float, seed: int) -> None:
    run = _simulate(hang_at, seed, until=hang_at + 1.0)
    assert run.down_at is not None, f"a hang at {hang_at} was never ejected"
    assert hang_at < run.down_at <= hang_at + EJECTION_BOUND + 1e-9, (hang_at, run.down_at)
    assert run.most_in_flight <= HANG_POLICY.fall


def test_a_hung_node_is_ejected_within_timeout_plus_late_after_plus_interval() -> None:
    for offset in range(100):  # one interval, in 1 ms steps, after the node has proven itself
        _assert_ejected_in_time(hang_at=2.0 + offset * 0.001, seed=offset)


@settings(max_examples=300, deadline=None)
@given(hang_at=st.floats(min_value=0.0, max_value=5.0), seed=st.integers(0, 2**32))
def test_a_hang_at_any_time_is_ejected_within_timeout_plus_late_after_plus_interval(
    hang_at: float, seed: int
) -> None:
    _assert_ejected_in_time(hang_at, seed)


@pytest.mark.parametrize("seed", range(5))
def test_a_healthy_node_never_fails_a_probe_and_never_goes_down(seed: int) -> None:
    run = _simulate(hang_at=math.inf, seed=seed, until=60.0)

    assert run.down_at is None
    assert run.failed_probes == 0
    assert run.most_in_flight == 1, "a 0.3 ms answer must never count as late"


# ---- tokens ------------------------------------------------------------------------------------


def test_an_unknown_token_is_ignored() -> None:
    health = _backend(fall=1)
    health.probe_started(0.0)

    assert health.probe_finished(12345, FAIL, 0.1) is None
    assert health.probe_finished(0, FAIL, 0.1) is None
    assert health.up
    assert health.in_flight == 1
    assert health.reason == "not checked yet"


def test_a_token_answered_twice_counts_once() -> None:
    health = _backend(fall=2)
    _probe(health, OK)
    token = health.probe_started(1.0)
    assert health.probe_finished(token, FAIL, 1.1) is None

    assert health.probe_finished(token, FAIL, 1.2) is None
    assert health.up
    assert health.failures == 1


# ---- policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"interval": 0.5, "timeout": 0.6}, "timeout 0.6 must be > 0 and <= interval 0.5"),
        ({"timeout": 0.0}, "timeout 0.0 must be > 0"),
        ({"timeout": -1.0}, "timeout -1.0 must be > 0"),
        ({"timeout": math.nan}, "timeout nan must be > 0"),
        ({"rise": 0}, "rise and fall must be >= 1"),
        ({"fall": 0}, "rise and fall must be >= 1"),
        ({"rise": -3}, "rise and fall must be >= 1"),
        ({"passive_fall": -1}, "passive_fall >= 0"),
    ],
)
def test_the_policy_rejects_impossible_timing_and_thresholds(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CheckPolicy(**fields)


def test_the_policy_accepts_its_limits() -> None:
    CheckPolicy()
    CheckPolicy(interval=0.25, timeout=0.25, rise=1, fall=1, passive_fall=0)
