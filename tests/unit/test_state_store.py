"""The edge's state on disk: written atomically, promoted only by the supervisor, and a corrupt
file is logged with its path and ignored instead of crashing the edge."""

import json
import logging
import os
from pathlib import Path

import pytest

from anycastlb.edge.state_store import LAST_KNOWN_GOOD, PENDING, StateStore, write_atomic
from anycastlb.model.desired import PopDesiredState


def state(version: int) -> PopDesiredState:
    return PopDesiredState(pop="fra", version=version)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "edge-fra")
    store.prepare()
    return store


def test_an_empty_directory_has_no_state(store: StateStore) -> None:
    assert (store.pending(), store.last_known_good(), store.rejected()) == (None, None, None)


def test_a_pending_state_is_not_last_known_good_until_promoted(store: StateStore) -> None:
    store.write_pending(state(3))

    pending = store.pending()
    assert pending is not None and pending.state == state(3)
    assert store.last_known_good() is None

    store.promote(state(3))

    saved = store.last_known_good()
    assert saved is not None and saved.state.version == 3
    assert saved.saved_at.tzinfo is not None


def test_promoting_a_version_ends_the_rejections_of_it_and_older_ones(store: StateStore) -> None:
    store.reject(4, "listener x: cannot listen")
    store.promote(state(3))
    rejected = store.rejected()
    assert rejected is not None and (rejected.version, rejected.error) == (4, "listener x: cannot listen")

    store.promote(state(5))

    assert store.rejected() is None


def test_a_rewritten_file_is_read_again(store: StateStore) -> None:
    store.promote(state(1))
    assert store.last_known_good() is not None

    store.promote(state(2))

    saved = store.last_known_good()
    assert saved is not None and saved.state.version == 2


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"saved_at": "yesterday", "state": {"pop": "fra", "version": 1}}',
        b'{"state": {}}',
    ],
    ids=["not-json", "a-list", "bad-time", "bad-state"],
)
def test_a_corrupt_file_is_logged_with_its_path_once_and_ignored(
    store: StateStore, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = store.path(LAST_KNOWN_GOOD)
    path.write_bytes(content)

    with caplog.at_level(logging.ERROR):
        assert store.last_known_good() is None
        assert store.last_known_good() is None

    errors = [record.getMessage() for record in caplog.records if "state_file_corrupt" in record.getMessage()]
    assert len(errors) == 1
    assert str(path) in errors[0]


def test_writes_replace_the_file_whole_and_leave_no_temporary_behind(store: StateStore) -> None:
    store.write_pending(state(1))
    store.write_pending(state(2))

    assert sorted(os.listdir(store.directory)) == [PENDING]
    assert json.loads(store.path(PENDING).read_text())["state"]["version"] == 2


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    target.write_text("old")

    with pytest.raises(OSError, match=r"Is a directory|Not a directory"):
        write_atomic(tmp_path / "file.json" / "below", b"new")

    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["file.json"]


def test_a_directory_that_cannot_be_created_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the directory should be")

    with pytest.raises(OSError, match=r"cannot create the state directory .*taken/edge-fra.*--state-dir"):
        StateStore(tmp_path / "taken" / "edge-fra").prepare()


def test_a_last_known_good_saved_by_an_earlier_release_with_bare_seconds_still_loads(
    store: StateStore,
) -> None:
    listener = {"port": 443, "connect_timeout": 1.0, "health": {"interval": 0.5, "timeout": 0.25}}
    lb = {"id": "lb1", "tenant": "acme", "name": "web", "version": 1, "vips": ["203.0.113.10"]}
    old = {"pop": "fra", "version": 7, "load_balancers": [{**lb, "listeners": [listener]}]}
    write_atomic(
        store.directory / LAST_KNOWN_GOOD,
        json.dumps({"saved_at": "2026-01-01T00:00:00+00:00", "state": old}).encode(),
    )

    saved = store.last_known_good()

    assert saved is not None
    health = saved.state.load_balancers[0].listeners[0].health
    assert (health.interval, health.timeout) == (0.5, 0.25)
