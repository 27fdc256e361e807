"""The rule tools as an operator uses them: rules test, rules backtest, rules reload, grades disagreements,
sae report-submitted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli_harness import invoke, invoke_with_input, trial_rules_without_routing, use_embedded_defaults
from tests.conftest import ROOT
from tests.factories import ae, enrolled_and_dosed, lb, subject_id

S1 = subject_id(1)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_embedded_defaults(monkeypatch, tmp_path, trial_rules_without_routing(tmp_path))


def jsonl(path: Path, *messages: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


def test_the_catalogue_test_cases_pass() -> None:
    out = invoke("rules", "test", str(ROOT / "rules")).output
    assert " passed, 0 failed (" in out


def test_a_failing_case_exits_1_with_what_differed(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("tests"))
    (rules / "tests").mkdir()
    (rules / "tests" / "wrong_test.yaml").write_text(
        "tests:\n"
        "  - name: expects the wrong grade\n"
        "    rules: [hemoptysis]\n"
        "    input:\n"
        "      - {msg_type: AE, USUBJID: S-012-1, AESPID: AE-1, AEDECOD: Haemoptysis, AETOXGR: 2}\n"
        "    expect:\n"
        "      alerts: [{rule: hemoptysis, grade: 3}]\n"
    )
    result = invoke("rules", "test", str(rules), code=1)
    assert f"FAIL {rules}/tests/wrong_test.yaml:2 expects the wrong grade" in result.output
    assert '  missing alert: {"grade": 3, "rule": "hemoptysis"}' in result.output
    assert '  unexpected alert: {"detail": "Haemoptysis grade 2 (investigator), reported as \'haemoptysis\'", ' in (
        result.output
    )
    assert "0 passed, 1 failed" in result.output


def rules_with_case(tmp_path: Path, case_file: str, *, routing: bool = True) -> Path:
    """A copy of the trial's rules (with or without its routing.yaml) whose only test file is `case_file`."""
    rules = tmp_path / "rules"
    ignored = ("tests", "routing.yaml") if not routing else ("tests",)
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns(*ignored))
    (rules / "tests").mkdir()
    (rules / "tests" / "case_test.yaml").write_text(case_file)
    return rules


FATAL_AE = "      - {msg_type: AE, USUBJID: S-012-1, AESPID: AE-1, AEDECOD: Sudden death, AETOXGR: 5, AESDTH: 'Y'}\n"


def test_a_routed_email_at_the_wrong_time_fails_naming_the_line_and_the_email_sent(tmp_path: Path) -> None:
    rules = rules_with_case(
        tmp_path,
        "tests:\n"
        "  - name: the DSMB hears of a death after 30 s\n"
        "    rules: [fatal-ae]\n"
        "    input:\n" + FATAL_AE + "    deliver_at: [+0s, +30s, +1m]\n"
        "    expect:\n"
        "      alerts: [{rule: fatal-ae, grade: 5}]\n"
        "      emails:\n"
        "        - {receiver: safety-physician, at: +0s, alerts: [{rule: fatal-ae, change: raised}]}\n"
        "        - {receiver: dsmb, at: +30s, alerts: [{rule: fatal-ae, change: raised}]}\n"
        "        - {receiver: medical-monitors, at: +0s, alerts: [{rule: fatal-ae, change: raised}]}\n",
    )
    result = invoke("rules", "test", str(rules), code=1)
    assert f"FAIL {rules}/tests/case_test.yaml:2 the DSMB hears of a death after 30 s" in result.output
    missing = (
        '  missing email: {"alerts": [{"change": "raised", "rule": "fatal-ae"}], "at": "2026-05-01T08:00:30+00:00", '
        '"receiver": "dsmb"} (expected at line 11)'
    )
    assert missing in result.output
    sent = result.output.split("unexpected email: ")[1].splitlines()[0]
    assert json.loads(sent) == {
        "receiver": "dsmb",
        "to": ["dsmb@example.org"],
        "at": "2026-05-01T08:00:00+00:00",
        "subject": "[CRITICAL] Any grade 5 / fatal adverse event - S-012-1 (Sudden death grade 5)",
        "alerts": [{"rule": "fatal-ae", "subject": "S-012-1", "change": "raised", "grade": 5, "term": "Sudden death"}],
    }
    assert result.output.count("unexpected email") == 1  # the safety physician's and medical monitors' match
    assert "0 passed, 1 failed" in result.output


