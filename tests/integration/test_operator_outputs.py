"""What the operator reads (issue 17): overdue clocks, counts that say what waits, alert mails that say enough."""

from __future__ import annotations

import json
import re
import shutil
import socket
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.adapters.templates import TemplateRenderer
from safety_monitor.domain.grading import BloodPressureGrader
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.ruleset.routing_loader import parse_routing
from safety_monitor.service.notifications import flush_due
from safety_monitor.service.pipeline import PipelineConfig
from tests.cli_harness import invoke, trial_rules_without_routing, use_embedded_defaults
from tests.conftest import ROOT
from tests.factories import ae, enrolled_and_dosed, inbound, subject_id
from tests.harness import run

S1 = subject_id(1)
SUSAR = ae(S1, "AE-1", "Haemoptysis", 3, AESER="Y", AESHOSP="Y", AEREL_ANLOTINIB="PROBABLE")
CLOCK_ALERT = f"sae-reporting-clock|ALTER-ICI-01|{S1}|AE:AE-1"


def write_jsonl(path: Path, *messages: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


def mails(workdir: Path) -> list[EmailMessage]:
    found = sorted((workdir / "var" / "mail").glob("*.eml"))
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in found]  # type: ignore[misc]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def without_routing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The trial's catalogue, no routing.yaml: every alert change to ALERT_RECIPIENTS at once, one mail each."""
    use_embedded_defaults(monkeypatch, tmp_path, trial_rules_without_routing(tmp_path))
    return tmp_path


@pytest.fixture
def with_routing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("tests"))
    use_embedded_defaults(monkeypatch, tmp_path, rules)
    monkeypatch.delenv("ALERT_RECIPIENTS")
    return tmp_path


# 2. A reporting clock past due is OVERDUE everywhere it shows, at once.


def test_a_clock_past_due_is_overdue_in_the_queue_the_alert_and_its_mail(without_routing: Path) -> None:
    # sent 2026-05-01: due 2026-05-16, long before the commands run (today's clock)
    invoke("replay", str(write_jsonl(without_routing / "in.jsonl", *enrolled_and_dosed(S1), SUSAR)))
    rows = json.loads(invoke("review", "queue", "--format", "json").output)
    assert rows[0]["overdue_seconds"] > 0 and rows[0]["clocks"][0].startswith("OVERDUE by ")
    assert "(the expedited report was due 2026-05-16 00:00 UTC)" in rows[0]["clocks"][0]
    assert "clock      OVERDUE by " in invoke("review", "show", CLOCK_ALERT).output
    assert "alert(s) with an OVERDUE expedited report, first below" in invoke("review", "queue").output
    # the deadline check ran when the file was processed, not an hour later: its mail is already written
    subjects = [str(m["Subject"]) for m in mails(without_routing)]
    assert any(s.startswith("[OVERDUE") for s in subjects), subjects
    assert "OVERDUE by " in invoke("digest", "--kind", "daily").output  # and in the digest's list of changes


def test_the_queue_puts_overdue_first_then_severity_and_grade(without_routing: Path) -> None:
    s2 = subject_id(2)
    file = write_jsonl(
        without_routing / "in.jsonl",
        *enrolled_and_dosed(S1),
        *enrolled_and_dosed(s2),
        ae(s2, "AE-9", "Diarrhoea", 2, AESER="N"),  # high, grade 2, no clock
        ae(s2, "AE-8", "Haemoptysis", 2, AESER="N"),  # critical, grade 2, no clock
        SUSAR,  # critical and overdue
    )
    invoke("replay", str(file))
    keys = invoke("review", "queue", "--format", "keys").output.split()
    overdue = [k for k in keys if k.endswith(f"{S1}|AE:AE-1")]
    assert keys[: len(overdue)] == overdue  # the overdue case's alerts first
    rest = keys[len(overdue) :]
    assert rest.index(f"hemoptysis|ALTER-ICI-01|{s2}|AE:AE-8") < rest.index(
        f"colitis-diarrhoea-grade-2|ALTER-ICI-01|{s2}|AE:AE-9"
    )
    assert invoke("review", "queue", "--rule", "sae-reporting-clock", "--format", "keys").output.split() == [
        CLOCK_ALERT
    ]


# 5. Counts that add up, with what is pending and when it goes.


def test_replay_says_what_waits_for_group_wait_and_when(with_routing: Path) -> None:
    out = invoke("replay", str(write_jsonl(with_routing / "in.jsonl", *enrolled_and_dosed(S1), SUSAR))).output
    waiting = re.search(
        r"waiting: +(\d+) notice\(s\) in their group's group_wait / group_interval, the first at (.*?):", out
    )
    assert waiting is not None, out
    assert int(waiting.group(1)) > 0
    assert "`safety-monitor deliver` then, or a running `serve` / `worker`, emails them" in out
    assert re.search(r"notices written: +(\d+)", out)
    received = int(re.search(r"messages processed: +(\d+)", out).group(1))  # type: ignore[union-attr]
    parts = [
        int(re.search(rf"{name}: +(\d+)", out).group(1))  # type: ignore[union-attr]
        for name in ("applied", "duplicates skipped", "stale follow-ups", "dead-lettered")
    ]
    assert sum(parts) == received


