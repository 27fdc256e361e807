"""`safety-monitor review` as a medical monitor uses it, on the configured SQLite store: queue, show, the review
actions, and the plain refusals (unknown alert, forbidden role, invalid transition) that exit non-zero."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli_harness import invoke, invoke_with_input, trial_rules_without_routing, use_embedded_defaults
from tests.factories import STUDY, ae, enrolled_and_dosed, subject_id

S1 = subject_id(1)
CLOCK_ALERT = f"sae-reporting-clock|{STUDY}|{S1}|AE:AE-1"
WHO = ("--as", "dr.li")
PASSWORD = "correct horse battery\n"


@pytest.fixture
def replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A potential SUSAR replayed into var/safety-monitor.db under the trial's rules (no routing: one receiver)."""
    use_embedded_defaults(monkeypatch, tmp_path, trial_rules_without_routing(tmp_path))
    sae = ae(S1, "AE-1", "Haemoptysis", 3, AESER="Y", AEREL_ANLOTINIB="PROBABLE")
    messages = tmp_path / "in.jsonl"
    messages.write_text("".join(json.dumps(m) + "\n" for m in (*enrolled_and_dosed(S1), sae)))
    invoke("replay", str(messages), "--no-deliver")
    for name, role in (("dr.li", "medical-monitor"), ("prof.chen", "dsmb-member"), ("ops", "admin")):
        invoke_with_input(PASSWORD, "users", "add", name, "--role", role, "--password-stdin")
    return tmp_path


def queue() -> dict[str, dict[str, object]]:
    return {row["alert_key"]: row for row in json.loads(invoke("review", "queue", "--format", "json").output)}


def test_review_an_sae_from_the_queue_to_a_stopped_clock(replayed: Path) -> None:
    rows = queue()
    assert rows[CLOCK_ALERT]["review_status"] == "new"
    # sent 08:00+08:00, 15 days; the command runs on today's clock, long after: overdue, and first in the queue
    (clock,) = rows[CLOCK_ALERT]["clocks"]  # type: ignore[misc]
    assert clock.startswith("OVERDUE by ") and clock.endswith("(the expedited report was due 2026-05-16 00:00 UTC)")
    assert rows[CLOCK_ALERT]["overdue_seconds"] and rows[next(iter(rows))]["overdue_seconds"]

    done = invoke("review", "ack", CLOCK_ALERT, *WHO, "--reason", "taken on")
    assert "recorded: " in done.output and "review status: new -> acknowledged; reason: taken on" in done.output
    invoke("review", "causality", CLOCK_ALERT, "anlotinib", "related", *WHO, "--reason", "onset on treatment")
    invoke("review", "causality", CLOCK_ALERT, "ici", "not-related", *WHO, "--reason", "no immune features")
    closed = invoke("review", "expectedness", CLOCK_ALERT, "expected", *WHO, "--reason", "listed in IB 5.4")
    assert "reporting clock closed: expected per the reference safety information (dr.li, medical-monitor)" in (
        closed.output
    )
    invoke("review", "comment", CLOCK_ALERT, "--as", "ops", "--reason", "filed")

    shown = invoke("review", "show", CLOCK_ALERT).output
    assert "review     acknowledged" in shown
    assert "causality  anlotinib related, ici not-related" in shown
    assert "expected?  expected (against the reference safety information)" in shown
    assert "clock      closed " in shown
    trail = [line.strip() for line in shown.splitlines() if line.startswith("  ")]
    assert len(trail) == 5
    assert trail[0].endswith("dr.li (medical-monitor) review status: new -> acknowledged; reason: taken on")
    assert trail[3].endswith(
        "dr.li (medical-monitor) expectedness: none -> expected; reporting clock closed; reason: listed in IB 5.4"
    )
    assert trail[4].endswith("ops (admin) comment; reason: filed")
    data = json.loads(invoke("review", "show", CLOCK_ALERT, "--format", "json").output)
    assert [a["kind"] for a in data["audit_trail"]] == [
        "acknowledge",
        "causality",
        "causality",
        "expectedness",
        "comment",
    ]
    assert queue()[CLOCK_ALERT]["clocks"] == []  # the queue shows running clocks only

    # The clock is closed: `sae report-submitted` has nothing left to stop, as before.
    again = invoke(
        "sae", "report-submitted", "--subject", S1, "--aespid", "AE-1", "--date", "2026-05-06", "--as", "ops", code=1
    )
    assert f"no open reporting clock for subject {S1} AE AE-1" in again.output
    new = invoke("review", "queue", "--new-since-last-review", "--reviewer", "dr.li").output
    assert "changed since the last review by dr.li: " in new and "no open alerts to review" in new


