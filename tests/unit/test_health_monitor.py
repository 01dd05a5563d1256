"""The health monitor with a fake probe: shared targets, verdicts on the board, reconfiguration, close.

The probe is a fake whose answers each test sets per ``address:port``; it records every call along
with the view on the board at that instant, so a test can tell how many probes a verdict took. The
board is a real :class:`HealthBoard`. Intervals are real but short (50 ms), and tests poll the board
against a deadline instead of sleeping a fixed time.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from anycastlb.health.monitor import HealthMonitor
from anycastlb.health.result import ProbeResult
from anycastlb.model.config import EdgeConfig, HealthCheck, ProxyProtocolVersion, parse_config
from anycastlb.wire.health_board import HealthBoard
from anycastlb.wire.health_view import HealthView, PassiveReport

INTERVAL = 0.05
OK = ProbeResult(ok=True, reason="connected", latency=0.001)
FAIL = ProbeResult(ok=False, reason="connection refused", latency=0.001)
HANG: Literal["hang"] = "hang"
A = "10.0.0.1:30080"
B = "10.0.0.2:30080"
C = "10.0.0.3:30080"

Answer = ProbeResult | Literal["hang"]


# ---- the fake probe and the harness -----------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One probe the monitor started, and what the board said when it started."""

    check: HealthCheck
    address: str
    port: int
    proxy_protocol: ProxyProtocolVersion
    seen: HealthView | None

    @property
    def key(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass
class FakeProbe:
    """Answers from ``answers`` (by ``address:port``, else ``default``); ``"hang"`` never answers."""

    board: HealthBoard
    answers: dict[str, Answer] = field(default_factory=dict)
    default: Answer = OK
    calls: list[Call] = field(default_factory=list)
    cancelled: int = 0
    _never: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(
        self, check: HealthCheck, address: str, port: int, proxy_protocol: ProxyProtocolVersion
    ) -> ProbeResult:
        self.calls.append(Call(check, address, port, proxy_protocol, _read(self.board)))
        answer = self.answers.get(f"{address}:{port}", self.default)
        if isinstance(answer, ProbeResult):
            return answer
        try:
            await self._never.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("the never-set event was set")

    def calls_to(self, key: str) -> list[Call]:
        return [call for call in self.calls if call.key == key]


@dataclass
class Harness:
    board: HealthBoard
    probe: FakeProbe
    monitor: HealthMonitor

    def view(self) -> HealthView:
        view = _read(self.board)
        assert view is not None, "nothing published yet"
        return view

    async def published(self, what: str, condition: Callable[[HealthView], bool]) -> HealthView:
        """The first view on the board that meets ``condition``, within a second."""
        await _eventually(what, lambda: condition(self.view()))
        return self.view()


def _run(scenario: Callable[[Harness], Awaitable[None]]) -> None:
    async def main() -> None:
        board = HealthBoard(64 * 1024)
        probe = FakeProbe(board)
        monitor = HealthMonitor(board, probe, random.Random(7))
        try:
            await scenario(Harness(board, probe, monitor))
        finally:
            await asyncio.wait_for(monitor.close(), 1.0)  # a driver that outlives close() fails here

    asyncio.run(main())


def _read(board: HealthBoard) -> HealthView | None:
    current = board.read()
    return None if current is None else HealthView.decode(current[1])


async def _eventually(what: str, condition: Callable[[], bool], within: float = 1.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.002)


def _down(view: HealthView | None, listener: str) -> frozenset[str]:
    assert view is not None
    return view.listeners[listener].down


def _backend(key: str, weight: int = 1) -> dict[str, Any]:
    address, port = key.rsplit(":", 1)
    return {"address": address, "port": int(port), "weight": weight}


def _listener(
    name: str,
    port: int,
    backends: list[str | dict[str, Any]],
    proxy_protocol: ProxyProtocolVersion = "v2",
    /,
    **health: Any,
) -> dict[str, Any]:
    """A listener on ``port``; ``health`` overrides the 50 ms check (and may set the check's own port)."""
    return {
        "name": name,
        "address": "192.0.2.1",
        "port": port,
        "proxy_protocol": proxy_protocol,
        "backends": [_backend(b) if isinstance(b, str) else b for b in backends],
        "health": {"interval": "50ms", "timeout": "50ms", **health},
    }


def _config(*listeners: dict[str, Any]) -> EdgeConfig:
    return parse_config({"pop": "test", "metrics": None, "workers": 1, "listeners": list(listeners)})


# ---- probe targets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listeners", "expected"),
    [
        pytest.param(
            [_listener("web", 443, [A], fall=1), _listener("api", 8443, [A], fall=1)],
            {(A, "v2", 0.05)},
            id="same-check-same-backend-one-target",
        ),
        pytest.param(
            [_listener("web", 443, [A], fall=1), _listener("api", 8443, [A], fall=1, interval="60ms")],
            {(A, "v2", 0.05), (A, "v2", 0.06)},
            id="different-check-blocks-two-targets",
        ),
        pytest.param(
            [_listener("web", 443, [A], fall=1), _listener("api", 8443, ["10.0.0.1:30081"], fall=1)],
            {(A, "v2", 0.05), ("10.0.0.1:30081", "v2", 0.05)},
            id="different-backend-ports-two-targets",
        ),
        pytest.param(
            [
                _listener("web", 443, [A], fall=1, port=10256),
                _listener("api", 8443, ["10.0.0.1:30081"], fall=1, port=10256),
            ],
            {("10.0.0.1:10256", "none", 0.05)},
            id="one-check-port-for-two-backend-ports-one-target",
        ),
        pytest.param(
            [_listener("web", 443, [A], fall=1), _listener("api", 8443, [A], "v1", fall=1)],
            {(A, "v2", 0.05), (A, "v1", 0.05)},
            id="different-proxy-headers-two-targets",
        ),
    ],
)
def test_each_distinct_target_gets_exactly_one_probe_stream(
    listeners: list[dict[str, Any]], expected: set[tuple[str, str, float]]
) -> None:
    async def scenario(h: Harness) -> None:
        # A hung probe with fall 1 is the only one its target ever starts, so calls count targets.
        h.probe.default = HANG
        h.monitor.configure(_config(*listeners))
        await _eventually("a probe per target", lambda: len(h.probe.calls) >= len(expected))
        # Checking for an absence: every first probe is due within one interval, and this one event
        # loop runs each driver due before this sleep ends, however slow the machine.
        await asyncio.sleep(1.5 * INTERVAL)
        assert len(h.probe.calls) == len(expected)
        assert {(c.key, c.proxy_protocol, c.check.interval) for c in h.probe.calls} == expected

    _run(scenario)


