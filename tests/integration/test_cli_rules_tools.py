"""The rule tools as an operator uses them: rules test, rules backtest, rules reload, grades disagreements,
sae report-submitted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from safety_monitor.cli.main import cli
from tests.conftest import ROOT
from tests.factories import ae, enrolled_and_dosed, lb, subject_id

S1 = subject_id(1)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "DATABASE_SCHEMA", "MAIL_BACKEND", "DIGEST_RECIPIENTS"):
        monkeypatch.delenv(name, raising=False)
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("routing.yaml", "tests"))
    monkeypatch.setenv("SAFETY_MONITOR_RULES_DIR", str(rules))
    monkeypatch.setenv("SAFETY_MONITOR_TEMPLATES_DIR", str(ROOT / "templates"))
    monkeypatch.setenv("ALERT_RECIPIENTS", "dsmb@example.org")
    return tmp_path


def invoke(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


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
    done = invoke("sae", "report-submitted", "--subject", S1, "--aespid", "AE-1", "--date", "2026-05-06")
    assert "reporting clock stopped" in done.output
    again = invoke("sae", "report-submitted", "--subject", S1, "--aespid", "AE-1", "--date", "2026-05-06", code=1)
    assert f"no open reporting clock for subject {S1} AE AE-1" in again.output


def test_reload_without_a_running_worker_says_so(env: Path) -> None:
    result = invoke("rules", "reload", "--pid-file", str(env / "none.pid"), code=1)
    assert "rules OK" in result.output and "no running worker" in result.output