def test_smtp_down_is_one_line_exit_1_and_deliver_shows_the_pending_email(
    without_routing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("MAIL_BACKEND", "smtp")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_TIMEOUT", "2")
    file = write_jsonl(without_routing / "in.jsonl", *enrolled_and_dosed(S1), ae(S1, "AE-2", "Haemoptysis", 2))
    out = invoke("replay", str(file), code=1).output
    assert "emails sent:          0; failed now: 1" in out
    assert f"1 email(s) could not be sent (SMTP_HOST=127.0.0.1 SMTP_PORT={port}:" in out
    assert "`safety-monitor deliver` sends them" in out
    shown = invoke("deliver").output  # the failed email waits for its backoff: not due, but counted
    assert "outbox:               0 sent in all, 1 to send or retry" in shown


# 9. Alert mails that say enough.


def test_an_alert_mail_shows_site_seriousness_causality_outcome_action_and_an_unknown_subject(
    without_routing: Path,
) -> None:
    invoke("replay", str(write_jsonl(without_routing / "in.jsonl", SUSAR)))  # no SUBJECT message: not enrolled
    (mail, *_) = [m for m in mails(without_routing) if "Hemoptysis" in str(m["Subject"])]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Site:      012 (report sent 2026-05-01 08:00+08:00, site time)" in text
    assert "NOT ENROLLED: no SUBJECT message for this USUBJID yet" in text
    assert "Serious:   Y (hospitalisation)" in text
    assert "Causality: anlotinib PROBABLE; ICI UNLIKELY" in text
    assert "Action taken: anlotinib DRUG INTERRUPTED" in text
    assert "Outcome:   NOT RECOVERED/NOT RESOLVED" in text
    raised = re.search(r"Alert raised (\S+ \S+ \S+);", text)
    assert raised is not None and raised.group(1).endswith(" UTC") and "." not in raised.group(1)
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "NOT ENROLLED" in html and "DRUG INTERRUPTED" in html


ROUTING = """
receivers: {mm: {email: [mm@hospital.cn]}}
defaults: {group_by: [study_id, subject_id], group_wait: 1m, group_interval: 5m, repeat_interval: never}
route: {receiver: mm}
"""


async def test_a_grouped_mail_counts_each_kind_of_change_and_lists_the_worst_first() -> None:
    errors: list[object] = []
    routing = parse_routing("routing.yaml", ROUTING, errors, environ={})  # type: ignore[arg-type]
    assert routing is not None
    ruleset = load_ruleset(ROOT / "rules")
    config = PipelineConfig(ruleset=ruleset, grader=BloodPressureGrader(), alert_recipients=(), routing=routing)
    store = MemoryStore()
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    s = subject_id(3)
    first = [*enrolled_and_dosed(s), ae(s, "AE-1", "Haemoptysis", 2, AESER="N"), ae(s, "AE-2", "Diarrhoea", 2)]
    await run(store, config, t0, inbound(*first))
    await flush_due(store, routing, t0 + timedelta(minutes=2))
    later = [
        ae(s, "AE-1", "Haemoptysis", 3, AESER="N", version=2),  # escalation
        ae(s, "AE-3", "Palmar-plantar erythrodysaesthesia syndrome", 2, AESER="N"),  # medium, new
    ]
    await run(store, config, t0 + timedelta(minutes=3), inbound(*later))
    await flush_due(store, routing, t0 + timedelta(minutes=9))
    async with store() as uow:
        due = await uow.outbox.due(t0 + timedelta(minutes=9), 10)
    second = next(n for n in due if any(i["change"] == "escalated" for i in n.context["notifications"]))  # type: ignore[attr-defined]
    items = second.context["notifications"]
    renderer = TemplateRenderer(ROOT / "templates")
    subject, _text, _html = renderer.render("alert_group", second.context)
    kinds = [i["change"] for i in items]  # type: ignore[index]
    assert kinds[0] == "escalated" and kinds.count("raised") == len(kinds) - 1
    assert f"({kinds.count('escalated')} escalated, {kinds.count('raised')} new)" in subject
    grades = [(i["severity"], i["grade"]) for i in items[1:]]  # type: ignore[index]
    rank = {"critical": 0, "high": 1, "medium": 2, "info": 3}
    assert grades == sorted(grades, key=lambda g: (rank[g[0]], -g[1]))