def test_a_shared_backend_failing_fall_probes_is_down_for_every_listener_and_recovers_after_rise() -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A, B]), _listener("api", 8443, [A])))
        await _eventually("both backends proven", lambda: bool(h.probe.calls_to(A) and h.probe.calls_to(B)))

        h.probe.answers[A] = FAIL
        first = len(h.probe.calls_to(A))
        view = await h.published("A down", lambda v: A in v.listeners["web"].down)
        assert view.listeners["web"].down == {A}
        assert view.listeners["web"].serving  # B still serves
        assert view.listeners["web"].reasons[A].startswith("down: ")  # the PoP reports why
        assert B not in view.listeners["web"].reasons  # never changed: nothing to explain
        assert view.listeners["api"].down == {A}
        assert not view.listeners["api"].serving  # its only backend is down
        await _eventually("a probe after the ejection", lambda: len(h.probe.calls_to(A)) > first + 2)
        failing = h.probe.calls_to(A)[first : first + 3]
        assert [A in _down(call.seen, "web") for call in failing] == [False, False, True]  # fall 2

        h.probe.answers[B] = FAIL
        view = await h.published("B down", lambda v: B in v.listeners["web"].down)
        assert view.listeners["web"].down == {A, B}
        assert not view.listeners["web"].serving

        h.probe.answers[A] = OK
        first = len(h.probe.calls_to(A))
        view = await h.published("A up again", lambda v: A not in v.listeners["web"].down)
        assert view.listeners["web"].serving
        assert view.listeners["api"].serving
        assert view.listeners["api"].down == frozenset()
        assert view.listeners["api"].reasons[A].startswith("up: ")
        await _eventually("a probe after the recovery", lambda: len(h.probe.calls_to(A)) > first + 2)
        passing = h.probe.calls_to(A)[first : first + 3]
        assert [A in _down(call.seen, "web") for call in passing] == [True, True, False]  # rise 2

    _run(scenario)


