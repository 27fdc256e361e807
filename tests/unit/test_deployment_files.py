"""docker-compose.yml cannot run here (no Docker engine): check that it says only what the code supports."""

import re

import yaml

from tests.conftest import ROOT

READ_BY_CODE = set(re.findall(r'"([A-Z][A-Z_]+)"', (ROOT / "safety_monitor" / "settings.py").read_text()))


def test_every_variable_compose_sets_is_read_by_the_code() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    monitor = compose["services"]["monitor"]
    assert monitor["build"] == "."
    assert monitor["command"][0] == "safety-monitor"
    assert set(monitor["environment"]) <= READ_BY_CODE, set(monitor["environment"]) - READ_BY_CODE


def test_the_wheel_bundles_rules_and_templates() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"templates" = "safety_monitor/bundled/templates"' in text
    assert '"rules" = "safety_monitor/bundled/rules"' in text
