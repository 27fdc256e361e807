"""Routing as tables: matchers, the route tree, grouping, timing, silences, inhibitions, the send decision, cron."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from safety_monitor.domain.cron import CronError
from safety_monitor.domain.notifications import Pending, Verdict, decide, mail_id
from safety_monitor.domain.routing import (
    Inhibitions,
    InhibitRule,
    Matcher,
    Receiver,
    Route,
    Routing,
    Silence,
    Timing,
    destinations,
    group_due_at,
    match_routes,
    repeat_due,
)
from safety_monitor.ruleset.cron import Cron
from safety_monitor.ruleset.routing_loader import parse_matcher

T0 = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)

CRITICAL_G3 = {"alertname": "hemoptysis", "severity": "critical", "grade": "3", "subject_id": "S7", "study_id": "X"}
HIGH_G3 = {"alertname": "hypertension-grade-3", "severity": "high", "grade": "3", "subject_id": "S7", "study_id": "X"}
FATAL = {"alertname": "any-grade-5", "severity": "high", "grade": "5", "subject_id": "S7", "study_id": "X"}
COHORT = {"alertname": "cohort-pneumonitis", "severity": "high", "kind": "cohort", "grade": "3", "study_id": "X"}


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ('severity="critical"', {"severity": "high"}, False),
        ('severity!="critical"', {"severity": "high"}, True),
        ('grade=~"[3-5]"', {"grade": "4"}, True),
        ('grade=~"[3-5]"', {"grade": "45"}, False),  # anchored: the whole value must match
        ('signal=~"haem.*|pneumonitis"', {"signal": "haemorrhage"}, True),
        ('signal!~"haem.*"', {"signal": "haemorrhage"}, False),
        ('signal!~"haem.*"', {}, True),  # a missing label reads as ""
        ("drug=", {}, True),
        ('term="with \\"quotes\\""', {"term": 'with "quotes"'}, True),
    ],
)
def test_matchers(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is expected


def _route(receiver: str, *matchers: str, cont: bool = False, group_by: tuple[str, ...] = ("subject_id",)) -> Route:
    return Route(
        f"r-{receiver}-{len(matchers)}",
        receiver,
        tuple(parse_matcher(m) for m in matchers),
        group_by,
        continue_matching=cont,
    )


TREE = Route(
    "route",
    "medical-monitors",
    routes=(
        _route("medical-monitors", cont=True),
        _route("safety-physician", 'severity="critical"', 'grade=~"[3-5]"', cont=True),
        _route("dsmb", 'severity="critical"', group_by=("alertname",)),
        _route("dsmb", 'grade="5"', group_by=("alertname",)),
        _route("dsmb", 'kind="cohort"', group_by=("alertname",)),
    ),
)


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (CRITICAL_G3, ["medical-monitors", "safety-physician", "dsmb"]),
        (HIGH_G3, ["medical-monitors"]),
        (FATAL, ["medical-monitors", "dsmb"]),
        (COHORT, ["medical-monitors", "dsmb"]),
        (CRITICAL_G3 | {"grade": "1"}, ["medical-monitors", "dsmb"]),
    ],
    ids=["critical-g3", "high-g3", "grade-5", "cohort", "critical-g1"],
)
def test_route_tree_first_match_and_continue(labels: dict[str, str], receivers: list[str]) -> None:
    assert [r.receiver for r in match_routes(TREE, labels)] == receivers


def test_a_node_whose_children_do_not_match_takes_the_alert_itself() -> None:
    tree = Route("route", "fallback", routes=(_route("dsmb", 'severity="critical"'),))
    assert [r.receiver for r in match_routes(tree, HIGH_G3)] == ["fallback"]


def test_destinations_one_per_receiver_grouped_by_the_route_labels() -> None:
    routing = Routing({n: Receiver(n, (f"{n}@example.org",)) for n in ("medical-monitors", "dsmb")}, TREE)
    first = destinations(routing, CRITICAL_G3, "k1")
    same_subject = destinations(routing, CRITICAL_G3 | {"alertname": "pneumonitis-grade-2"}, "k2")
    by_receiver = {d.receiver: d for d in first}
    assert by_receiver["dsmb"].group_labels == (("alertname", "hemoptysis"),)
    # Monitors group by subject: two alerts of one subject share a group; the DSMB groups by rule: they don't.
    assert {d.receiver: d.group_id for d in same_subject}["medical-monitors"] == by_receiver[
        "medical-monitors"
    ].group_id
    assert {d.receiver: d.group_id for d in same_subject}["dsmb"] != by_receiver["dsmb"].group_id


TIMING = Timing(group_wait=2 * M, group_interval=15 * M, repeat_interval=timedelta(hours=24))


@pytest.mark.parametrize(
    ("earliest", "last_flush", "urgent", "due"),
    [
        (T0, None, False, T0 + 2 * M),  # new group: wait group_wait to batch what follows
        (T0, None, True, T0),  # escalation: at once
        (T0, T0 - 5 * M, False, T0 + 10 * M),  # emailed 5 min ago: next at group_interval after it
        (T0, T0 - 5 * M, True, T0),  # escalation ignores group_interval too
        (T0, T0 - 60 * M, False, T0 + 2 * M),  # quiet for longer than group_interval: a fresh group
    ],
    ids=["new", "new-escalated", "recent", "recent-escalated", "stale"],
)
def test_group_due_at(earliest: datetime, last_flush: datetime | None, urgent: bool, due: datetime) -> None:
    assert group_due_at(earliest_pending=earliest, last_flush_at=last_flush, timing=TIMING, urgent=urgent) == due


def test_repeat_due_only_after_repeat_interval_and_never_without_one() -> None:
    assert not repeat_due(T0, timedelta(hours=24), T0 + timedelta(hours=23, minutes=59))
    assert repeat_due(T0, timedelta(hours=24), T0 + timedelta(hours=24))
    assert not repeat_due(T0, None, T0 + timedelta(days=400))
    assert not repeat_due(None, timedelta(hours=1), T0)


SILENCE = Silence(
    "s1", (Matcher.of("alertname", "=", "hypertension-grade-3"),), "Dr Li", "known, treated", T0, T0 + 60 * M
)
DEATH_HOLDS = InhibitRule(
    (Matcher.of("grade", "=", "5"),), (Matcher.of("severity", "=~", "high|medium"),), ("study_id", "subject_id"), "d"
)


def pending(labels: dict[str, str], **overrides: object) -> Pending:
    values: dict[str, object] = {
        "kind": "raised",
        "alert_key": "target",
        "labels": labels,
        "alert_open": True,
        "receiver_notified": False,
        "was_held": False,
    }
    return Pending(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("item", "at", "verdict"),
    [
        (pending(HIGH_G3), T0 - M, Verdict.SEND),  # before the silence starts
        (pending(HIGH_G3), T0, Verdict.HOLD),
        (pending(HIGH_G3), T0 + 59 * M, Verdict.HOLD),
        (pending(HIGH_G3, was_held=True), T0 + 60 * M, Verdict.SEND),  # expired, alert still open: sent late
        (pending(HIGH_G3, was_held=True, alert_open=False), T0 + 60 * M, Verdict.DROP),  # closed while held
        (
            pending(HIGH_G3, kind="basis_removed", was_held=True, alert_open=False, receiver_notified=True),
            T0 + 60 * M,
            Verdict.SEND,  # the receiver heard of it before the silence: the correction is sent
        ),
        (pending(HIGH_G3, kind="repeat", alert_open=False), T0 + 90 * M, Verdict.DROP),
        (pending(HIGH_G3, alert_open=False), T0 + 90 * M, Verdict.SEND),  # raise + correction in one wait: both
        (pending(CRITICAL_G3), T0, Verdict.SEND),  # the silence matches another rule only
    ],
    ids=["before", "start", "inside", "expired", "closed-held", "update-after", "repeat-closed", "race", "other"],
)
def test_silence_decisions(item: Pending, at: datetime, verdict: Verdict) -> None:
    assert decide(item, at, [SILENCE]).verdict is verdict


def test_silence_reason_names_who_why_and_until_when() -> None:
    decision = decide(pending(HIGH_G3), T0, [SILENCE])
    assert decision.reason == "silenced by s1 (Dr Li: known, treated) until 2026-05-03T13:00+00:00"


@pytest.mark.parametrize(
    ("sources", "verdict"),
    [
        ([("fatal", FATAL)], Verdict.HOLD),
        ([("fatal", FATAL | {"subject_id": "S8"})], Verdict.SEND),  # equal labels differ: another subject
        ([], Verdict.SEND),
    ],
    ids=["same-subject", "other-subject", "no-source"],
)
def test_inhibition_needs_an_open_source_with_equal_labels(
    sources: list[tuple[str, dict[str, str]]], verdict: Verdict
) -> None:
    assert decide(pending(HIGH_G3), T0, (), Inhibitions.index([DEATH_HOLDS], sources)).verdict is verdict


def test_an_alert_never_inhibits_itself() -> None:
    fatal_high = FATAL
    inhibitions = Inhibitions.index([DEATH_HOLDS], [("fatal", fatal_high)])
    assert decide(pending(fatal_high, alert_key="fatal"), T0, (), inhibitions).verdict is (Verdict.SEND)


def test_mail_id_is_the_set_of_notifications_not_their_order() -> None:
    assert mail_id(["b", "a"]) == mail_id(["a", "b"]) != mail_id(["a"])


@pytest.mark.parametrize(
    ("expression", "zone", "now", "expected"),
    [
        ("0 8 * * *", "Asia/Shanghai", "2026-05-03T00:00Z", "2026-05-03T00:00Z"),  # 08:00 Shanghai = 00:00 UTC
        ("0 8 * * *", "Asia/Shanghai", "2026-05-02T23:59Z", "2026-05-02T00:00Z"),
        ("0 9 * * mon", "Asia/Shanghai", "2026-05-03T12:00Z", "2026-04-27T01:00Z"),  # Sunday -> last Monday
        ("0 9 * * 1", "Asia/Shanghai", "2026-05-04T01:00Z", "2026-05-04T01:00Z"),
        ("*/15 * * * *", "UTC", "2026-05-03T12:44Z", "2026-05-03T12:30Z"),
        ("0 9 1 * mon", "UTC", "2026-05-03T12:00Z", "2026-05-01T09:00Z"),  # both day fields: either matches
        # 02:30 does not exist on 29 March in Berlin: it fires at 03:00 CEST, as cron does (a digest is not lost)
        ("30 2 * * *", "Europe/Berlin", "2026-03-29T12:00Z", "2026-03-29T01:00Z"),
        ("30 2 * * *", "Europe/Berlin", "2026-03-29T00:59Z", "2026-03-28T01:30Z"),  # before the change
        ("30 2 * * *", "Europe/Berlin", "2026-10-25T12:00Z", "2026-10-25T00:30Z"),  # 02:30 twice: the first
        ("0 8 L * *", "UTC", "2026-05-03T12:00Z", "2026-04-30T08:00Z"),  # the last day of the month
    ],
)
def test_cron_latest_firing(expression: str, zone: str, now: str, expected: str) -> None:
    schedule = Cron.parse(expression, zone)
    assert schedule.latest_at_or_before(datetime.fromisoformat(now)) == datetime.fromisoformat(expected)


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("0 8 * *", "UTC", "'0 8 * *' has 4 field(s); cron needs 5: minute hour day-of-month month day-of-week"),
        ("0 25 * * *", "UTC", "hour field: 25 is out of range 0-23"),
        ("0 8 * * fun", "UTC", "day of week field: 'fun' is not a number"),
        ("0 8 30 2 *", "UTC", "'0 8 30 2 *' never fires: February has no day 30"),
        ("0 8 31 4,6 *", "UTC", "'0 8 31 4,6 *' never fires: April or June has no day 31"),
        ("*/0 8 * * *", "UTC", "minute field: step '0' must be a whole number above 0"),
        ("0 8 * * fri-mon", "UTC", "day of week field: range 'fri-mon' runs backwards"),
        ("0 8 * * 8", "UTC", "day of week field: 8 is out of range 0-7"),
        ("0 8 * * *", "Asia/Beijing", "unknown time zone 'Asia/Beijing': use an IANA name such as 'Asia/Shanghai'"),
    ],
)
def test_cron_errors(expression: str, zone: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        Cron.parse(expression, zone)
    assert str(caught.value).startswith(message)
