"""The follower's side of the watch: each kind of failure is told apart (and says what to check),
and only a newer, valid state is handed to the supervisor."""

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from anycastlb.dataplane.limits import SharedCounters
from anycastlb.edge.follower import FetchError, Follower, FollowerSettings
from anycastlb.edge.state_store import LAST_KNOWN_GOOD, StateStore
from anycastlb.model.config import EdgeConfig
from anycastlb.model.desired import PopDesiredState
from anycastlb.wire.health_board import HealthBoard
from tests.unit.test_tunnel_pure import interface

Handler = Callable[[httpx.Request], httpx.Response]
STATE = {"pop": "fra", "version": 3, "load_balancers": []}


def follower(tmp_path: Path, handler: Handler) -> Follower:
    return follower_of(StateStore(tmp_path), handler)


def follower_of(store: StateStore, handler: Handler) -> Follower:
    settings = FollowerSettings(url="http://control", pop="fra", token="secret", store=store)  # noqa: S106
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    made = Follower(settings, EdgeConfig(pop="fra"), HealthBoard(4096), SharedCounters(1, bytes(16)), client)
    made.notify = lambda: True
    return made


def fetch(tmp_path: Path, handler: Handler) -> PopDesiredState:
    return asyncio.run(follower(tmp_path, handler).fetch())


def test_the_first_request_asks_for_the_state_at_once_and_then_long_polls(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=STATE)

    watcher = follower(tmp_path, handler)
    asyncio.run(watcher.fetch())
    watcher.seen = 3
    asyncio.run(watcher.fetch())

    assert seen[0].url.path == "/v1/pops/fra/desired"
    assert seen[0].url.query == b""
    assert dict(seen[1].url.params) == {"watch": "1", "since": "3", "timeout": "30"}
    assert seen[1].headers["Authorization"] == "Bearer secret"


@pytest.mark.parametrize(
    ("response", "reason", "refused", "says"),
    [
        (httpx.Response(401), "auth", True, "--token"),
        (httpx.Response(403), "auth", True, "--pop"),
        (httpx.Response(404), "auth", True, "--pop"),
        (httpx.Response(503, text="db down"), "server_error", False, "HTTP 503"),
        (httpx.Response(200, text="{nope"), "invalid", False, "does not validate"),
        (httpx.Response(200, json={**STATE, "version": "x"}), "invalid", False, "version"),
        (httpx.Response(200, json={**STATE, "pop": "par"}), "invalid", False, "PoP 'par'"),
    ],
    ids=["401", "403", "404", "503", "bad-json", "bad-field", "other-pop"],
)
def test_each_failure_has_a_reason_and_a_message_that_says_what_to_check(
    tmp_path: Path, response: httpx.Response, reason: str, refused: bool, says: str
) -> None:
    with pytest.raises(FetchError, match=says) as caught:
        fetch(tmp_path, lambda _: response)

    assert (caught.value.reason, caught.value.refused) == (reason, refused)


def test_an_unreachable_control_plane_is_a_connect_failure(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(FetchError, match="Connection refused") as caught:
        fetch(tmp_path, refuse)

    assert caught.value.reason == "connect"


def test_a_newer_state_is_written_as_pending_and_the_supervisor_told(tmp_path: Path) -> None:
    watcher = follower(tmp_path, lambda _: httpx.Response(200, json=STATE))
    told: list[bool] = []

    def notify() -> bool:
        told.append(True)
        return True

    watcher.notify = notify

    assert watcher.consider(PopDesiredState.model_validate(STATE))
    assert watcher.consider(PopDesiredState.model_validate(STATE))  # the same version again: nothing

    assert json.loads((tmp_path / "pending.json").read_text())["state"]["version"] == 3
    assert told == [True]
    assert watcher.seen == 3
    assert watcher.awaiting is not None and watcher.awaiting[0] == 3


def test_a_follower_restarted_after_a_rejection_does_not_send_the_rejected_version_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "rejected.json").write_text(
        json.dumps({"version": 3, "error": "x", "at": "2026-01-01T00:00:00+00:00"})
    )
    watcher = follower(tmp_path, lambda _: httpx.Response(200, json=STATE))

    assert watcher.seen == 3
    watcher.consider(PopDesiredState.model_validate(STATE))
    assert not (tmp_path / "pending.json").exists()