def test_grouping_and_the_rendered_mail_are_compared(tmp_path: Path) -> None:
    reading = "{msg_type: VS, USUBJID: S-012-1, VSTESTCD: SYSBP, VSSTRESU: mmHg, "
    rules = rules_with_case(
        tmp_path,
        "tests:\n"
        "  - name: expects two emails where one is sent, and a word the mail does not say\n"
        "    rules: [hypertension-grade-3, hypertension-repeated-160-100]\n"
        "    batches:\n"
        f"      - [{reading}VSSTRESN: 165, VSDTC: '2026-05-01T07:30'}}]\n"
        f"      - {{at: +1m, input: [{reading}VSSTRESN: 172, VSDTC: '2026-05-01T07:55'}}]}}\n"
        "    deliver_at: [+2m]\n"
        "    expect:\n"
        "      alerts: [{rule: hypertension-grade-3}, {rule: hypertension-repeated-160-100}]\n"
        "      emails:\n"
        "        - {receiver: medical-monitors, alerts: [{rule: hypertension-grade-3}]}\n"
        "        - {receiver: medical-monitors, alerts: [{rule: hypertension-repeated-160-100}]}\n"
        "  - name: the text of the grouped email\n"
        "    rules: [hypertension-grade-3]\n"
        "    input: [" + reading + "VSSTRESN: 165, VSDTC: '2026-05-01T07:30'}]\n"
        "    deliver_at: [+2m]\n"
        "    expect:\n"
        "      alerts: [{rule: hypertension-grade-3}]\n"
        "      emails: [{receiver: medical-monitors, text_contains: 'Recommended action: stop anlotinib'}]\n",
    )
    out = invoke("rules", "test", str(rules), code=1).output
    assert "missing email: " in out and "(expected at line 11)" in out and "(expected at line 12)" in out
    grouped = json.loads(out.split("unexpected email: ")[1].splitlines()[0])
    assert [a["rule"] for a in grouped["alerts"]] == ["hypertension-grade-3", "hypertension-repeated-160-100"]
    assert grouped["subject"] == "[HIGH] 2 safety alert notices (2 new) - ALTER-ICI-01 / S-012-1"
    assert f"FAIL {rules}/tests/case_test.yaml:13 the text of the grouped email" in out
    assert "(expected at line 19)" in out  # the email is sent, but its text says another action
    assert "0 passed, 2 failed" in out


def test_held_notifications_are_compared_and_a_silence_can_be_set_in_the_case(tmp_path: Path) -> None:
    rules = rules_with_case(
        tmp_path,
        "tests:\n"
        "  - name: a silence ending before the last delivery step holds nothing any more\n"
        "    rules: [fatal-ae]\n"
        "    silences:\n"
        "      - {id: s-1, matchers: ['alertname=\"fatal-ae\"'], author: mm, reason: test, starts_at: +0s, ends_at: +1h}\n"
        "    input:\n" + FATAL_AE + "    deliver_at: [+2m, +1h]\n"
        "    expect:\n"
        "      alerts: [{rule: fatal-ae}]\n"
        "      emails: []\n"
        "      held: [{receiver: dsmb, rule: fatal-ae, reason_contains: silenced by s-1}]\n",
    )
    out = invoke("rules", "test", str(rules), code=1).output
    assert (
        '  missing held notification: {"reason_contains": "silenced by s-1", "receiver": "dsmb", "rule": "fatal-ae"}'
        " (expected at line 12)" in out
    )
    assert out.count("unexpected email: ") == 3  # sent at +1h to the three receivers
    assert '"at": "2026-05-01T09:00:00+00:00", "receiver": "dsmb"' in out


