"""In --control mode the supervisor's config is base.yaml plus the desired state on disk: a newer
pending state is tried, promoted once applied, recorded as rejected when refused."""

import logging
from pathlib import Path

import pytest

from anycastlb.edge.config_source import ControlSource, load_base
from anycastlb.edge.state_store import StateStore
from anycastlb.model.config import ConfigError
from anycastlb.model.desired import DesiredLoadBalancer, PopDesiredState

BGP = """
bgp:
  local_as: 65001
  router_id: 10.20.0.11
  peers: [{address: 10.20.0.1, remote_as: 65000}]
  vips: [{prefix: 203.0.113.10/32, med: 50}]
"""


def state(version: int, *vips: str) -> PopDesiredState:
    lbs = tuple(
        DesiredLoadBalancer.model_validate(
            {
                "id": f"lb-{i}",
                "tenant": "acme",
                "name": f"web{i}",
                "version": 1,
                "vips": [vip],
                "listeners": [{"port": 443}],
            }
        )
        for i, vip in enumerate(vips)
    )
    return PopDesiredState(pop="fra", version=version, load_balancers=lbs)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state")
    store.prepare()
    return store


def test_without_base_yaml_the_base_is_the_pop_with_defaults() -> None:
    base = load_base("fra", None)

    assert (base.pop, base.listeners, base.bgp) == ("fra", (), None)


def test_base_yaml_may_name_per_vip_bgp_attributes_of_vips_not_sent_yet(tmp_path: Path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text("workers: 3\n" + BGP)

    base = load_base("fra", path)

    assert base.workers == 3
    assert base.bgp is not None and [vip.prefix for vip in base.bgp.vips] == ["203.0.113.10/32"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pop: par\n", "is for PoP 'par' but --pop is 'fra'"),
        ("listeners: [{name: web, address: 127.0.0.1, port: 80}]\n", "remove listeners: from base.yaml"),
        ("workers: many\n", "workers"),
        (BGP.replace("med: 50", "med: -1"), "bgp.vips.0.med"),
        ("- a list\n", "expected a mapping"),
    ],
    ids=["other-pop", "listeners", "bad-field", "bad-vip-attribute", "not-a-mapping"],
)
def test_a_bad_base_yaml_is_refused_naming_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError, match=message):
        load_base("fra", path)


def test_without_last_known_good_the_edge_starts_with_no_listeners_and_says_it_waits(
    store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        config = ControlSource("fra", None, store).initial()

    assert config.listeners == ()
    assert "no_last_known_good waiting_for=control" in caplog.text


def test_with_last_known_good_the_edge_starts_from_it(
    store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.promote(state(4, "203.0.113.10"))
    store.write_pending(state(5, "203.0.113.10", "203.0.113.11"))  # never tried: not started from
    source = ControlSource("fra", None, store)

    with caplog.at_level(logging.INFO):
        config = source.initial()

    assert [str(listener.address) for listener in config.listeners] == ["203.0.113.10"]
    assert source.running_version == 4
    assert "starting_from_last_known_good version=4 saved=" in caplog.text


def test_a_newer_pending_state_is_loaded_and_promoted_once_applied(store: StateStore) -> None:
    store.promote(state(4, "203.0.113.10"))
    source = ControlSource("fra", None, store)
    source.initial()
    store.write_pending(state(5, "203.0.113.10", "203.0.113.11"))

    config = source.load()
    source.applied(config)

    assert len(config.listeners) == 2
    saved = store.last_known_good()
    assert saved is not None and saved.state.version == 5
    assert source.running_version == 5


def test_a_refused_pending_state_is_recorded_and_last_known_good_is_unchanged(store: StateStore) -> None:
    store.promote(state(4, "203.0.113.10"))
    source = ControlSource("fra", None, store)
    source.initial()
    store.write_pending(state(5, "203.0.113.11"))

    source.load()
    source.rejected("listener acme-web0-443: cannot listen on 203.0.113.11 port 443")

    saved, rejected = store.last_known_good(), store.rejected()
    assert saved is not None and saved.state.version == 4
    assert rejected is not None and rejected.version == 5 and "cannot listen" in rejected.error
    assert source.running_version == 4


def test_a_pending_state_that_is_not_newer_is_ignored_and_last_known_good_reloaded(store: StateStore) -> None:
    store.promote(state(4, "203.0.113.10"))
    source = ControlSource("fra", None, store)
    source.initial()
    store.write_pending(state(3, "203.0.113.99"))

    config = source.load()
    source.applied(config)

    assert [str(listener.address) for listener in config.listeners] == ["203.0.113.10"]
    saved = store.last_known_good()
    assert saved is not None and saved.state.version == 4


def test_a_restart_retries_a_rejected_version(store: StateStore) -> None:
    store.reject(5, "port taken")

    ControlSource("fra", None, store).initial()

    assert store.rejected() is None
