"""The demo end to end: alerts, mail and incidence checked against figures computed here from the raw input."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import defaultdict
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from safety_monitor.cli.main import cli
from safety_monitor.demo import generate_trial
from tests.conftest import POSTGRES_URL, ROOT, _drop_schema, _postgres_schema

pytestmark = pytest.mark.e2e

HEMOPTYSIS = {
    "haemoptysis",
    "pulmonary haemorrhage",
    "bronchopulmonary haemorrhage",
    "respiratory tract haemorrhage",
}
PNEUMONITIS = {"pneumonitis", "interstitial lung disease", "immune-mediated pneumonitis"}


def oracle(lines: tuple[str, ...], malformed: set[int], conflict_msg_id: str) -> dict[str, Any]:
    """An independent reading of the trial file: what a careful person would count by hand."""
    seen: set[str] = set()
    top_version: dict[tuple[str, str], int] = {}
    current: dict[tuple[str, str], dict[str, Any]] = {}
    dosed: set[str] = set()
    alerts: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for number, line in enumerate(lines, start=1):
        if number in malformed:
            continue
        message = json.loads(line)
        if message["msg_id"] in seen:
            continue  # exact duplicate or the conflicting second use of an id
        seen.add(message["msg_id"])
        kind, subject = message["msg_type"], message["USUBJID"]
        if kind == "SUBJECT" and message["EVENT"] == "FIRST_DOSE":
            dosed.add(subject)
        if kind == "VS" and message["VSSTRESN"] is not None:
            cut = {"SYSBP": 160, "DIABP": 100}.get(message["VSTESTCD"])
            if cut is not None and message["VSSTRESN"] >= cut:
                alerts["hypertension-grade-3"].add((subject, "BP"))
        if kind != "AE":
            continue
        key = (subject, message["AESPID"])
        if message["record_version"] <= top_version.get(key, 0):
            continue  # stale follow-up
        top_version[key] = message["record_version"]
        current[key] = message
        pt, grade = message["AEDECOD"].casefold(), int(message["AETOXGR"])
        if pt in HEMOPTYSIS:
            alerts["hemoptysis"].add(key)
        if pt in PNEUMONITIS and grade >= 2 and message.get("AEIRAE") in ("Y", None):
            alerts["pneumonitis-grade-2"].add(key)
    worst: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for (subject, _spid), message in current.items():
        if subject in dosed:
            term = (message["AEBODSYS"], message["AEDECOD"])
            worst[term][subject] = max(worst[term].get(subject, 0), int(message["AETOXGR"]))
    incidence = {}
    for (soc, pt), grades in worst.items():
        incidence[(soc, pt, "any")] = (len(grades), len(dosed))
        incidence[(soc, pt, ">=3")] = (sum(1 for g in grades.values() if g >= 3), len(dosed))
    # routing.yaml's inhibit rule holds only medium and info alerts of a subject who died; the skeleton's three
    # rules are critical or high, so nothing of theirs is held.
    return {
        "alerts": {rule: len(keys) for rule, keys in alerts.items()},
        "incidence": incidence,
        "dosed": len(dosed),
        "inhibited": 0,
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def demo_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    # The oracle counts the skeleton's three rules; routing stays the shipped one.
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "tests" / "data" / "skeleton_rules", rules)
    for routing in (ROOT / "rules").glob("routing.y*ml"):
        shutil.copy(routing, rules / routing.name)
    env = {
        "SAFETY_MONITOR_RULES_DIR": str(rules),
        "SAFETY_MONITOR_TEMPLATES_DIR": str(ROOT / "templates"),
        "MAIL_BACKEND": "capture",
    }
    for name in ("DATABASE_URL", "DATABASE_SCHEMA", "ALERT_RECIPIENTS", "MAIL_CAPTURE_DIR", "SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    schema = None
    if request.param == "postgresql":
        schema = await _postgres_schema()
        env |= {"DATABASE_URL": POSTGRES_URL, "DATABASE_SCHEMA": schema}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield tmp_path
    if schema:
        await _drop_schema(schema)


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_matches_an_independent_count_and_is_idempotent(demo_env: Path) -> None:
    trial = generate_trial()
    manifest = trial.manifest
    expected = oracle(trial.lines, set(manifest.malformed_lines), manifest.conflict_msg_id)

    first = invoke("demo")
    assert f"duplicates skipped: {len(manifest.duplicate_msg_ids)}" in first
    assert "stale follow-ups:   1" in first
    assert f"dead-lettered:      {len(manifest.malformed_lines) + 1} (1 of them msg_id conflicts)" in first
    raised = dict(part.split(": ") for part in first.split("alerts raised:")[1].splitlines()[0].strip().split(", "))
    assert {rule: int(n) for rule, n in raised.items()} == expected["alerts"]
    assert f"safety population:  {expected['dosed']} subjects dosed" in first
    assert "AEs awaiting their subject's registration: 1" in first

    mails = sorted((demo_env / "var" / "mail").glob("*.eml"))
    parsed = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in mails]
    # Routed by rules/routing.yaml: medical monitors hear every alert (grouped per subject), the DSMB the
    # critical ones (grouped per rule), each alert change exactly once per receiver.
    carried: dict[str, list[str]] = defaultdict(list)  # receiver address -> alert ids in its mails
    for mail in parsed:
        ids = re.findall(r"Alert id: (\S+)", mail.get_body(("plain",)).get_content())
        for address in str(mail["To"]).split(", "):
            carried[address].extend(ids)
    # Each notice links to the alert's page in the review workspace (PUBLIC_URL, by default the local server).
    for mail in parsed:
        body = mail.get_body(("plain",)).get_content()
        assert len(re.findall(r"Review it:\s+http://127\.0\.0\.1:8000/alerts/[0-9a-f]{16}\n", body)) == len(
            re.findall(r"Alert id: ", body)
        )
    assert "review workspace: .venv/bin/safety-monitor web   then open http://127.0.0.1:8000/login" in first
    assert "  monitor  password demo-monitor-password  (medical-monitor)" in first
    listed = [line.split() for line in invoke("users", "list").splitlines()]
    assert listed == [
        ["admin", "admin", "active"],
        ["dsmb", "dsmb-member", "active"],
        ["monitor", "medical-monitor", "active"],
    ]
    alerts = sum(expected["alerts"].values())
    monitors = carried["medical-monitor@example.org"]
    held = expected["inhibited"]
    assert f"held:               {held} by silences / inhibit rules" in first
    # + the escalation, + the overdue escalation of each reporting clock already past due when the demo runs
    overdue = re.search(r"reporting clocks: +(\d+) now OVERDUE", first)
    late = int(overdue.group(1)) if overdue else 0
    assert len(set(monitors)) == alerts - held and len(monitors) == alerts - held + 1 + late
    critical = expected["alerts"]["hemoptysis"] + expected["alerts"]["pneumonitis-grade-2"]
    dsmb = carried["dsmb@example.org"]
    assert len(set(dsmb)) == critical and len(dsmb) == critical + 1
    assert not any(key.startswith("hypertension") for key in dsmb)
    to_monitors = [str(m["Subject"]).strip() for m in parsed if "medical-monitor@example.org" in str(m["To"])]
    escalated = [s for s in to_monitors if s.startswith("[ESCALATED]")]
    assert len(escalated) == 1 and manifest.grade_raise[0] in escalated[0]
    assert any(manifest.unknown_subject_id in s for s in to_monitors)  # alerted although not enrolled

    table = invoke("incidence", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(table)))
    assert list(rows[0]) == ["study_id", "soc", "pt", "grade_band", "subjects", "denominator", "percent"]
    got = {(r["soc"], r["pt"], r["grade_band"]): (int(r["subjects"]), int(r["denominator"])) for r in rows}
    assert got == expected["incidence"]
    hypertension = got[("Vascular disorders", "Hypertension", "any")]
    assert 0.5 <= hypertension[0] / hypertension[1] <= 0.8

    second = invoke("demo")
    assert "  applied:            0" in second
    assert "alerts raised:        none" in second and "emails sent:          0;" in second
    assert sorted((demo_env / "var" / "mail").glob("*.eml")) == mails
    assert invoke("incidence", "--format", "csv") == table
    assert (demo_env / "var" / "demo" / "digest.html").read_text().count("Hypertension") >= 1


def test_html_payload_reaches_mail_and_the_dsmb_report_and_is_escaped_everywhere(demo_env: Path) -> None:
    invoke("demo")
    digest = (demo_env / "var" / "demo" / "digest.html").read_text()
    assert "<script>" not in digest
    escaped = 0
    for path in (demo_env / "var" / "mail").glob("*.eml"):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        html = mail.get_body(("html",)).get_content()
        assert "<script>" not in html
        escaped += "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert escaped >= 1  # the hostile verbatim sits on an alerted AE: it is in a mail, escaped
    report = (demo_env / "var" / "demo" / "report.html").read_text()
    assert "<script>" not in report and "&lt;script&gt;" in report  # and in the DSMB report's serious AEs


def test_demo_shows_a_derived_grade_that_disagrees_with_the_investigator(demo_env: Path) -> None:
    manifest = generate_trial().manifest
    invoke("demo")
    usubjid, spid, investigator, shown = manifest.grade_disagreement
    rows = json.loads(invoke("grades", "disagreements", "--format", "json"))
    mine = [r for r in rows if (r["subject_id"], r["aespid"]) == (usubjid, spid)]
    assert [(r["investigator_grade"], r["derived_grade"]) for r in mine] == [(investigator, shown)]


def test_demo_writes_the_dsmb_report_with_every_section(demo_env: Path) -> None:
    trial = generate_trial()
    output = invoke("demo")
    assert f"DSMB safety report, data cut {trial.last_day}" in output
    figures = json.loads((demo_env / "var" / "demo" / "report.json").read_text())
    assert figures["data_cut"] == trial.last_day.isoformat()
    assert figures["population"]["randomised"] == figures["population"]["enrolled"] == 60
    assert len(figures["deaths"]) == 3 and figures["os"]["events"] == 3 and figures["pfs"]["events"] > 3
    assert figures["orr"]["evaluable"] > 0 and figures["orr"]["responders"] > 0
    assert figures["new_serious"]  # the skeleton rules of this test have no cohort rule: no boundary here
    again = json.loads(
        invoke("report", "--as-of", trial.last_day.isoformat(), "--format", "json", "-o", "r.json")
        and (demo_env / "r.json").read_text()
    )
    assert again["exposure"] == figures["exposure"] and again["os"] == figures["os"]
    invoke("report", "--as-of", trial.last_day.isoformat(), "-o", "r.html")
    assert (demo_env / "r.html").read_text().count("<svg") == 3  # OS, PFS, EAIR (no cohort rule here)
