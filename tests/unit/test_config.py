"""edge.yaml validation: the issue's example is accepted, mistakes are named with their field."""

from pathlib import Path

import pytest

from anycastlb.model.config import ConfigError, load_config, parse_config
from anycastlb.model.duration import parse_duration

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
    ("text", "seconds"), [("500ms", 0.5), ("1s", 1.0), ("2m", 120.0), ("1h", 3600.0), (3, 3.0), ("1.5s", 1.5)]
)
def test_durations_are_written_with_units(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


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