# ---- weights ----------------------------------------------------------------------------------


def test_a_k8s_check_publishes_its_learned_weight_and_tcp_checks_publish_none() -> None:
    async def scenario(h: Harness) -> None:
        k8s = {"type": "k8s", "port": 10256}
        h.monitor.configure(
            _config(
                _listener("web", 443, [A, _backend(B, weight=2)], **k8s),
                _listener("plain", 8443, [A, B]),
            )
        )
        h.probe.answers["10.0.0.1:10256"] = ProbeResult(True, "HTTP 200, 3 local endpoints", 0.001, 3)
        h.probe.answers["10.0.0.2:10256"] = ProbeResult(True, "HTTP 200, 5 local endpoints", 0.001, 5)
        await h.published("learned weights", lambda v: v.listeners["web"].weights == {A: 3, B: 5})

        h.probe.answers["10.0.0.1:10256"] = ProbeResult(True, "HTTP 200, 4 local endpoints", 0.001, 4)
        view = await h.published("a new weight", lambda v: v.listeners["web"].weights == {A: 4, B: 5})
        assert view.listeners["web"].down == frozenset()
        assert view.listeners["plain"].weights == {}
        assert {call.proxy_protocol for call in h.probe.calls if call.port == 10256} == {"none"}

    _run(scenario)


# ---- reconfiguration --------------------------------------------------------------------------


def test_configuring_the_same_config_again_keeps_a_down_backend_down() -> None:
    async def scenario(h: Harness) -> None:
        h.probe.answers[A] = FAIL
        h.monitor.configure(_config(_listener("web", 443, [A, B])))
        await h.published("A down", lambda v: v.listeners["web"].down == {A})
        targets = dict(h.monitor.targets)

        h.monitor.configure(_config(_listener("web", 443, [A, B])))  # equal, not the same object
        # A new machine would start unproven and up; the kept one is still down.
        assert h.view().listeners["web"].down == {A}
        assert h.monitor.targets.keys() == targets.keys()
        assert all(h.monitor.targets[key] is target for key, target in targets.items())
        calls = len(h.probe.calls_to(A))
        await _eventually("two more probes of A", lambda: len(h.probe.calls_to(A)) >= calls + 2)
        assert all(A in _down(call.seen, "web") for call in h.probe.calls_to(A)[calls:])

    _run(scenario)


def test_a_check_that_changes_only_its_initial_state_keeps_every_verdict() -> None:
    async def scenario(h: Harness) -> None:
        h.probe.answers[B] = FAIL
        h.monitor.configure(_config(_listener("web", 443, [A, B])))
        await h.published("B down", lambda v: v.listeners["web"].down == {B})
        await _eventually("A proven", lambda: bool(h.probe.calls_to(A)))
        targets = dict(h.monitor.targets)

        # A controller that turns tunnels on sends the same backends with initial: down. A new
        # machine would restart A unproven and down, and the listener would stop serving.
        h.probe.default = HANG  # from now on no probe answers: only kept verdicts can show A up
        h.monitor.configure(_config(_listener("web", 443, [A, B, C], initial="down")))
        view = h.view()
        assert view.listeners["web"].down == {B, C}  # A kept up, B kept down, C new and unproven
        assert view.listeners["web"].serving
        assert all(h.monitor.targets[key] is target for key, target in targets.items())

    _run(scenario)


