"""The alert rules load (promtool check rules) and pass their unit tests (promtool test rules),
and every alert has a test that sees it fire and one that sees it stay quiet."""

import os
import shutil
import subprocess

import pytest
import yaml
from helpers import ROOT

GRAFANA = os.path.join(ROOT, "infra", "grafana")
RULES = os.path.join(GRAFANA, "alerts.yaml")
TESTS = ["alerts.test.yaml", "alerts.hours.test.yaml"]  # minutes-scale cases, and hours-scale ones
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"  # Debian's prometheus (scripts/system-deps.sh)


def promtool(*args, cwd=GRAFANA):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def alerts():
    with open(RULES) as f:
        groups = yaml.safe_load(f)["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests():
    result = promtool("test", "rules", *TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def cases(name):
    """{test file: [alert_rule_test cases for the alert `name`]}, files without any left out."""
    found = {}
    for path in TESTS:
        with open(os.path.join(GRAFANA, path)) as f:
            tests = yaml.safe_load(f)["tests"]
        mine = [case for test in tests for case in test.get("alert_rule_test", []) if case["alertname"] == name]
        if mine:
            found[path] = mine
    return found


def test_every_alert_has_a_firing_case_and_a_quiet_case():
    for name in alerts():
        mine = [case for found in cases(name).values() for case in found]
        assert any(case["exp_alerts"] for case in mine), f"{name}: no test where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{name}: no test where it stays quiet"


@pytest.mark.parametrize("name", sorted(alerts()))
def test_the_unit_tests_notice_an_alert_that_never_fires_or_always_fires(name, tmp_path):
    """Each alert's cases really depend on its expression: break it either way and they fail."""
    for broken in ("vector(1) == 2", "vector(1)"):
        with open(RULES) as f:
            rules = yaml.safe_load(f)
        for group in rules["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    rule["expr"] = broken
        (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(rules))
        files = list(cases(name))  # only the files that test this alert: promtool is not free
        for path in files:
            shutil.copy(os.path.join(GRAFANA, path), tmp_path / path)
        result = promtool("test", "rules", *files, cwd=tmp_path)
        assert result.returncode != 0, f"{name} with expr {broken!r} still passes its tests"
