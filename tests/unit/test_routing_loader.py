"""routing.yaml: the trial's file loads; each class of error is reported exactly, all together, with file and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from safety_monitor.ruleset.errors import ConfigError
from safety_monitor.ruleset.routing_loader import load_routing, parse_routing
from tests.conftest import ROOT

GOOD = """\
receivers:
  medical-monitors: {email: [mm@example.org], role: medical monitor}
  dsmb: {email: [dsmb@example.org]}
defaults:
  group_by: [study_id, subject_id]
  group_wait: 2m
  group_interval: 15m
  repeat_interval: 24h
route:
  receiver: medical-monitors
  routes:
    - receiver: dsmb
      matchers: ['severity="critical"']
      group_wait: 30s
      continue: true
    - receiver: medical-monitors
      matchers: ['grade="5"']
inhibit_rules:
  - source_matchers: ['grade="5"']
    target_matchers: ['severity="high"']
    equal: [subject_id]
silences:
  - id: bp-known
    matchers: ['alertname="hypertension-grade-3"', 'subject_id="S7"']
    author: Dr Li
    reason: known hypertension, treated
    starts_at: 2026-05-01T08:00:00+08:00
    ends_at: 2026-05-08T08:00:00+08:00
digests:
  - name: daily
    kind: daily
    receivers: [medical-monitors]
    schedule: "0 8 * * *"
    time_zone: Asia/Shanghai
