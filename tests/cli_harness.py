"""Running `safety-monitor` commands in tests as an operator would: in a working directory of their own, with the
embedded defaults (SQLite under var/, mail as files) and the given rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from safety_monitor.cli.main import cli
from tests.conftest import ROOT


def trial_rules_without_routing(tmp_path: Path) -> Path:
    """A copy of the trial's catalogue without routing.yaml (every alert to ALERT_RECIPIENTS at once) or its tests."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("routing.yaml", "tests"))
    return rules


def use_embedded_defaults(monkeypatch: pytest.MonkeyPatch, workdir: Path, rules: Path) -> Path:
    """Commands run in `workdir` on the embedded defaults, with `rules` and one alert recipient."""
    monkeypatch.chdir(workdir)
    for name in ("DATABASE_URL", "DATABASE_SCHEMA", "MAIL_BACKEND", "DIGEST_RECIPIENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAFETY_MONITOR_RULES_DIR", str(rules))
    monkeypatch.setenv("SAFETY_MONITOR_TEMPLATES_DIR", str(ROOT / "templates"))
    monkeypatch.setenv("ALERT_RECIPIENTS", "dsmb@example.org")
    return workdir


def invoke(*args: str, code: int = 0) -> Result:
    """Run a command; its exit code must be `code`."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def invoke_with_input(stdin: str, *args: str, code: int = 0) -> Result:
    """Run a command with `stdin` as its standard input; its exit code must be `code`."""
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result