def test_a_new_backend_of_an_initially_down_check_serves_after_its_first_good_probe() -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A], initial="down")))
        assert h.view().listeners["web"].down == {A}
        assert not h.view().listeners["web"].serving
        await h.published("A up", lambda v: v.listeners["web"].down == frozenset())
        assert len(h.probe.calls_to(A)) == 1  # one good probe proves it (rise applies once down)

    _run(scenario)


def test_a_backend_removed_from_the_config_is_no_longer_probed() -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A, B])))
        await _eventually("both backends probed", lambda: bool(h.probe.calls_to(A) and h.probe.calls_to(B)))

        h.monitor.configure(_config(_listener("web", 443, [A])))
        b_calls = len(h.probe.calls_to(B))
        a_calls = len(h.probe.calls_to(A))
        await _eventually("three more probes of A", lambda: len(h.probe.calls_to(A)) >= a_calls + 3)
        assert len(h.probe.calls_to(B)) == b_calls
        assert len(h.monitor.targets) == 1

    _run(scenario)


def test_a_backend_added_to_the_config_starts_being_probed() -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A])))
        await _eventually("A probed", lambda: bool(h.probe.calls_to(A)))
        assert not h.probe.calls_to(C)

        h.probe.answers[C] = FAIL
        h.monitor.configure(_config(_listener("web", 443, [A, C])))
        await _eventually("C probed", lambda: bool(h.probe.calls_to(C)))
        await h.published("C down", lambda v: v.listeners["web"].down == {C})

    _run(scenario)


# ---- passive reports --------------------------------------------------------------------------


def test_a_passive_report_for_a_known_backend_ejects_it_at_the_next_publication() -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A, B], passive_fall=1)))
        await _eventually("both backends proven", lambda: bool(h.probe.calls_to(A) and h.probe.calls_to(B)))

        h.monitor.passive(PassiveReport("web", A, "refused"))
        assert h.view().listeners["web"].down == frozenset()  # not published yet
        h.monitor.publish()
        view = h.view()
        assert view.listeners["web"].down == {A}
        assert view.listeners["web"].serving

    _run(scenario)


def test_a_passive_report_for_an_unknown_listener_or_backend_is_ignored() -> None:
    async def scenario(h: Harness) -> None:
        drained = {**_backend(C), "weight": 0}  # weight 0: never checked, so never reported on
        h.monitor.configure(_config(_listener("web", 443, [A, drained], passive_fall=1)))

        h.monitor.passive(PassiveReport("web", "10.9.9.9:30080", "refused"))
        h.monitor.passive(PassiveReport("nope", A, "refused"))
        h.monitor.passive(PassiveReport("web", C, "refused"))
        h.monitor.publish()
        assert set(h.view().listeners) == {"web"}
        assert h.view().listeners["web"].down == frozenset()

    _run(scenario)


def test_passive_fall_zero_ignores_passive_reports() -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A], passive_fall=0)))
        await _eventually("A proven", lambda: bool(h.probe.calls_to(A)))

        for _ in range(3):
            h.monitor.passive(PassiveReport("web", A, "timeout"))
        h.monitor.publish()
        assert h.view().listeners["web"].down == frozenset()
        assert h.view().listeners["web"].serving

    _run(scenario)