def test_case_files_are_checked_strictly_and_every_problem_is_reported_before_anything_runs(tmp_path: Path) -> None:
    rules = rules_with_case(
        tmp_path,
        "tests:\n"
        "  - name: misspelt\n"
        "    rules: [fatal-ea]\n"
        "    input:\n" + FATAL_AE + "    deliver_at: [+2 minutes]\n"
        "    expect:\n"
        "      emails:\n"
        "        - {reciever: dsmb, at: soon, alerts: [{rule: fatal-ae, chnage: raised}]}\n"
        "        - {receiver: dsbm}\n"
        "      held: [{change: update}]\n"
        "  - name: emails without delivery steps\n"
        "    input: []\n"
        "    expect: {emails: []}\n"
        "  - name: a silence without a reason\n"
        "    silences: [{id: s-1, matchers: ['alertname=\"fatal-ae\"'], author: mm, starts_at: +0s, ends_at: +1h}]\n",
    )
    out = invoke("rules", "test", str(rules), code=1).output
    file = f"{rules}/tests/case_test.yaml"
    for line, path, message in [
        (3, "tests[0].rules[0]", "'fatal-ea' is not a rule of this ruleset (did you mean 'fatal-ae'?)"),
        (6, "tests[0].deliver_at[0]", "'+2 minutes' is not a time after now"),
        (9, "tests[0].expect.emails[0].reciever", "'reciever' is not a field of an expected email (did you mean"),
        (9, "tests[0].expect.emails[0].at", "'soon' is not a time"),
        (9, "tests[0].expect.emails[0].alerts[0].chnage", "'chnage' is not a field of an expected alert of an email"),
        (10, "tests[0].expect.emails[1].receiver", "'dsbm' is not a receiver of the routing (did you mean 'dsmb'?)"),
        (11, "tests[0].expect.held[0].change", "change 'update' is not a change kind; allowed: basis_removed,"),
        (14, "tests[1].expect.emails", "emails are sent at delivery steps: add deliver_at"),
        (16, "tests[2].silences[0]", "a silence needs reason: who silenced it and why"),
    ]:
        assert f"Invalid config at {file}, line {line} ({path}): {message}" in out, (line, path)
    assert "9 error(s) in the test files; no case was run" in out
    assert "passed" not in out


def test_the_emails_are_rendered_from_the_configured_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "alert.txt.j2").write_text("{{ rule_title }}: {{ no_such_field }}\n")
    monkeypatch.setenv("SAFETY_MONITOR_TEMPLATES_DIR", str(templates))
    rules = rules_with_case(
        tmp_path,
        "tests:\n"
        "  - name: one alert, one email\n"
        "    rules: [fatal-ae]\n"
        "    input:\n" + FATAL_AE + "    deliver_at: [+30s]\n"
        "    expect:\n"
        "      alerts: [{rule: fatal-ae}]\n"
        "      emails: [{receiver: safety-physician}]\n",
    )
    out = invoke("rules", "test", str(rules), code=1).output
    assert "  delivery at 2026-05-01T08:00:30+00:00 failed: UndefinedError: 'no_such_field' is undefined" in out


