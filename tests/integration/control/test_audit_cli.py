"""``anycastlb audit`` against a real ``anycastlb control`` process."""

import json
import re

import pytest

from tests.integration.control.test_cli import control, ok, platform
from tests.support.control_plane import ControlProcess

pytestmark = pytest.mark.integration
__all__ = ["control"]  # test_cli's fixture


def test_the_admin_reads_every_change_as_a_table_and_a_tenant_its_own_as_json(
    control: ControlProcess,
) -> None:
    acme = platform(control)
    table = ok(control.url, "audit").output
    for expected in ("create", "pool", "platform-v4", "pop", "fra", "tenant", "acme", "admin"):
        assert expected in table
    own = json.loads(ok(control.url, "audit", "--json", token=acme).output)
    assert {entry["tenant"] for entry in own["entries"]} == {"acme"}
    assert [entry["object_type"] for entry in own["entries"]] == ["token", "tenant"]
    pools_only = json.loads(ok(control.url, "audit", "--type", "pool", "-o", "json").output)
    assert [entry["object_name"] for entry in pools_only["entries"]] == ["platform-v4"]
    # Each CLI request carries its own id, stored with the change it made.
    ids = [entry["request_id"] for entry in json.loads(ok(control.url, "audit", "--json").output)["entries"]]
    assert all(re.fullmatch(r"cli-[0-9a-f]{16}", request_id) for request_id in ids), ids
    assert len(set(ids)) == len(ids)


def test_pages_follow_the_cursor(control: ControlProcess) -> None:
    platform(control)
    first = ok(control.url, "audit", "--limit", "2")
    assert "--cursor" in first.output
    everything = json.loads(ok(control.url, "audit", "--limit", "1", "--all", "--json").output)
    assert len(everything["entries"]) == 4 and everything["next_cursor"] is None
