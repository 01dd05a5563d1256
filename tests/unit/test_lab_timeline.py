"""Failover arithmetic: when the route and the traffic moved, what failed, who answered."""

from anycastlb.lab.timeline import (
    Attempt,
    RouteChange,
    measure_movement,
    open_across,
    parse_answer,
    switched_to,
)


def _ok(started: float, pop: str, duration: float = 0.001) -> Attempt:
    return Attempt(started, started + duration, "10.10.0.2", "node1", pop, "10.10.0.2")


def _failed(
    started: float, duration: float = 0.001, error: str = "ConnectionRefusedError: refused"
) -> Attempt:
    return Attempt(started, started + duration, "10.10.0.3", error=error)


def _away_from_fra(pop: str) -> bool:
    return pop != "fra"


def test_a_clean_move_is_timed_from_the_fault_by_route_and_by_traffic() -> None:
    attempts = [_ok(9.0, "fra"), _ok(10.001, "fra"), _ok(10.02, "par"), _ok(10.05, "par")]
    routes = [RouteChange(5.0, "fra"), RouteChange(10.015, "par")]
    moved = measure_movement(attempts, routes, since=10.0, until=20.0, arrived=_away_from_fra)
    assert moved.route_after is not None and abs(moved.route_after - 0.015) < 1e-9
    assert moved.traffic_after is not None and abs(moved.traffic_after - 0.02) < 1e-9
    assert (moved.attempts, moved.failed, moved.answered_by) == (3, (), {"fra": 1, "par": 2})


def test_a_request_in_flight_at_the_fault_counts_and_so_do_refused_ones() -> None:
    in_flight = _failed(9.999, duration=0.01, error="ConnectionResetError: reset")
    attempts = [in_flight, _failed(10.002), _failed(10.004), _ok(10.03, "par")]
    moved = measure_movement(attempts, [], since=10.0, until=20.0, arrived=_away_from_fra)
    assert len(moved.failed) == 3
    assert moved.errors == {"ConnectionResetError": 1, "ConnectionRefusedError": 2}
    assert moved.route_after is None  # the watcher saw no change: reported as never


def test_traffic_has_moved_only_once_it_stays_moved() -> None:
    attempts = [_ok(10.01, "par"), _ok(10.02, "fra"), _ok(10.03, "par"), _ok(10.04, "par")]
    moved = measure_movement(attempts, [], since=10.0, until=20.0, arrived=_away_from_fra)
    assert moved.traffic_after is not None and abs(moved.traffic_after - 0.03) < 1e-9


def test_traffic_that_never_moves_is_none() -> None:
    moved = measure_movement([_ok(10.5, "fra")], [], since=10.0, until=20.0, arrived=_away_from_fra)
    assert moved.traffic_after is None


def test_the_window_ends_where_the_return_starts() -> None:
    attempts = [_ok(10.1, "par"), _ok(15.1, "fra")]
    routes = [RouteChange(10.05, "par"), RouteChange(15.05, "fra")]
    moved = measure_movement(attempts, routes, 10.0, 15.0, _away_from_fra)
    back = measure_movement(attempts, routes, 15.0, 20.0, lambda pop: pop == "fra")
    assert (moved.answered_by, back.answered_by) == ({"par": 1}, {"fra": 1})
    assert back.route_after is not None and abs(back.route_after - 0.05) < 1e-9


def test_a_request_spanning_two_windows_counts_once_in_the_first() -> None:
    slow = _failed(14.5, duration=1.0, error="ConnectionResetError: reset")
    moved = measure_movement([slow], [], 10.0, 15.0, _away_from_fra)
    back = measure_movement([slow], [], 15.0, 20.0, lambda pop: pop == "fra", in_flight=False)
    assert (len(moved.failed), len(back.failed)) == (1, 0)


def test_answers_and_attempts_round_trip() -> None:
    assert parse_answer("node=node2 client=10.10.0.7 via=10.30.0.11\n") == {
        "node": "node2",
        "client": "10.10.0.7",
        "via": "10.30.0.11",
    }
    attempt = _failed(1.5)
    assert Attempt.from_json(attempt.to_json()) == attempt


def test_a_connection_open_while_the_route_changed_is_told_apart_from_the_rest() -> None:
    routes = [RouteChange(0.0, "fra"), RouteChange(10.004, "par", since=10.002)]
    change = switched_to(routes, "par")
    assert change is not None and change.at == 10.004
    straddling = Attempt(started=10.0005, ended=10.003, source="10.10.0.2")  # ended inside the sample gap
    before = Attempt(started=9.990, ended=10.001, source="10.10.0.3")
    after = Attempt(started=10.005, ended=10.006, source="10.10.0.4")
    assert open_across([straddling, before, after], change) == [straddling]
    assert switched_to(routes, "ber") is None


def test_traffic_that_moved_right_after_a_timed_out_request_waited_on_the_client_timeout() -> None:
    hung = _failed(9.999, duration=2.0, error="TimeoutError: timed out")
    attempts = [_ok(9.9, "fra"), hung, _ok(12.0, "par"), _ok(12.01, "par")]
    routes = [RouteChange(5.0, "fra"), RouteChange(10.233, "par")]
    moved = measure_movement(attempts, routes, since=10.0, until=20.0, arrived=_away_from_fra)
    assert moved.traffic_after is not None and abs(moved.traffic_after - 2.0) < 1e-9
    assert moved.answered_after is not None and abs(moved.answered_after - 2.001) < 1e-9
    assert moved.route_after is not None and abs(moved.route_after - 0.233) < 1e-9
    assert moved.client_wait == "timeout"


def test_a_request_in_flight_when_the_route_moved_is_answered_on_the_syn_retry() -> None:
    retried = _ok(10.01, "par", duration=1.002)  # its first SYN went to the silent PoP
    routes = [RouteChange(5.0, "fra"), RouteChange(10.285, "par")]
    moved = measure_movement([_ok(9.9, "fra"), retried], routes, 10.0, 20.0, _away_from_fra)
    assert moved.traffic_after is not None and abs(moved.traffic_after - 0.01) < 1e-9  # it started early...
    assert moved.answered_after is not None and abs(moved.answered_after - 1.012) < 1e-9  # ...but waited
    assert moved.client_wait == "retry"


def test_traffic_that_moved_after_a_refused_request_did_not_wait_on_the_client() -> None:
    attempts = [_ok(9.9, "fra"), _failed(10.001), _ok(10.02, "par")]
    routes = [RouteChange(5.0, "fra"), RouteChange(10.015, "par")]
    moved = measure_movement(attempts, routes, since=10.0, until=20.0, arrived=_away_from_fra)
    assert moved.answered_after is not None and moved.client_wait is None


def test_a_quick_request_that_started_just_before_the_route_was_sampled_did_not_wait() -> None:
    attempts = [_ok(9.9, "fra"), _ok(10.004, "par", duration=0.002)]
    routes = [RouteChange(5.0, "fra"), RouteChange(10.005, "par", since=10.003)]
    moved = measure_movement(attempts, routes, 10.0, 20.0, _away_from_fra)
    assert moved.client_wait is None
