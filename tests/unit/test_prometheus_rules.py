"""The alert rules in deploy/prometheus load in Prometheus and behave as documented: ``promtool check
rules``, then ``promtool test rules`` with a test file in which every alert fires and, next to the
series that make it fire, others keep it quiet."""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.prometheus import require_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = {
    "anycastlb-alerts.yml": "anycastlb-alerts.test.yml",
}
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def alerts(rules: str) -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / rules).read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("rules", list(RULES))
def test_the_rules_pass_promtool_check(rules: str) -> None:
    result = promtool("check", "rules", str(DEPLOY / rules), cwd=DEPLOY)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts(rules))} rules found" in result.stdout


@pytest.mark.parametrize("rules", list(RULES))
def test_every_alert_fires_and_stays_quiet_as_its_promtool_unit_test_expects(rules: str) -> None:
    tests = DEPLOY / RULES[rules]

    result = promtool("test", "rules", tests.name, cwd=tests.parent)

    assert result.returncode == 0, result.stdout + result.stderr


def _labels(series: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', series))


@pytest.mark.parametrize("rules", list(RULES))
def test_the_unit_tests_cover_every_alert_firing_and_not_firing(rules: str) -> None:
    """For each alert, a test in which it fires, and a case where it must not: an evaluation that
    expects nothing, or an input series that none of the expected alerts carries the labels of."""
    cases = yaml.safe_load((DEPLOY / RULES[rules]).read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        inputs = [_labels(series["series"]) for series in case.get("input_series", [])]
        for check in case.get("alert_rule_test", []):
            expected = check.get("exp_alerts") or []
            if not expected:
                quiet.add(check["alertname"])
                continue
            fires.add(check["alertname"])
            labels = [{k: str(v) for k, v in alert["exp_labels"].items()} for alert in expected]
            if any(not any(set(want.items()) <= set(got.items()) for want in labels) for got in inputs):
                quiet.add(check["alertname"])
    names = {rule["alert"] for rule in alerts(rules)}

    assert names - fires == set(), "alerts never seen firing"
    assert names - quiet == set(), "alerts never seen staying quiet"


def test_every_alert_has_its_section_in_the_operations_guide() -> None:
    guide = OPERATIONS.read_text()
    for rules in RULES:
        for rule in alerts(rules):
            anchor = rule["annotations"]["runbook"].split("#", 1)[1]
            assert f"### {rule['alert']}" in guide, f"docs/operations.md has no section for {rule['alert']}"
            assert anchor.startswith(rule["alert"].lower()), anchor


@pytest.mark.parametrize(("ci", "outcome"), [("", pytest.skip.Exception), ("true", pytest.fail.Exception)])
def test_a_missing_promtool_skips_the_tests_but_fails_them_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome, match="apt-get install prometheus"):
        require_binary("promtool")