def test_without_a_routing_file_every_alert_goes_to_the_default_receiver_at_once(tmp_path: Path) -> None:
    rules = rules_with_case(
        tmp_path,
        "tests:\n"
        "  - name: fallback routing\n"
        "    rules: [fatal-ae]\n"
        "    input:\n" + FATAL_AE + "    deliver_at: [+0s]\n"
        "    expect:\n"
        "      alerts: [{rule: fatal-ae}]\n"
        "      notifications: [{rule: fatal-ae, kind: raised, grade: 5}]\n"
        "      emails: [{receiver: default, at: +0s, to: [rules-test@example.org], alerts: [{rule: fatal-ae}]}]\n"
        "  - name: a receiver of the routing file is not one here\n"
        "    input: []\n"
        "    deliver_at: [+0s]\n"
        "    expect: {emails: [{receiver: dsmb}]}\n",
        routing=False,
    )
    out = invoke("rules", "test", str(rules), code=1).output
    assert "'dsmb' is not a receiver of the routing; allowed: default" in out
    (rules / "tests" / "case_test.yaml").write_text(
        (rules / "tests" / "case_test.yaml").read_text().split("  - name: a receiver")[0]
    )
    assert "1 passed, 0 failed" in invoke("rules", "test", str(rules)).output


def test_backtest_reports_per_rule_and_subject_from_jsonl_and_sdtm_csv(env: Path) -> None:
    wire = jsonl(env / "history.jsonl", *enrolled_and_dosed(S1), ae(S1, "AE-1", "Haemoptysis", 2))
    (env / "vs.csv").write_text(
        "STUDYID,DOMAIN,USUBJID,VSSEQ,VSTESTCD,VSSTRESN,VSSTRESU,VSDTC\n"
        f"ALTER-ICI-01,VS,{S1},1,SYSBP,165,mmHg,2026-05-01T09:00\n"
        f"ALTER-ICI-01,VS,{S1},2,DIABP,104,mmHg,2026-05-04T09:00\n"
    )
    out = json.loads(
        invoke(
            "rules", "backtest", "--rules", str(env / "rules"), str(wire), str(env / "vs.csv"), "--format", "json"
        ).output
    )
    assert out["messages"] == 5 and out["refused"] == 0
    assert out["rules"]["hemoptysis"] == {"alerts": 1, "hits": 1}
    assert out["rules"]["hypertension-grade-3"] == {"alerts": 1, "hits": 2}
    assert out["rules"]["hypertension-repeated-160-100"]["alerts"] == 1
    assert out["subjects"][S1]["hemoptysis"] == 1
    assert not (env / "var").exists()  # nothing written to the configured store, nothing sent


def test_grades_disagreements_and_the_sae_clock_from_the_command_line(env: Path) -> None:
    messages = jsonl(
        env / "in.jsonl",
        *enrolled_and_dosed(S1),
        ae(
            S1,
            "AE-1",
            "Platelet count decreased",
            2,
            soc="Blood",
            onset="2026-04-28",
            AESER="Y",
            AEREL_ANLOTINIB="POSSIBLE",
        ),
        lb(S1, "PLAT", 40, LBSTRESU="10^9/L", LBSTNRLO=125, LBSTNRHI=350, LBDTC="2026-04-30T07:45"),
    )
    invoke("replay", str(messages), "--no-deliver")
    out = json.loads(invoke("grades", "disagreements", "--format", "json").output)
    assert out == [
        {
            "study_id": "ALTER-ICI-01",
            "subject_id": S1,
            "aespid": "AE-1",
            "pt": "Platelet count decreased",
            "investigator_grade": 2,
            "derived_grade": 3,
            "derived_term": "Platelet count decreased",
        }
    ]
    invoke_with_input("a long admin password\n", "users", "add", "pv-desk", "--role", "admin", "--password-stdin")
    submitted = ("sae", "report-submitted", "--subject", S1, "--aespid", "AE-1", "--date", "2026-05-06")
    done = invoke(*submitted, "--as", "pv-desk")
    assert "reporting clock stopped" in done.output
    again = invoke(*submitted, "--as", "pv-desk", code=1)
    assert f"no open reporting clock for subject {S1} AE AE-1" in again.output


def test_reload_without_a_running_worker_says_so(env: Path) -> None:
    result = invoke("rules", "reload", "--pid-file", str(env / "none.pid"), code=1)
    assert "rules OK" in result.output and "no running worker" in result.output
