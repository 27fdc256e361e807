"""What a new operator trips over (issue 17): recipients, empty databases, raw tracebacks, small surprises."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from safety_monitor.ruleset.errors import ConfigError
from safety_monitor.ruleset.routing_loader import load_routing, parse_routing
from tests.cli_harness import invoke, use_embedded_defaults
from tests.conftest import ROOT
from tests.factories import ae, enrolled_and_dosed, subject_id

RECEIVER_VARIABLES = ("MEDICAL_MONITOR_EMAILS", "DSMB_EMAILS", "SAFETY_PHYSICIAN_EMAILS")


@pytest.fixture
def trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the trial's rules and routing.yaml as shipped, no recipients in the environment."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("tests"))
    use_embedded_defaults(monkeypatch, tmp_path, rules)
    for name in ("ALERT_RECIPIENTS", *RECEIVER_VARIABLES, "SMTP_HOST", "SMTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def write_jsonl(path: Path, *messages: dict[str, object] | str) -> Path:
    path.write_text("\n".join(m if isinstance(m, str) else json.dumps(m) for m in messages) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# 1. Recipients: from the environment, never silently ignored, never a placeholder with real mail.


def test_receivers_addresses_come_from_the_environment() -> None:
    text = (ROOT / "rules" / "routing.yaml").read_text()
    environ = {"DSMB_EMAILS": "chair@trial-dsmb.eu, statistician@trial-dsmb.eu", "MEDICAL_MONITOR_EMAILS": "mm@cro.eu"}
    errors: list[ConfigError] = []
    routing = parse_routing("routing.yaml", text, errors, ROOT / "templates", environ=environ)
    assert errors == [] and routing is not None
    assert routing.receivers["dsmb"].emails == ("chair@trial-dsmb.eu", "statistician@trial-dsmb.eu")
    assert routing.receivers["medical-monitors"].emails == ("mm@cro.eu",)
    assert routing.receivers["safety-physician"].emails == ("safety-physician@example.org",)  # the default


def test_an_unset_variable_without_default_is_an_error_with_file_and_line() -> None:
    text = "receivers:\n  dsmb:\n    email: ['${DSMB_EMAILS}']\nroute: {receiver: dsmb}\n"
    errors: list[ConfigError] = []
    assert parse_routing("routing.yaml", text, errors, environ={}) is None
    assert [(e.line, e.message) for e in errors] == [
        (3, "receiver 'dsmb': DSMB_EMAILS is not set; export DSMB_EMAILS=ADDRESS[,ADDRESS...]")
    ]


def test_smtp_with_placeholder_receivers_is_refused_before_anything_runs(
    trial: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_BACKEND", "smtp")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))
    monkeypatch.setenv("DSMB_EMAILS", "chair@trial-dsmb.eu")
    file = write_jsonl(trial / "in.jsonl", ae())
    out = invoke("replay", str(file), code=1).output
    assert "receiver 'medical-monitors' would be mailed at medical-monitor@example.org" in out
    assert "set MEDICAL_MONITOR_EMAILS" in out and "set SAFETY_PHYSICIAN_EMAILS" in out
    assert "receiver 'dsmb'" not in out  # its variable is set to a real address
    assert "routing.yaml, line" in out
    assert not (trial / "var" / "safety-monitor.db").exists()  # nothing ran
    check = invoke("rules", "check", code=1).output
    assert "MEDICAL_MONITOR_EMAILS" in check


def test_reserved_domains_are_all_refused_with_smtp() -> None:
    template = "receivers:\n  dsmb:\n    email: ['{address}']\nroute: {{receiver: dsmb}}\n"
    for address in ("a@example.com", "a@lists.example.net", "a@site.test", "a@x.invalid", "a@localhost"):
        errors: list[ConfigError] = []
        parse_routing("r.yaml", template.format(address=address), errors, environ={}, deliverable=True)
        assert errors and "reserved domain" in errors[0].message, address
    errors = []
    parse_routing("r.yaml", template.format(address="dsmb@hospital.cn"), errors, environ={}, deliverable=True)
    assert errors == []


def test_alert_recipients_beside_a_routing_file_is_a_configuration_error(
    trial: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_RECIPIENTS", "dsmb-chair@hospital.cn")
    out = invoke("replay", str(write_jsonl(trial / "in.jsonl", ae())), code=1).output
    assert "ALERT_RECIPIENTS is set, but" in out and "routing.yaml decides who hears every alert" in out


def test_rule_tests_use_the_files_own_addresses_whatever_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSMB_EMAILS", "chair@trial-dsmb.eu")
    assert "0 failed" in invoke("rules", "test", str(ROOT / "rules")).output


def test_the_shipped_routing_file_names_its_variables() -> None:
    routing = load_routing(ROOT / "rules" / "routing.yaml", ROOT / "templates", environ={})
    text = (ROOT / "rules" / "routing.yaml").read_text()
    for name in routing.receivers:
        assert name in text
    for variable in RECEIVER_VARIABLES:
        assert "${" + variable + ":-" in text


def test_rules_check_lists_each_receivers_addresses_and_where_they_come_from(
    trial: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSMB_EMAILS", "chair@trial-dsmb.eu,statistician@trial-dsmb.eu")
    out = invoke("rules", "check").output
    assert "receivers' addresses (from DSMB_EMAILS, MEDICAL_MONITOR_EMAILS, SAFETY_PHYSICIAN_EMAILS):" in out
    assert "  dsmb: chair@trial-dsmb.eu, statistician@trial-dsmb.eu\n" in out
    assert "  medical-monitors: medical-monitor@example.org (placeholders: refused with MAIL_BACKEND=smtp)" in out


# 3. A read never creates a database; a wrong path is refused, naming the URL and what creates it.


@pytest.mark.parametrize(
    "command",
    [
        ("incidence",),
        ("digest",),
        ("review", "queue"),
        ("dead-letters",),
        ("grades", "disagreements"),
        ("deliver",),
    ],
)
def test_commands_that_read_refuse_a_missing_database(trial: Path, command: tuple[str, ...]) -> None:
    out = invoke(*command, code=1).output
    assert "no database at DATABASE_URL=sqlite:///var/safety-monitor.db" in out
    assert "safety-monitor db upgrade" in out
    assert not (trial / "var").exists()


def test_commands_that_read_refuse_a_database_without_the_schema(trial: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (trial / "empty.db").write_bytes(b"")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///empty.db")
    out = invoke("incidence", code=1).output
    assert "DATABASE_URL=sqlite:///empty.db has no safety-monitor tables" in out and "db upgrade" in out
    invoke("db", "upgrade")
    assert "No adverse events in the safety population yet" in invoke("incidence").output


def test_a_replay_still_creates_its_database(trial: Path) -> None:
    s = subject_id(1)
    invoke("replay", str(write_jsonl(trial / "in.jsonl", *enrolled_and_dosed(s), ae(s))))
    assert "Haemoptysis" in invoke("incidence").output


# 4. Infrastructure errors: one line with the setting and what to do, exit non-zero; --verbose: the traceback.


def test_an_unreachable_database_is_one_line_naming_database_url(trial: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://safety:secret@127.0.0.1:{free_port()}/safety")
    result = invoke("db", "upgrade", code=1)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "DATABASE_URL=postgresql://safety:***@127.0.0.1:" in lines[0] and "secret" not in lines[0]
    assert "Connect call failed" in lines[0] and "Check that the server runs" in lines[0]
    assert "Traceback" not in result.output


def test_an_unsupported_database_is_a_configuration_error(trial: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://safety@db/safety")
    monkeypatch.setenv("SMTP_PORT", "99999")
    out = invoke("incidence", code=1).output
    assert "invalid configuration:" in out
    assert "DATABASE_URL scheme 'mysql': use sqlite:///PATH or postgresql://" in out
    assert "SMTP_PORT='99999' must be at most 65535" in out  # 10: listed with the others


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command in a process of its own, as an operator runs it (stderr and exit code as they see)."""
    command = [str(Path(sys.executable).with_name("safety-monitor")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_no_broker_is_one_line_naming_kafka_bootstrap_servers(trial: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    result = run_command("publish", str(write_jsonl(trial / "in.jsonl", ae())))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: no Kafka broker answers at KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}: KafkaTimeoutError: "
        f"Unable to bootstrap from 127.0.0.1:{port}. Start the brokers (`make kafka-up` for a local one) or set "
        "KAFKA_BOOTSTRAP_SERVERS (safety-monitor --verbose ... shows the traceback)"
    ]


def test_verbose_shows_the_traceback(trial: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://safety@127.0.0.1:{free_port()}/safety")
    plain, verbose = run_command("db", "upgrade"), run_command("--verbose", "db", "upgrade")
    assert plain.returncode == verbose.returncode == 1
    assert "Traceback" not in plain.stderr and len(plain.stderr.strip().splitlines()) == 1
    assert "Traceback (most recent call last)" in verbose.stderr and "ConnectionRefusedError" in verbose.stderr


# 10. The smaller things.


def test_dead_letters_are_listed_in_line_order(trial: Path) -> None:
    lines: list[dict[str, object] | str] = [ae(subject_id(n), f"AE-{n}") for n in range(1, 12)]
    lines[1], lines[10] = "not json", "not json either"
    lines[8] = '{"msg_id": "x'
    invoke("replay", str(write_jsonl(trial / "in.jsonl", *lines)))
    out = invoke("dead-letters").output
    origins = [line.split(" ")[0] for line in out.splitlines()]
    assert origins == ["in.jsonl:2", "in.jsonl:9", "in.jsonl:11"], out
    assert "at at" not in out and "Unterminated string starting at (line 1, column 12)" in out


def test_digest_kinds_are_checked_and_cover_their_period(trial: Path) -> None:
    invoke("db", "upgrade")
    out = invoke("digest", "--kind", "wekly", code=2).output
    assert "'wekly' is not one of 'daily', 'weekly'" in out
    daily, weekly = invoke("digest", "--kind", "daily").output, invoke("digest", "--kind", "weekly").output
    since = [line for line in daily.splitlines() if line.startswith("Alerts since")]
    since_weekly = [line for line in weekly.splitlines() if line.startswith("Alerts since")]
    assert since != since_weekly and "start of monitoring" not in daily


def test_a_routing_digest_kind_is_checked() -> None:
    text = (
        "receivers: {dsmb: {email: [d@hospital.cn]}}\nroute: {receiver: dsmb}\n"
        "digests:\n  - {name: d, kind: wekly, receivers: [dsmb], schedule: '0 9 * * mon', time_zone: UTC}\n"
    )
    errors: list[ConfigError] = []
    parse_routing("routing.yaml", text, errors, environ={})
    assert [(e.line, e.message) for e in errors] == [(4, "digest kind 'wekly' is unknown: use daily or weekly")]


def test_rules_check_reports_a_duplicate_id_with_the_other_errors_in_line_order(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "rules:\n"
        "  - {id: bp, title: BP, severity: high, when: {kind: vital, tests: [SYSBP], value_at_least: 160, unit: mmHg}}\n"
        "  - {id: bp, title: BP again, severity: high, when: {kind: vital, tests: [SYSBP], value_at_least: 170, "
        "unit: mmHg}}\n"
        "  - {id: other, title: Other, severity: extreme, when: {kind: vital, tests: [SYSBP], value_at_least: 1, "
        "unit: mmHg}}\n"
    )
    out = invoke("rules", "check", str(tmp_path), code=1).output
    lines = [line for line in out.splitlines() if line.startswith("Invalid config")]
    assert len(lines) == 2, out
    assert "line 3" in lines[0] and "duplicate rule id 'bp'" in lines[0]
    assert "line 4" in lines[1] and "severity 'extreme'" in lines[1]
