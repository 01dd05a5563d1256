"""Counting a provider migration from what the clients saw (anycastlb.lab.migration_counts)."""

import pytest

from anycastlb.lab.migration_counts import Attempt, SessionLog, Step, render_counts, tally
from anycastlb.lab.migration_load import answer_fields, node_of

OLD = frozenset({"a1", "a2"})
DRAINED = 10.0


def session(*answers: tuple[float, str | None], closed: bool = True, error: str | None = None) -> SessionLog:
    return SessionLog("127.0.30.1", list(answers), closed_by_client=closed, error=error)


def clean_sessions() -> list[SessionLog]:
    return [session((1.0, "a1"), (11.0, "a1")), session((1.0, "a2"), (10.5, "a2"))]


def steady(count: int = 20) -> list[Attempt]:
    """Old nodes before the drain, new ones after, one attempt a second."""
    return [Attempt(i * 1.0, ("a1" if i % 2 else "a2") if i < DRAINED else "b1") for i in range(count)]


def test_a_migration_where_every_connection_worked_is_ok() -> None:
    counts = tally(steady(), clean_sessions(), [Step("join", 1.0, 1.5)], OLD, DRAINED)
    assert (counts.attempted, counts.failed, counts.old_nodes_after_drain) == (20, 0, 0)
    assert (counts.sessions, counts.sessions_clean, counts.session_requests) == (2, 2, 4)
    assert dict(counts.served_by) == {"a1": 5, "a2": 5, "b1": 10}
    assert counts.rate == pytest.approx(1.0)
    assert counts.steps[0].seconds == pytest.approx(0.5)
    assert counts.ok
    assert render_counts(counts)[-1] == "migration ok"


def test_one_failed_new_connection_fails_the_migration_and_is_named() -> None:
    attempts = [*steady(), Attempt(20.0, None, "ConnectionRefusedError: Connection refused")]
    counts = tally(attempts, clean_sessions(), [], OLD, DRAINED)
    assert counts.failed == 1 and not counts.ok
    assert counts.errors == (("ConnectionRefusedError: Connection refused", 1),)
    assert "  failure: 1 x ConnectionRefusedError: Connection refused" in render_counts(counts)


def test_a_new_connection_an_old_node_answered_after_the_drain_fails_it() -> None:
    counts = tally([*steady(), Attempt(DRAINED + 3, "a1")], clean_sessions(), [], OLD, DRAINED)
    assert counts.old_nodes_after_drain == 1 and counts.failed == 0 and not counts.ok


@pytest.mark.parametrize(
    ("log", "why"),
    [
        (session((1.0, "a1"), (11.0, "a1"), closed=False), "the client never closed it"),
        (session((1.0, "a1"), (11.0, "a1"), error="ConnectionResetError: reset"), "it was reset"),
        (session((1.0, "a1"), (11.0, None)), "a request got no answer"),
        (session((1.0, "a1"), (11.0, "b1")), "it moved to another node"),
        (session((1.0, "b1"), (11.0, "b1")), "it was never on an old node"),
        (session((1.0, "a1"), (9.0, "a1")), "it never answered after the node left the backends"),
        (session(), "it never answered at all"),
    ],
)
def test_a_long_lived_connection_is_clean_only_if_it_outlived_the_drain_on_its_node(
    log: SessionLog, why: str
) -> None:
    assert not log.clean(OLD, DRAINED), why
    counts = tally(steady(), [*clean_sessions(), log], [], OLD, DRAINED)
    assert counts.sessions_clean == 2 and counts.sessions == 3 and not counts.ok


def test_without_a_drain_time_no_session_is_clean_and_nothing_counts_as_late() -> None:
    counts = tally(steady(), clean_sessions(), [], OLD, None)
    assert counts.sessions_clean == 0 and counts.old_nodes_after_drain == 0 and not counts.ok


def test_no_load_or_no_long_lived_connection_is_not_a_success() -> None:
    assert not tally([], clean_sessions(), [], OLD, DRAINED).ok
    assert not tally(steady(), [], [], OLD, DRAINED).ok
    assert tally([Attempt(1.0, "b1")], [], [], OLD, DRAINED).rate == 0.0


@pytest.mark.parametrize(
    ("response", "node"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nnode=b2 client=127.0.30.4 via=10.61.0.1\n", "b2"),
        (b"HTTP/1.0 200 OK\r\n\r\nnode=a1 client=x\n", "a1"),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\nnode=a1\n", None),
        (b"HTTP/1.1 200 OK\r\n\r\nhello\n", None),
        (b"", None),
    ],
)
def test_the_answering_node_is_read_from_a_200_answer_only(response: bytes, node: str | None) -> None:
    assert node_of(response) == node


def test_an_answer_names_the_node_the_client_it_saw_and_the_pop_address_it_came_from() -> None:
    body = b"HTTP/1.1 200 OK\r\n\r\nnode=b2 client=127.0.30.4 via=100.64.0.1\n"
    assert answer_fields(body) == {"node": "b2", "client": "127.0.30.4", "via": "100.64.0.1"}
    assert answer_fields(b"HTTP/1.1 503 Unavailable\r\n\r\nnode=b2\n") == {}


def test_each_nodes_path_is_counted_once_and_printed() -> None:
    attempts = [Attempt(1.0, "a1", None, "10.51.0.1"), Attempt(2.0, "a1", None, "10.51.0.1")]
    attempts += [Attempt(3.0, "b1", None, "100.64.0.1"), Attempt(4.0, None, "refused")]
    counts = tally(attempts, clean_sessions(), [], OLD, DRAINED)
    assert counts.paths == (("a1", "10.51.0.1"), ("b1", "100.64.0.1"))
    assert "  the PoP as each node saw it: a1 via 10.51.0.1, b1 via 100.64.0.1" in render_counts(counts)