def test_a_corrupt_last_known_good_the_supervisor_logged_is_not_logged_again_by_its_follower(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The follower is forked after the supervisor read the state directory and gets the
    supervisor's store, so one corrupt file makes one ``state_file_corrupt`` line, not one per
    process."""
    store = StateStore(tmp_path)
    store.path(LAST_KNOWN_GOOD).write_bytes(b"{not json")

    with caplog.at_level(logging.ERROR):
        assert store.last_known_good() is None  # the supervisor, at start
        made = follower_of(store, lambda request: httpx.Response(200, json=STATE))

    assert made.seen is None
    corrupt = [record for record in caplog.records if "state_file_corrupt" in record.getMessage()]
    assert len(corrupt) == 1


def test_a_control_plane_of_an_earlier_release_may_send_durations_as_bare_seconds(tmp_path: Path) -> None:
    listener = {"port": 443, "idle_timeout": 300.0, "health": {"interval": 2, "timeout": 1}}
    lb = {"id": "lb1", "tenant": "acme", "name": "web", "version": 1, "vips": ["203.0.113.10"]}
    older = {**STATE, "load_balancers": [{**lb, "listeners": [listener]}]}

    state = fetch(tmp_path, lambda _: httpx.Response(200, json=older))

    settings = state.load_balancers[0].listeners[0]
    assert (settings.idle_timeout, settings.health.interval, settings.health.timeout) == (300.0, 2.0, 1.0)


def test_a_new_health_view_makes_a_report_due_within_half_a_second_without_a_wake(tmp_path: Path) -> None:
    watcher = follower(tmp_path, lambda _request: httpx.Response(204))
    watcher.generation = watcher.board.generation()

    async def scenario() -> float:
        waiting = asyncio.get_running_loop().create_task(watcher.report_due())
        await asyncio.sleep(0.1)
        assert not waiting.done()  # nothing changed: the regular report is 5 s away
        started = asyncio.get_running_loop().time()
        watcher.board.publish(b"{}")  # the health process published a verdict
        await asyncio.wait_for(waiting, 2)
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(scenario()) <= 0.7


def test_a_state_is_checked_against_base_yamls_tunnels_not_those_of_the_state_running_now(
    tmp_path: Path,
) -> None:
    """The running config holds the interfaces of the state it runs: the next version, with the same
    interface, is no clash. One that base.yaml itself has still is."""
    tunnel = interface("albwg1")
    with_tunnel = {**STATE, "tunnels": [tunnel.model_dump(mode="json")]}
    settings = FollowerSettings(url="http://control", pop="fra", token="secret", store=StateStore(tmp_path))  # noqa: S106
    running = EdgeConfig(pop="fra", tunnels=(tunnel,))  # base + the state of version 3
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(500)))
    watcher = Follower(settings, running, HealthBoard(4096), SharedCounters(1, bytes(16)), client)
    watcher.notify = lambda: True

    assert watcher.consider(PopDesiredState.model_validate({**with_tunnel, "version": 4}))
    assert watcher.invalid is None and watcher.seen == 4

    clashing = FollowerSettings(
        url="http://control",
        pop="fra",
        token="secret",  # noqa: S106
        store=StateStore(tmp_path / "other"),
        base_tunnels=(tunnel,),
    )
    watcher = Follower(clashing, running, HealthBoard(4096), SharedCounters(1, bytes(16)), client)
    watcher.consider(PopDesiredState.model_validate({**with_tunnel, "version": 5}))
    assert watcher.invalid is not None and "also in base.yaml" in watcher.invalid.error
