"""The health board (shared memory across fork) and the messages on it."""

import os

import pytest

from anycastlb.wire.health_board import BoardFullError, HealthBoard
from anycastlb.wire.health_view import HealthView, ListenerHealth, PassiveReport


def _view() -> HealthView:
    return HealthView(
        published_at=12.5,
        reports_through=12.25,
        listeners={
            "web": ListenerHealth(serving=True, down=frozenset({"10.0.0.2:80"}), weights={"10.0.0.1:80": 4}),
            "empty": ListenerHealth(serving=False),
        },
    )


def test_a_view_survives_encoding() -> None:
    assert HealthView.decode(_view().encode()) == _view()


def test_transition_reasons_survive_encoding_and_a_view_without_them_stays_as_it_was() -> None:
    view = HealthView(
        published_at=1.0,
        reports_through=1.0,
        listeners={"web": ListenerHealth(serving=True, reasons={"10.0.0.2:80": "down: refused"})},
    )
    assert HealthView.decode(view.encode()) == view
    assert b"reasons" not in _view().encode()  # the workers' payload grows only by what changed


def test_a_passive_report_survives_encoding_and_garbage_is_refused() -> None:
    report = PassiveReport("web", "[2001:db8::1]:443", "refused")
    assert PassiveReport.decode(report.encode()) == report
    with pytest.raises(ValueError, match="3 fields"):
        PassiveReport.decode(b"web\x00only-two")


def test_an_empty_board_has_nothing_to_read() -> None:
    board = HealthBoard(4096)
    assert board.generation() == 0
    assert board.read() is None


def test_each_publication_is_read_whole_with_a_new_even_generation() -> None:
    board = HealthBoard(4096)
    first = board.publish(b"one")
    second = board.publish(b"two, longer")
    assert (first % 2, second % 2) == (0, 0)
    assert second > first
    assert board.read() == (second, b"two, longer")


def test_a_write_in_progress_or_a_torn_payload_is_not_read() -> None:
    board = HealthBoard(4096)
    board.publish(b"complete")
    board._map[0:8] = (board.generation() + 1).to_bytes(8, "little")  # odd: writer mid-way
    assert board.read() is None
    board._map[0:8] = (board.generation() + 1).to_bytes(8, "little")  # even again
    board._map[16:17] = b"X"  # payload not matching its CRC
    assert board.read() is None


def test_a_view_too_big_for_the_board_is_refused_with_its_size() -> None:
    board = HealthBoard(64)
    with pytest.raises(BoardFullError, match="100 bytes exceeds"):
        board.publish(b"x" * 100)


def test_a_forked_child_sees_what_the_parent_publishes_later() -> None:
    board = HealthBoard(4096)
    ready_read, ready_write = os.pipe()
    done_read, done_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child waits for the parent's publication, then reports what it read
        os.read(ready_read, 1)
        snapshot = board.read()
        os.write(done_write, snapshot[1] if snapshot else b"nothing")
        os._exit(0)
    board.publish(b"after fork")
    os.write(ready_write, b"!")
    assert os.read(done_read, 100) == b"after fork"
    os.waitpid(pid, 0)
