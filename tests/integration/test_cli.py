"""The command line as an operator uses it: replay, incidence, digest, schema, rules check, dead letters."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.cli_harness import invoke, use_embedded_defaults
from tests.conftest import ROOT, SmtpServer
from tests.factories import ae, enrolled_and_dosed, subject_id, vs


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules_without_routing: Path) -> Path:
    return use_embedded_defaults(monkeypatch, tmp_path, rules_without_routing)  # routing: tests of its own


def write_jsonl(path: Path, *messages: dict[str, object] | str) -> Path:
    path.write_text("\n".join(m if isinstance(m, str) else json.dumps(m) for m in messages) + "\n")
    return path


def test_replay_then_incidence_in_three_formats(env: Path) -> None:
    s1, s2 = subject_id(1), subject_id(2)
    file = write_jsonl(
        env / "in.jsonl",
        *enrolled_and_dosed(s1),
        *enrolled_and_dosed(s2),
        ae(s1, "AE-1", "Hypertension", 3, soc="Vascular disorders"),
        vs(s1, "SYSBP", 172),
        "this is not json",
    )
    out = invoke("replay", str(file)).output
    assert "messages processed:   7" in out and "dead-lettered:      1" in out
    assert "alerts raised:        hypertension-grade-3: 1" in out
    assert "emails sent:          1; failed now: 0" in out
    assert len(list((env / "var" / "mail").glob("*.eml"))) == 1

    csv_out = invoke("incidence", "--format", "csv").output
    assert csv_out.splitlines() == [
        "study_id,soc,pt,grade_band,subjects,denominator,percent",
        "ALTER-ICI-01,Vascular disorders,Hypertension,any,1,2,50.0",
        "ALTER-ICI-01,Vascular disorders,Hypertension,>=3,1,2,50.0",
    ]
    rows = json.loads(invoke("incidence", "--format", "json").output)
    assert rows[1] == {
        "study_id": "ALTER-ICI-01",
        "soc": "Vascular disorders",
        "pt": "Hypertension",
        "grade_band": ">=3",
        "subjects": 1,
        "denominator": 2,
        "percent": 50.0,
    }
    assert "Hypertension" in invoke("incidence").output

    letters = invoke("dead-letters").output
    assert "in.jsonl:7 (x1) not JSON: Expecting value (line 1, column 1)" in letters


def test_replay_refuses_to_run_without_recipients(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERT_RECIPIENTS")
    file = write_jsonl(env / "in.jsonl", ae())
    result = invoke("replay", str(file), code=1)
    assert "ALERT_RECIPIENTS is not set: alerts would reach nobody" in result.output


def test_configuration_errors_are_reported_together(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIL_BACKEND", "pigeon")
    monkeypatch.setenv("SMTP_PORT", "twenty-five")
    monkeypatch.setenv("ALERT_RECIPIENTS", "dsmb@example.org, not-an-address")
    output = invoke("incidence", code=1).output
    assert "SMTP_PORT='twenty-five' is not a number" in output
    assert "ALERT_RECIPIENTS: not an email address: not-an-address" in output
    assert "MAIL_BACKEND='pigeon'" in output


def test_digest_prints_renders_html_and_sends(
    env: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    s1 = subject_id(1)
    file = write_jsonl(env / "in.jsonl", *enrolled_and_dosed(s1), ae(s1, "AE-1", "Haemoptysis", 3))
    invoke("replay", str(file))
    text = invoke("digest", "--kind", "weekly", "--html", str(env / "d.html")).output
    assert "Haemoptysis" in text and "Alert changes since the last digest: 1" in text
    assert "<td>Haemoptysis</td>" in (env / "d.html").read_text()

    monkeypatch.setenv("MAIL_BACKEND", "smtp")
    monkeypatch.setenv("SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    invoke("digest", "--send")
    (mail,) = smtp_server.inbox.messages
    assert str(mail["Subject"]).startswith("Safety digest (weekly) - ALTER-ICI-01")
    # The next digest starts after this one: no alert changes since.
    assert "Alert changes since the last digest: 0" in invoke("digest").output


def test_schema_prints_json_schemas(env: Path) -> None:
    everything = json.loads(invoke("schema").output)
    assert set(everything) == {"AE", "LB", "VS", "EG", "SUBJECT", "RS"}
    ae_schema = json.loads(invoke("schema", "--type", "AE").output)
    assert ae_schema["properties"]["msg_type"]["const"] == "AE"


def test_rules_check_passes_on_the_catalogue_and_fails_on_errors(env: Path) -> None:
    assert "3 rules OK" in invoke("rules", "check", str(ROOT / "rules")).output
    bad = env / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text(
        "rules:\n  - id: x\n    title: t\n    when: {kind: ae, terms: [A], grade_at_least: 6}\n    severity: high\n"
    )
    result = invoke("rules", "check", str(bad), code=1)
    assert "line 4 (rules[0].when.grade_at_least): grade_at_least: 6 is impossible" in result.output
    assert "1 error(s)" in result.output


def test_db_upgrade_is_idempotent(env: Path) -> None:
    assert "database at head" in invoke("db", "upgrade").output
    assert "database at head" in invoke("db", "upgrade").output


def test_demo_mail_is_readable_eml(env: Path) -> None:
    invoke("demo", "--subjects", "20")
    mail_path = next((env / "var" / "mail").glob("*.eml"))
    mail = message_from_bytes(mail_path.read_bytes(), policy=policy.default)
    assert mail["Message-ID"].strip("<>") in mail_path.name.replace("_", "@")