def test_refusals_exit_non_zero_with_a_plain_message(replayed: Path) -> None:
    unknown = invoke("review", "ack", "no-such-alert", *WHO, "--reason", "x", code=1)
    assert "Error: no alert 'no-such-alert' (see `safety-monitor review queue`)" in unknown.output
    forbidden = invoke(
        "review", "adjudicate", CLOCK_ALERT, "confirmed-signal", "--as", "prof.chen",
        "--reason", "x", code=1,
    )  # fmt: skip
    assert "Error: a dsmb-member may not record adjudicate (allowed: medical-monitor)" in forbidden.output
    invoke("review", "ack", CLOCK_ALERT, *WHO, "--reason", "seen")
    twice = invoke("review", "ack", CLOCK_ALERT, *WHO, "--reason", "seen", code=1)
    assert "Error: the alert is already acknowledged; acknowledging is for new alerts" in twice.output
    self_duplicate = invoke(
        "review", "adjudicate", CLOCK_ALERT, "duplicate", "--duplicate-of", CLOCK_ALERT, *WHO, "--reason", "x", code=1
    )
    assert "Error: an alert cannot be a duplicate of itself" in self_duplicate.output
    nobody = invoke("review", "ack", CLOCK_ALERT, "--as", "nurse", "--reason", "x", code=1)
    assert "Error: no user 'nurse': `--as` names an account (see `safety-monitor users list`)" in nobody.output
    no_name = invoke("review", "ack", CLOCK_ALERT, "--reason", "x", code=2)
    assert "Missing option '--as'" in no_name.output
    invoke("users", "disable", "prof.chen")
    disabled = invoke("review", "comment", CLOCK_ALERT, "--as", "prof.chen", "--reason", "x", code=1)
    assert "Error: user 'prof.chen' is disabled" in disabled.output
    invoke("review", "show", "no-such-alert", code=1)
    shown = json.loads(invoke("review", "show", CLOCK_ALERT, "--format", "json").output)
    assert [a["kind"] for a in shown["audit_trail"]] == ["acknowledge"]  # refusals left no row


def test_sae_report_submitted_is_a_review_action_in_the_audit_trail(replayed: Path) -> None:
    done = invoke("sae", "report-submitted", "--subject", S1, "--aespid", "AE-1", "--date", "2026-05-06", "--as", "ops")
    assert "reporting clock stopped" in done.output
    (action,) = json.loads(invoke("review", "show", CLOCK_ALERT, "--format", "json").output)["audit_trail"]
    assert (action["kind"], action["role"], action["clock_effect"]) == ("report-submitted", "admin", "closed")
    assert action["new"] == "report submitted 2026-05-06T00:00:00+00:00"
    expected = invoke("review", "expectedness", CLOCK_ALERT, "expected", *WHO, "--reason", "x", code=1)
    assert "Error: the reporting clock of this case was already closed at 2026-05-06T00:00+00:00" in expected.output


def test_audit_verify_catches_a_review_action_changed_behind_the_applications_back(replayed: Path) -> None:
    invoke("review", "ack", CLOCK_ALERT, *WHO, "--reason", "taken on")
    invoke("review", "comment", CLOCK_ALERT, *WHO, "--reason", "asked the site for the CT report")
    assert "audit log intact: 5 entries" in invoke("audit", "verify").output  # 3 accounts, 2 review actions
    with sqlite3.connect(replayed / "var" / "safety-monitor.db") as connection:
        connection.execute("drop trigger review_actions_no_update")
        connection.execute("update review_actions set reason = 'nothing to see' where kind = 'comment'")
    broken = invoke("audit", "verify", code=1)
    assert f"review_actions does not match the audit log: review action comment on {CLOCK_ALERT}" in broken.output
