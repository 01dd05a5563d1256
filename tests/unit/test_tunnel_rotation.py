"""The node key rotation state machine (control/tunnels/rotation.py): every transition."""

from datetime import UTC, datetime, timedelta

import pytest

from anycastlb.control.tunnels.rotation import (
    NodeKey,
    NodeKeyState,
    RotationInProgressError,
    expire,
    peers,
    rotate,
)

NOW = datetime(2026, 12, 4, 0, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)
OLD = NodeKey("old-private", "old-public", "100.64.0.3")
NEW = NodeKey("new-private", "new-public", "100.64.0.9")


def test_a_steady_node_has_one_peer_and_one_backend_address() -> None:
    state = NodeKeyState(OLD)
    assert not state.rotating
    assert peers(state) == (("old-public", "100.64.0.3"),)
    assert state.backend_addresses == ("100.64.0.3",)


def test_rotating_keeps_the_old_pair_as_a_second_peer_until_the_grace_ends() -> None:
    state = rotate(NodeKeyState(OLD), NEW, NOW, GRACE)
    assert state.rotating and state.previous_until == NOW + GRACE
    assert peers(state) == (("new-public", "100.64.0.9"), ("old-public", "100.64.0.3"))
    assert state.backend_addresses == ("100.64.0.9", "100.64.0.3")  # current first
    assert state.current.private == "new-private"
    assert state.previous is not None and state.previous.private == ""  # nobody needs it any more


def test_the_previous_pair_goes_exactly_when_the_grace_period_ends() -> None:
    state = rotate(NodeKeyState(OLD), NEW, NOW, GRACE)
    assert expire(state, NOW + GRACE - timedelta(microseconds=1)) == state
    done = expire(state, NOW + GRACE)
    assert done == NodeKeyState(NEW)
    assert expire(done, NOW + 2 * GRACE) == done  # steady stays steady


def test_a_second_rotation_during_the_grace_period_is_refused() -> None:
    state = rotate(NodeKeyState(OLD), NEW, NOW, GRACE)
    third = NodeKey("third-private", "third-public", "100.64.0.10")
    with pytest.raises(RotationInProgressError, match="kept until 2026-12-04T00:15:00"):
        rotate(state, third, NOW + timedelta(minutes=1), GRACE)
    assert rotate(expire(state, NOW + GRACE), third, NOW + GRACE, GRACE).previous == NodeKey(
        "", "new-public", "100.64.0.9"
    )


@pytest.mark.parametrize(
    "fresh",
    [NodeKey("p", "new-public", "100.64.0.3"), NodeKey("p", "old-public", "100.64.0.9")],
    ids=["same-address", "same-key"],
)
def test_a_rotation_needs_both_a_new_key_and_a_new_address(fresh: NodeKey) -> None:
    with pytest.raises(ValueError, match="new key and a new address"):
        rotate(NodeKeyState(OLD), fresh, NOW, GRACE)


def test_a_zero_grace_rotation_ends_at_once() -> None:
    state = rotate(NodeKeyState(OLD), NEW, NOW, timedelta(0))
    assert expire(state, NOW) == NodeKeyState(NEW)


def test_private_keys_never_show_in_a_repr() -> None:
    state = rotate(NodeKeyState(OLD), NEW, NOW, GRACE)
    assert "private" not in repr(state)
