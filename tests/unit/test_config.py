"""edge.yaml validation: the issue's example is accepted, mistakes are named with their field."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anycastlb.model.config import ConfigError, ListenerSettings, load_config, parse_config
from anycastlb.model.duration import STORED_SECONDS, duration_text, parse_duration

EXAMPLE = """
pop: fra
listeners:
  - name: web-https
    address: 203.0.113.10        # the VIP; IPv4 or IPv6; bind even if not (yet) local (IP_FREEBIND)
    port: 443
    protocol: tcp
    proxy_protocol: v2           # none | v1 | v2
    backends:
      - {address: 10.0.0.11, port: 30443}
      - {address: 10.0.0.12, port: 30443, weight: 2}
    health: {type: tcp, interval: 1s, timeout: 500ms, rise: 2, fall: 2}
metrics: {address: 127.0.0.1, port: 9100}
"""


def test_the_documented_example_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(EXAMPLE)

    config = load_config(path)

    web = config.listeners[0]
    assert (config.pop, web.name, str(web.address), web.port, web.proxy_protocol) == (
        "fra",
        "web-https",
        "203.0.113.10",
        443,
        "v2",
    )
    assert [(b.key, b.weight) for b in web.backends] == [("10.0.0.11:30443", 1), ("10.0.0.12:30443", 2)]
    assert (web.health.interval, web.health.timeout) == (1.0, 0.5)
    assert config.metrics is not None and config.metrics.port == 9100


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1s", 1.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("100ms", 0.1),
        (0, 0.0),
        ("0", 0.0),
    ],
)
def test_durations_are_written_with_units_and_only_zero_may_go_without(
    text: str | int, seconds: float
) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bare", [5, 0.5, "5", " 30 "])
def test_a_number_without_a_unit_is_refused_with_how_to_write_it(bare: object) -> None:
    written = str(bare).strip()
    with pytest.raises(
        ValueError, match=f"^{written} has no unit; write {written}s for seconds or {written}ms"
    ):
        parse_duration(bare)


def test_edge_yaml_names_the_field_whose_duration_has_no_unit() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(base(health={"interval": 5}))
    assert "listeners[0] (web).health.interval: 5 has no unit; write 5s for seconds or 5ms" in str(
        caught.value
    )


def test_data_an_earlier_release_wrote_reads_bare_numbers_as_seconds() -> None:
    raw = {"port": 443, "idle_timeout": 300, "health": {"interval": 0.5, "timeout": 0.25}}
    settings = ListenerSettings.model_validate(raw, context=STORED_SECONDS)
    assert (settings.idle_timeout, settings.health.interval, settings.health.timeout) == (300.0, 0.5, 0.25)


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False) | st.floats(min_value=0, max_value=1e-3))
def test_a_duration_is_written_with_a_unit_and_reads_back_exactly(seconds: float) -> None:
    text = duration_text(seconds)
    assert text.endswith(("ms", "s"))
    assert parse_duration(text) == seconds


def test_a_config_written_out_is_valid_input_again() -> None:
    config = parse_config(base(health={"interval": "1.5s", "timeout": "125ms"}, idle_timeout="2m"))
    dumped = config.model_dump(mode="json")
    assert dumped["listeners"][0]["health"]["interval"] == "1.5s"
    assert dumped["listeners"][0]["idle_timeout"] == "120s"
    assert parse_config(dumped) == config


@pytest.mark.parametrize("text", ["fast", "1 fortnight", "-1s", True, None])
def test_nonsense_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def base(**listener: object) -> dict[str, object]:
    entry: dict[str, object] = {"name": "web", "address": "203.0.113.10", "port": 443}
    entry.update(listener)
    return {"pop": "fra", "listeners": [entry]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (base(port=0), "listeners[0] (web).port: Input should be greater than or equal to 1"),
        (base(address="203.0.113"), "listeners[0] (web).address: '203.0.113' is not an IPv4 or IPv6 address"),
        (
            base(proxy_protocol="v3"),
            "listeners[0] (web).proxy_protocol: Input should be 'none', 'v1' or 'v2'",
        ),
        (base(protocol="udp"), "udp listeners are not supported by this data plane yet"),
        (base(name="Web Site"), "listener name 'Web Site' must be 1-63 lowercase letters"),
        (
            base(backends=[{"address": "10.0.0.1", "port": 1}, {"address": "10.0.0.1", "port": 1}]),
            "backend 10.0.0.1:1 is listed twice",
        ),
        (
            base(backends=[{"address": "10.0.0.1", "port": 1, "wieght": 3}]),
            "listeners[0] (web).backends[0].wieght: unknown field",
        ),
        (
            base(health={"interval": "100ms", "timeout": "1s"}),
            "timeout (1.0s) must be > 0 and <= interval (0.1s)",
        ),
        (base(connect_timeout="0s"), "connect_timeout must be > 0"),
        (
            base(new_connections_burst=10),
            "new_connections_burst applies only with new_connections_per_second; set",
        ),
        (
            base(new_connections_burst_per_source=5),
            "new_connections_burst_per_source applies only with new_connections_per_second_per_source",
        ),
        (base(new_connections_per_second=0), "new_connections_per_second: Input should be greater than 0"),
        (base(source_prefix_v4=33), "source_prefix_v4: Input should be less than or equal to 32"),
        (base(source_prefix_v6=0), "source_prefix_v6: Input should be greater than or equal to 1"),
        (
            {
                "pop": "fra",
                "listeners": [
                    {"name": "a", "address": "::1", "port": 1},
                    {"name": "a", "address": "::1", "port": 2},
                ],
            },
            "listener name 'a' is used twice",
        ),
        (
            {
                "pop": "fra",
                "listeners": [
                    {"name": "a", "address": "::1", "port": 1},
                    {"name": "b", "address": "::1", "port": 1},
                ],
            },
            "both bind ::1 port 1/tcp",
        ),
        ({"listeners": []}, "pop: Field required"),
        (["not", "a", "mapping"], "expected a mapping at the top level"),
    ],
)
def test_mistakes_are_reported_with_the_field_and_the_fix(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(raw)

    assert message in str(error.value)


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(base(port=70000, address="nope"))

    assert str(error.value).count("\n  listeners[0]") == 2


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


# ---- health and bgp blocks --------------------------------------------------------------------


def _with(**top: object) -> dict[str, object]:
    return {
        "pop": "fra",
        "listeners": [{"name": "web", "address": "203.0.113.10", "port": 443}],
        **top,
    }


BGP = {"local_as": 65001, "router_id": "10.0.1.2", "peers": [{"address": "10.0.1.1", "remote_as": 65000}]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            _with(listeners=[{"name": "web", "address": "::1", "port": 1, "health": {"type": "k8s"}}]),
            "type k8s needs port: the Service's healthCheckNodePort",
        ),
        (
            _with(listeners=[{"name": "web", "address": "::1", "port": 1, "health": {"path": "healthz"}}]),
            "path 'healthz' must start with '/'",
        ),
        (
            _with(listeners=[{"name": "w", "address": "::1", "port": 1, "health": {"expect_status": [200]}}]),
            "expect_status, expect_body and tls apply to type http only",
        ),
        (_with(bgp={**BGP, "local_as": 0}), "bgp.local_as: Input should be greater than or equal to 1"),
        (
            _with(bgp={**BGP, "peers": [{"address": "10.0.1.1", "remote_as": 4_294_967_296}]}),
            "bgp.peers[0].remote_as: Input should be less than or equal to 4294967295",
        ),
        (
            _with(
                bgp={**BGP, "peers": [{"address": "10.0.1.1", "remote_as": 1, "local_address": "fd00::2"}]}
            ),
            "are of different IP families",
        ),
        (_with(bgp={**BGP, "vips": [{"prefix": "203.0.113.0/24"}]}), "203.0.113.0/24 is not a host prefix"),
        (
            _with(bgp={**BGP, "vips": [{"prefix": "198.51.100.7/32"}]}),
            "198.51.100.7/32 is not the address of any",
        ),
        (_with(bgp={**BGP, "communities": ["65001:70000"]}), "community '65001:70000' must be ASN:VALUE"),
        (_with(bgp={**BGP, "peers": []}), "bgp.peers: list at least one router to peer with"),
        (_with(bgp={**BGP, "next_hop": "fd00::1"}), "next_hop fd00::1 must be an IPv4 address"),
        (
            _with(bgp={**BGP, "peers": [{"address": "10.0.1.1", "remote_as": 1, "hold_time": "2s"}]}),
            "hold_time 2.0s must be 0 or 3s-65535s",
        ),
    ],
)
def test_health_and_bgp_mistakes_are_named(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert message in str(error.value)


def test_a_bgp_block_with_per_vip_attributes_is_accepted() -> None:
    config = parse_config(_with(bgp={**BGP, "med": 10, "vips": [{"prefix": "203.0.113.10/32", "med": 5}]}))
    assert config.bgp is not None
    assert config.bgp.vips[0].med == 5


def test_rate_limits_are_off_and_sources_are_whole_addresses_unless_configured() -> None:
    web = parse_config(base()).listeners[0]

    assert (web.new_connections_per_second, web.new_connections_per_second_per_source) == (None, None)
    assert (web.source_prefix_v4, web.source_prefix_v6) == (32, 128)
