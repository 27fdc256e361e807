"""docker-compose.yml cannot run here (no Docker engine): check that it says only what the code supports."""

import re

import pytest
import yaml
from click.testing import CliRunner

from safety_monitor.cli.main import cli
from tests.conftest import ROOT

READ_BY_CODE = set(
    re.findall(r'"([A-Z][A-Z_]+)"', (ROOT / "safety_monitor" / "settings.py").read_text())
    + re.findall(r'"([A-Z][A-Z_]+)"', (ROOT / "streams" / "topics.py").read_text())
    + re.findall(r"\$\{([A-Z][A-Z_]+)", (ROOT / "rules" / "routing.yaml").read_text())  # the receivers' addresses
)
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROJECT_SERVICES = ("monitor", "worker", "web", "topics", "publish")


def test_every_variable_compose_sets_is_read_by_the_code() -> None:
    for name in PROJECT_SERVICES:
        service = COMPOSE["services"][name]
        assert set(service["environment"]) <= READ_BY_CODE, (name, set(service["environment"]) - READ_BY_CODE)


@pytest.mark.parametrize("name", PROJECT_SERVICES)
def test_project_services_are_built_here_and_run_real_commands(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["build"] == "."
    argv = [*service.get("entrypoint", []), *service.get("command", [])]
    assert argv[0] == "safety-monitor"
    args = argv[1:]
    if name == "publish":
        args = [*args, "--help"]
    result = CliRunner().invoke(cli, [*[a for a in args if not a.startswith("/")], "--help"])
    assert result.exit_code == 0, result.output


def test_kafka_postgres_and_mail_are_there_with_health_checks() -> None:
    services = COMPOSE["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, one node
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["postgres"]["image"].startswith("postgres:")
    assert "1080" in services["mail"]["ports"][0]
    for name in ("kafka", "postgres", "worker", "web"):
        assert "healthcheck" in services[name], name
    assert "/health/" in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["worker"]["environment"]["WORKER_WEB_HOST"] == "127.0.0.1"
    assert services["web"]["command"][:2] == ["safety-monitor", "web"]  # the review workspace itself
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def _properties(path: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / path).read_text().splitlines() if line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def test_compose_runs_the_kafka_version_and_settings_make_kafka_up_runs() -> None:
    """One Kafka for every way of running it: the image tag is the version kafka-broker/pom.xml resolves, and every
    setting in kafka-broker/server.properties is set to the same value in compose (KAFKA_X_Y for x.y)."""
    kafka = COMPOSE["services"]["kafka"]
    pom = (ROOT / "kafka-broker" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version and kafka["image"] == f"apache/kafka:{version.group(1)}"
    compose = {k.removeprefix("KAFKA_").lower().replace("_", "."): str(v) for k, v in kafka["environment"].items()}
    settings = _properties("kafka-broker/server.properties")
    assert {key: compose.get(key) for key in settings} == settings
    assert settings["group.initial.rebalance.delay.ms"] == "0" and settings["process.roles"] == "broker,controller"


def test_the_wheel_bundles_rules_and_templates() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"templates" = "safety_monitor/bundled/templates"' in text
    assert '"rules" = "safety_monitor/bundled/rules"' in text
