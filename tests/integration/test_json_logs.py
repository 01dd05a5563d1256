"""``--log-format json`` on real processes: every line they write to stderr is one JSON object,
the edge's forked workers' lines included, and the control plane's request ids reach its log."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import listener
from tests.support.control_plane import ControlProcess
from tests.support.edge import EdgeProcess
from tests.support.stream_backend import StreamBackend

pytestmark = pytest.mark.integration


def _objects(log: str) -> list[dict[str, Any]]:
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}\nwhole log:\n{log}")
    for item in parsed:
        assert {"ts", "level", "pid", "logger", "event"} <= set(item), item
    return parsed


def test_the_control_plane_logs_one_json_object_per_line(tmp_path: Path) -> None:
    control = ControlProcess(tmp_path, extra_args=("--log-level", "info", "--log-format", "json"))
    with control, control.client() as client:
        client.post("/v1/tenants", json={"name": "acme"}, headers={"X-Request-Id": "ci-7"}).raise_for_status()
    objects = _objects(control.log_path.read_text())
    events = {item["event"] for item in objects}
    assert {"schema_migrated", "control_starting", "backend_policy_lifted"} <= events
    changed = [item for item in objects if item["event"] == "changed"]
    assert [(c["action"], c["object"], c["name"], c["request_id"]) for c in changed] == [
        ("create", "tenant", "acme", "ci-7")
    ]
    assert any(item["logger"].startswith("uvicorn") for item in objects), "uvicorn's lines go through us too"


def test_an_edge_and_its_workers_log_json_when_the_environment_says_so(
    tmp_path: Path,
    stream_backend: StreamBackend,
    edge: Callable[..., EdgeProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANYCASTLB_LOG_FORMAT", "json")  # what a parent started with --log-format sets
    process = edge({"listeners": [listener("web", [("127.0.0.1", stream_backend.port)])], "workers": 2})
    supervisor = process.process.pid if process.process else None
    process.stop()
    objects = _objects(process.log())
    events = {item["event"] for item in objects}
    assert {"edge_started", "listener_open", "edge_stopped"} <= events
    workers = {item["pid"] for item in objects if item["event"] == "listener_open"}
    assert len(workers) == 2 and supervisor not in workers, "the forked workers' lines are JSON too"
    assert all(isinstance(item["worker"], int) for item in objects if item["event"] == "listener_open")
