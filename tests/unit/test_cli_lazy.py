"""The command group imports the web workspace and the Kafka commands only when one of them runs."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from safety_monitor.cli.lazy import LazyGroup
from safety_monitor.cli.main import cli
from tests.conftest import ROOT

HEAVY = ("fastapi", "uvicorn", "kafka", "faust", "aiokafka")


def _imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_the_command_module_leaves_web_and_kafka_unimported() -> None:
    assert _imported_after("import safety_monitor.cli.main") == set()


def test_running_a_lazy_command_imports_its_module() -> None:
    code = (
        "from click.testing import CliRunner\n"
        "from safety_monitor.cli.main import cli\n"
        "assert CliRunner().invoke(cli, ['web', '--help']).exit_code == 0"
    )
    assert {"fastapi", "uvicorn"} <= _imported_after(code)


def test_help_lists_the_lazy_commands_with_the_others() -> None:
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in ("web", "worker", "publish", "topics", "replay", "deliver"):
        assert f"  {name} " in out


@pytest.mark.parametrize("name", ["web", "worker", "publish", "topics"])
def test_each_lazy_command_resolves(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.name == name


def test_a_lazy_entry_that_is_not_a_command_is_refused() -> None:
    group = LazyGroup(name="g", lazy={"oops": "safety_monitor.cli.lazy:LazyGroup"})
    with pytest.raises(TypeError, match="is not a click command"):
        group.get_command(click.Context(group), "oops")


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2 and "No such command" in result.output
