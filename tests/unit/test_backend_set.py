"""A listener's backend set with health applied: skip, local ejection, fail-open, learned weights."""

from collections import Counter

from anycastlb.dataplane.backend_set import BackendSet
from anycastlb.model.config import Listener
from anycastlb.wire.health_view import ListenerHealth

KEYS = [f"10.0.0.{i}:30080" for i in (1, 2, 3)]
CLIENTS = [f"198.51.100.{i}" for i in range(1, 255)] + [f"203.0.113.{i}" for i in range(1, 255)]


def _listener() -> Listener:
    return Listener.model_validate(
        {
            "name": "web",
            "address": "192.0.2.1",
            "port": 443,
            "backends": [{"address": key.split(":")[0], "port": 30080} for key in KEYS],
        }
    )


def _first_choices(backends: BackendSet) -> Counter[str]:
    return Counter(backends.candidates(client, 1)[0].key for client in CLIENTS)


def test_a_down_backend_gets_no_new_clients_and_only_its_clients_move() -> None:
    healthy = BackendSet(_listener())
    sick = BackendSet(_listener(), healthy, ListenerHealth(serving=True, down=frozenset({KEYS[1]})))
    assert sick.table is healthy.table  # health does not rebuild the table
    for client in CLIENTS:
        before = healthy.candidates(client, 1)[0].key
        after = sick.candidates(client, 1)[0].key
        assert after != KEYS[1]
        assert before == after or before == KEYS[1]


def test_a_local_ejection_lasts_until_a_view_covers_the_report() -> None:
    backends = BackendSet(_listener())
    target = backends.targets[0]
    backends.eject_locally(target, now=10.0)
    assert KEYS[0] not in _first_choices(backends)
    backends.apply_view(ListenerHealth(serving=True), reports_through=9.0)  # written before the report
    assert KEYS[0] not in _first_choices(backends)
    backends.apply_view(ListenerHealth(serving=True), reports_through=10.5)  # health process ruled: up
    assert KEYS[0] in _first_choices(backends)


def test_when_every_backend_is_down_the_set_fails_open() -> None:
    everything_down = ListenerHealth(serving=False, down=frozenset(KEYS))
    backends = BackendSet(_listener(), health=everything_down)
    assert not backends.healthy
    assert set(_first_choices(backends)) == set(KEYS)
    assert len(backends.candidates(CLIENTS[0], 3)) == 3


def test_learned_weights_rebuild_the_table_and_shift_the_shares() -> None:
    weighted = BackendSet(_listener(), health=ListenerHealth(serving=True, weights={KEYS[0]: 8}))
    shares = _first_choices(weighted)
    assert shares[KEYS[0]] / len(CLIENTS) > 0.7  # 8 of 10
    same = BackendSet(_listener(), weighted, ListenerHealth(serving=True, weights={KEYS[0]: 8}))
    assert same.table is weighted.table  # cached: a weight that flaps builds each table once


def test_open_connections_keep_their_target_objects_across_a_rebuild() -> None:
    first = BackendSet(_listener())
    second = BackendSet(_listener(), first, ListenerHealth(serving=True, weights={KEYS[2]: 3}))
    assert [a is b for a, b in zip(first.targets, second.targets, strict=True)] == [True] * 3