# ---- PROXY header on checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy_protocol", "health", "expected_port", "expected_proxy"),
    [
        pytest.param("v2", {}, 30080, "v2", id="auto-traffic-port-v2"),
        pytest.param("v1", {}, 30080, "v1", id="auto-traffic-port-v1"),
        pytest.param("none", {}, 30080, "none", id="auto-traffic-port-without-proxy"),
        pytest.param("v2", {"port": 10256}, 10256, "none", id="auto-own-check-port"),
        pytest.param("v2", {"send_proxy": False}, 30080, "none", id="send-proxy-false"),
        pytest.param("none", {"send_proxy": True}, 30080, "none", id="send-proxy-true-listener-none"),
        pytest.param("v1", {"send_proxy": True, "port": 10256}, 10256, "v1", id="send-proxy-true-check-port"),
        pytest.param("v2", {"type": "k8s", "port": 10256}, 10256, "none", id="auto-k8s"),
    ],
)
def test_a_check_sends_the_listeners_proxy_header_only_where_the_port_requires_it(
    proxy_protocol: ProxyProtocolVersion, health: dict[str, Any], expected_port: int, expected_proxy: str
) -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A], proxy_protocol, **health)))
        await _eventually("a probe", lambda: bool(h.probe.calls))
        call = h.probe.calls[0]
        assert (call.address, call.port, call.proxy_protocol) == ("10.0.0.1", expected_port, expected_proxy)

    _run(scenario)


# ---- shutdown ---------------------------------------------------------------------------------


def test_close_cancels_hung_probes_and_returns_promptly() -> None:
    async def scenario(h: Harness) -> None:
        h.probe.default = HANG
        h.monitor.configure(_config(_listener("web", 443, [A, B])))
        # fall 2: a hung target starts a second probe once the first is late, then waits.
        await _eventually("two hung probes each", lambda: len(h.probe.calls) == 4)

        # The hung probes never answer (nor time out: the fake has no timeout), so close() returning
        # at all means it cancelled them; 1 s is only a deadline for a slow machine.
        await asyncio.wait_for(h.monitor.close(), 1.0)
        assert h.probe.cancelled == 4
        await asyncio.sleep(2 * INTERVAL)  # an absence: two intervals in which a live driver would probe
        assert len(h.probe.calls) == 4  # nothing probes after close

    _run(scenario)


def test_close_right_after_a_wakeup_still_stops_every_driver() -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A], passive_fall=0)))
        await _eventually("A probed", lambda: bool(h.probe.calls_to(A)))
        # The report wakes the driver; the cancel lands before the driver has run again.
        h.monitor.passive(PassiveReport("web", A, "refused"))
        await asyncio.wait_for(h.monitor.close(), 1.0)
        calls = len(h.probe.calls)
        await asyncio.sleep(2 * INTERVAL)  # an absence: two intervals in which a live driver would probe
        assert len(h.probe.calls) == calls

    _run(scenario)


def test_a_backend_removed_right_after_a_wakeup_is_no_longer_probed() -> None:
    async def scenario(h: Harness) -> None:
        h.monitor.configure(_config(_listener("web", 443, [A, B], passive_fall=0)))
        await _eventually("both backends probed", lambda: bool(h.probe.calls_to(A) and h.probe.calls_to(B)))

        h.monitor.passive(PassiveReport("web", B, "refused"))  # wakes B's driver
        h.monitor.configure(_config(_listener("web", 443, [A])))
        b_calls = len(h.probe.calls_to(B))
        a_calls = len(h.probe.calls_to(A))
        await _eventually("three more probes of A", lambda: len(h.probe.calls_to(A)) >= a_calls + 3)
        assert len(h.probe.calls_to(B)) == b_calls

    _run(scenario)


def test_a_check_of_type_none_never_probes_but_passive_reports_still_eject() -> None:
    async def scenario(h: Harness) -> None:
        config = _config(_listener("web", 443, [A], type="none"))
        h.monitor.configure(config)
        await asyncio.sleep(4 * INTERVAL)  # an absence: four intervals in which a check would probe
        assert h.probe.calls_to(A) == []
        h.monitor.passive(PassiveReport("web", A, "refused"))
        h.monitor.publish()
        assert h.view().listeners["web"].down == frozenset({A})

    _run(scenario)