"""


def errors_of(text: str) -> list[str]:
    errors: list[ConfigError] = []
    routing = parse_routing("routing.yaml", text, errors, ROOT / "templates")
    assert (routing is None) == bool(errors)
    return [str(e) for e in errors]


def test_the_trials_routing_file_loads() -> None:
    routing = load_routing(ROOT / "rules" / "routing.yaml", ROOT / "templates")
    assert set(routing.receivers) == {"medical-monitors", "dsmb", "safety-physician"}
    assert [(d.name, d.schedule.expression, d.schedule.time_zone) for d in routing.digests] == [
        ("medical-monitors-daily", "0 8 * * *", "Asia/Shanghai"),
        ("dsmb-weekly", "0 9 * * mon", "Asia/Shanghai"),
    ]


def test_children_inherit_the_named_defaults_and_override_what_they_set() -> None:
    errors: list[ConfigError] = []
    routing = parse_routing("routing.yaml", GOOD, errors)
    assert routing is not None and errors == []
    root, (dsmb, fatal) = routing.route, routing.route.routes
    assert root.timing.group_wait == timedelta(minutes=2) and root.group_by == ("study_id", "subject_id")
    assert dsmb.timing.group_wait == timedelta(seconds=30) and dsmb.timing.repeat_interval == timedelta(hours=24)
    assert dsmb.continue_matching and not fatal.continue_matching
    assert fatal.receiver == "medical-monitors" and fatal.id == "route.routes[1]"
    assert routing.silences[0].ends_at.isoformat() == "2026-05-08T00:00:00+00:00"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    - receiver: dsmb\n",
            "    - receiver: dsbm\n",
            "Invalid config at routing.yaml, line 12 (route.routes[0].receiver): undefined receiver 'dsbm' used in "
            "route (did you mean 'dsmb'?)",
        ),
        (
            "  group_by: [study_id, subject_id]\n",
            "  grup_by: [study_id, subject_id]\n",
            "Invalid config at routing.yaml, line 5 (defaults.grup_by): 'grup_by' is not an option "
            "(did you mean 'group_by'?)",
        ),
        (
            "      group_wait: 30s\n",
            "      group_wait: 30 seconds\n",
            "Invalid config at routing.yaml, line 14 (route.routes[0].group_wait): group_wait: '30 seconds' is not a "
            "duration: write e.g. 30s, 5m, 4h, 1d or 1h30m",
        ),
        (
            "      matchers: ['severity=\"critical\"']\n",
            "      matchers: ['severity=\"critcal\"']\n",
            "Invalid config at routing.yaml, line 13 (route.routes[0].matchers[0]): severity 'critcal' is not a "
            "severity (did you mean 'critical'?)",
        ),
        (
            "      matchers: ['grade=\"5\"']\n",
            "      matchers: ['grade=\"6\"']\n",
            "Invalid config at routing.yaml, line 17 (route.routes[1].matchers[0]): grade '6' is impossible: CTCAE "
            "grades run 1-5",
        ),
        (
            "      matchers: ['grade=\"5\"']\n",
            "      matchers: ['grade=~\"[5\"']\n",
            "Invalid config at routing.yaml, line 17 (route.routes[1].matchers[0]): 'grade=~\"[5\"': the regular "
            "expression does not compile: unterminated character set at position 0",
        ),
        (
            "      matchers: ['grade=\"5\"']\n",
            "      matchers: ['grade is 5']\n",
            "Invalid config at routing.yaml, line 17 (route.routes[1].matchers[0]): 'grade is 5' is not a matcher: "
            "write label, operator (=, !=, =~, !~) and value, e.g. 'severity=\"critical\"'",
        ),
        (
            '    schedule: "0 8 * * *"\n',
            '    schedule: "0 8 * *"\n',
            "Invalid config at routing.yaml, line 33 (digests[0].schedule): '0 8 * *' has 4 field(s); cron needs 5: "
            "minute hour day-of-month month day-of-week (e.g. '0 8 * * *' for 08:00 every day)",
        ),
        (
            "    time_zone: Asia/Shanghai\n",
            "    time_zone: China/Beijing\n",
            "Invalid config at routing.yaml, line 34 (digests[0].time_zone): unknown time zone 'China/Beijing': use "
            "an IANA name such as 'Asia/Shanghai'",
        ),
        (
            "    receivers: [medical-monitors]\n",
            "    receivers: [medical-monitor]\n",
            "Invalid config at routing.yaml, line 32 (digests[0].receivers): undefined receiver 'medical-monitor' "
            "used in digest (did you mean 'medical-monitors'?)",
        ),
        (
            "    time_zone: Asia/Shanghai\n",
            "    time_zone: Asia/Shanghai\n    template: weekly_letter\n",
            "Invalid config at routing.yaml, line 35 (digests[0].template): template 'weekly_letter' needs "
            f"weekly_letter_subject.txt.j2, weekly_letter.txt.j2, weekly_letter.html.j2 in {ROOT / 'templates'}",
        ),
        (
            "    author: Dr Li\n",
            "",
            "Invalid config at routing.yaml, line 23 (silences[0]): a silence needs author: who silenced it and why",
        ),
        (
            "    reason: known hypertension, treated\n",
            "    reason: ''\n",
            "Invalid config at routing.yaml, line 26 (silences[0].reason): a silence needs reason: who silenced it "
            "and why",
        ),
        (
            "    ends_at: 2026-05-08T08:00:00+08:00\n",
            "    ends_at: 2026-05-08T08:00:00\n",
            "Invalid config at routing.yaml, line 28 (silences[0].ends_at): ends_at: 2026-05-08T08:00:00 has no UTC "
            "offset: add one (e.g. +08:00 or Z)",
        ),
        (
            "    ends_at: 2026-05-08T08:00:00+08:00\n",
            "    ends_at: 2026-04-08T08:00:00+08:00\n",
            "Invalid config at routing.yaml, line 28 (silences[0].ends_at): ends_at must be after starts_at",
        ),
        (
            "  dsmb: {email: [dsmb@example.org]}\n",
            "  dsmb: {email: [dsmb at example.org]}\n",
            "Invalid config at routing.yaml, line 3 (receivers.dsmb.email): not an email address: dsmb at example.org",
        ),
        (
            "  receiver: medical-monitors\n  routes:\n",
            "  receiver: medical-monitors\n  matchers: ['severity=\"high\"']\n  routes:\n",
            "Invalid config at routing.yaml, line 11 (route.matchers): the root route takes every alert: it has no "
            "matchers",
        ),
        (
            "  - source_matchers: ['grade=\"5\"']\n",
            "  - source_matcher: ['grade=\"5\"']\n",
            "Invalid config at routing.yaml, line 19 (inhibit_rules[0].source_matcher): 'source_matcher' is not an "
            "option (did you mean 'source_matchers'?)",
        ),
    ],
    ids=[
        "undefined-receiver",
        "unknown-key",
        "bad-duration",
        "bad-severity",
        "impossible-grade",
        "bad-regex",
        "not-a-matcher",
        "bad-cron",
        "unknown-time-zone",
        "digest-receiver",
        "missing-template",
        "silence-without-author",
        "silence-without-reason",
        "naive-time",
        "ends-before-start",
        "bad-email",
        "root-matchers",
        "inhibit-unknown-key",
    ],
)
def test_each_error_is_exact_and_the_rest_of_the_file_is_fine(old: str, new: str, message: str) -> None:
    assert old in GOOD
    errors = errors_of(GOOD.replace(old, new, 1))
    assert message in errors
    # Only what was broken is reported (plus, for the removed key, nothing else): the good neighbours load.
    assert len(errors) <= 2, errors


def test_all_errors_are_reported_together() -> None:
    broken = GOOD.replace("dsmb\n", "dsbm\n", 1).replace("group_wait: 2m", "group_wait: soon").replace("Dr Li", "")
    errors = errors_of(broken)
    assert len(errors) == 3
    assert [e.split(":")[0] for e in errors] == [
        "Invalid config at routing.yaml, line 6 (defaults.group_wait)",
        "Invalid config at routing.yaml, line 12 (route.routes[0].receiver)",
        "Invalid config at routing.yaml, line 25 (silences[0].author)",
    ]


def test_an_expired_silence_is_fine() -> None:
    assert errors_of(GOOD.replace("2026-05-08T08", "2026-05-01T09")) == []


def test_rules_check_reports_routing_errors_with_the_rule_files(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from safety_monitor.cli.main import cli

    (tmp_path / "routing.yaml").write_text(GOOD.replace("    - receiver: dsmb\n", "    - receiver: dsbm\n"))
    (tmp_path / "x.yaml").write_text("rules: []\n")
    result = CliRunner().invoke(cli, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "undefined receiver 'dsbm' used in route (did you mean 'dsmb'?)" in result.output
