"""Review actions on memory, SQLite and PostgreSQL: the audit trail is append-only, an "expected" review or a
submitted report stops the expedited-reporting clock for good, refusals write nothing, and the review queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from safety_monitor.cli.rule_tests import default_grader
from safety_monitor.domain.access import Role
from safety_monitor.domain.review import (
    ActionKind,
    ClockEffect,
    ReviewDecision,
    ReviewRefused,
    ReviewRequest,
    ReviewStatus,
)
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.audit import verify_audit_log
from safety_monitor.service.deadlines import check_deadlines
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.review import (
    UnknownAlert,
    alert_review,
    record_report_submitted,
    record_review,
    review_queue,
)
from tests.accounts import REVIEWERS, add_reviewers
from tests.conftest import RECIPIENTS, ROOT, Database
from tests.factories import STUDY, ae, inbound, subject_id
from tests.harness import run

S1, S2 = subject_id(1), subject_id(2)
DAY0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)  # receipt of the serious, suspected-related report
CLOCK_ALERT = f"sae-reporting-clock|{STUDY}|{S1}|AE:AE-1"
HAEMOPTYSIS_ALERT = f"hemoptysis|{STUDY}|{S1}|AE:AE-1"


@pytest.fixture(scope="module")
def full() -> PipelineConfig:
    return PipelineConfig(load_ruleset(ROOT / "rules"), default_grader(), RECIPIENTS)


async def a_potential_susar(store: UnitOfWorkFactory, full: PipelineConfig, now: datetime) -> None:
    await add_reviewers(store)
    sae = ae(S1, "AE-1", "Haemoptysis", 3, AESER="Y", AEREL_ANLOTINIB="PROBABLE", sent_at=DAY0.isoformat())
    outcome = await run(store, full, now, inbound(sae))
    assert outcome.alerts_by_rule["sae-reporting-clock"] == 1


def review(
    kind: ActionKind, at: datetime, key: str = CLOCK_ALERT, role: Role = Role.MEDICAL_MONITOR, **values: Any
) -> ReviewRequest:
    return ReviewRequest(key, kind, REVIEWERS[role], role, "listed in the investigator's brochure 5.4", at, **values)


async def clock_kinds(store: UnitOfWorkFactory) -> list[str]:
    async with store() as uow:
        changes = await uow.alerts.changes_since(None)
    return [c.kind.value for c in changes if c.alert.key == CLOCK_ALERT]


async def test_an_expected_review_stops_the_clock_and_nothing_is_owed_afterwards(store, full, now) -> None:
    await a_potential_susar(store, full, now)
    at = DAY0 + timedelta(days=2)
    decision = await record_review(store, review(ActionKind.EXPECTEDNESS, at, value="expected"))
    assert decision.clock_effect is ClockEffect.CLOSED

    async with store() as uow:
        assert await uow.sae_clocks.open() == []
        (clock,) = await uow.sae_clocks.for_case((STUDY, S1, "AE-1"))
    assert clock.closed_at == at
    assert clock.closed_reason == (
        "expected per the reference safety information (dr.li, medical-monitor): listed in the investigator's "
        "brochure 5.4"
    )
    for days in (12.1, 14.5, 16, 30):  # the reminder windows, past due, long past due
        report = await check_deadlines(store, full, DAY0 + timedelta(days=days))
        assert (report.reminders, report.overdue) == (0, 0)
    assert await clock_kinds(store) == ["raised"]  # no reminder, no overdue escalation, no closing notice

    shown = await alert_review(store, CLOCK_ALERT)
    assert shown.state.expectedness == "expected" and shown.state.status is ReviewStatus.NEW
    assert [a.describe() for a in shown.actions] == [
        "2026-05-03T08:00+00:00 dr.li (medical-monitor) expectedness: none -> expected; reporting clock closed; "
        "reason: listed in the investigator's brochure 5.4"
    ]


async def test_without_a_review_the_same_clock_reminds_and_goes_overdue(store, full, now) -> None:
    # The control for the test above: the same case, unreviewed, owes a reminder and then the overdue escalation.
    await a_potential_susar(store, full, now)
    assert (await check_deadlines(store, full, DAY0 + timedelta(days=12.1))).reminders == 1
    assert (await check_deadlines(store, full, DAY0 + timedelta(days=16))).overdue == 1


async def test_expectedness_on_another_alert_of_the_case_stops_the_case_clock(store, full, now) -> None:
    await a_potential_susar(store, full, now)
    await record_review(
        store, review(ActionKind.EXPECTEDNESS, DAY0 + timedelta(days=1), HAEMOPTYSIS_ALERT, value="expected")
    )
    async with store() as uow:
        assert await uow.sae_clocks.open() == []


async def test_unexpected_after_expected_runs_the_clock_again(store, full, now) -> None:
    await a_potential_susar(store, full, now)
    await record_review(store, review(ActionKind.EXPECTEDNESS, DAY0 + timedelta(days=1), value="expected"))
    decision = await record_review(store, review(ActionKind.EXPECTEDNESS, DAY0 + timedelta(days=2), value="unexpected"))
    assert decision.clock_effect is ClockEffect.REOPENED
    assert (await check_deadlines(store, full, DAY0 + timedelta(days=16))).overdue == 1  # due at day 15 still


async def test_the_audit_trail_is_append_only(store, full, now) -> None:
    await a_potential_susar(store, full, now)
    await record_review(store, review(ActionKind.ACKNOWLEDGE, DAY0 + timedelta(days=1)))
    (first,) = (await alert_review(store, CLOCK_ALERT)).actions
    await record_review(
        store, review(ActionKind.CAUSALITY, DAY0 + timedelta(days=2), value="related", drug="anlotinib")
    )
    await record_review(
        store, review(ActionKind.CAUSALITY, DAY0 + timedelta(days=3), value="not-related", drug="anlotinib")
    )
    shown = await alert_review(store, CLOCK_ALERT)
    assert shown.actions[0] == first  # unchanged by what came after
    assert [(a.kind, a.old_value, a.new_value) for a in shown.actions] == [
        (ActionKind.ACKNOWLEDGE, "new", "acknowledged"),
        (ActionKind.CAUSALITY, None, "related"),
        (ActionKind.CAUSALITY, "related", "not-related"),
    ]
    assert shown.state.status is ReviewStatus.ACKNOWLEDGED and dict(shown.state.causality) == {
        "anlotinib": "not-related"
    }


async def test_refusals_write_nothing(store, full, now) -> None:
    await a_potential_susar(store, full, now)
    at = DAY0 + timedelta(days=1)
    with pytest.raises(UnknownAlert, match="no alert 'nope'"):
        await record_review(store, review(ActionKind.ACKNOWLEDGE, at, "nope"))
    with pytest.raises(ReviewRefused, match="a dsmb-member may not record expectedness"):
        await record_review(store, review(ActionKind.EXPECTEDNESS, at, role=Role.DSMB_MEMBER, value="expected"))
    with pytest.raises(ReviewRefused, match="no alert 'nope' to be a duplicate of"):
        await record_review(store, review(ActionKind.ADJUDICATE, at, value="duplicate", duplicate_of="nope"))
    assert (await alert_review(store, CLOCK_ALERT)).actions == []
    async with store() as uow:
        assert len(await uow.sae_clocks.open()) == 1


async def test_a_submitted_report_closes_the_clock_once(store, full, now) -> None:
    await a_potential_susar(store, full, now)
    case = (STUDY, S1, "AE-1")
    submitted = DAY0 + timedelta(days=6)

    async def submit(at: datetime) -> ReviewDecision:
        return await record_report_submitted(
            store,
            case,
            user_name="pv-desk",
            reason="sent to the authority",
            at=at,
            submitted_at=submitted,
        )

    decision = await submit(DAY0 + timedelta(days=7))
    assert decision.action.alert_key == CLOCK_ALERT
    async with store() as uow:
        (clock,) = await uow.sae_clocks.for_case(case)
    assert clock.closed_at == submitted and clock.closed_reason is not None
    assert clock.closed_reason.startswith(f"report submitted {submitted.isoformat()} (pv-desk, admin)")
    with pytest.raises(ReviewRefused, match="was already closed at 2026-05-07T08:00"):
        await submit(DAY0 + timedelta(days=8))
    with pytest.raises(ReviewRefused, match="was already closed"):
        await record_review(store, review(ActionKind.EXPECTEDNESS, DAY0 + timedelta(days=9), value="expected"))
    assert (await check_deadlines(store, full, DAY0 + timedelta(days=16))).overdue == 0


async def test_the_queue_shows_open_alerts_and_what_is_new_since_a_reviewers_last_review(store, full, now) -> None:
    await a_potential_susar(store, full, now)
    queue = await review_queue(store)
    assert {(i.alert.key, i.state.status) for i in queue.items} >= {
        (CLOCK_ALERT, ReviewStatus.NEW),
        (HAEMOPTYSIS_ALERT, ReviewStatus.NEW),
    }
    (item,) = [i for i in queue.items if i.alert.key == CLOCK_ALERT]
    assert [c.rule_id for c in item.clocks] == ["sae-reporting-clock"]

    await record_review(store, review(ActionKind.ACKNOWLEDGE, now + timedelta(hours=1)))
    await record_review(
        store, review(ActionKind.ADJUDICATE, now + timedelta(hours=1), HAEMOPTYSIS_ALERT, value="confirmed-signal")
    )
    later = now + timedelta(hours=2)
    await run(store, full, later, inbound(ae(S2, "AE-1", "Haemoptysis", 2, AESER="N")))

    new = await review_queue(store, new_since_last_review=True, reviewer="dr.li")
    assert new.since == now + timedelta(hours=1)
    assert [i.alert.key for i in new.items] == [f"hemoptysis|{STUDY}|{S2}|AE:AE-1"]
    everyone = await review_queue(store, new_since_last_review=True)
    assert [i.alert.key for i in everyone.items] == [i.alert.key for i in new.items]
    never = await review_queue(store, new_since_last_review=True, reviewer="Dr Wang")
    assert never.since is None and len(never.items) == len((await review_queue(store)).items)

    statuses = [i.state.status for i in (await review_queue(store)).items]
    assert statuses == sorted(
        statuses, key=[ReviewStatus.NEW, ReviewStatus.ACKNOWLEDGED, ReviewStatus.ADJUDICATED].index
    )


async def test_the_sql_table_refuses_update_and_delete(database: Database, full, now) -> None:
    await a_potential_susar(database.store, full, now)
    await record_review(database.store, review(ActionKind.COMMENT, now))
    for statement in ("UPDATE review_actions SET reason = 'rewritten'", "DELETE FROM review_actions"):
        async with database.store.engine.connect() as connection:
            with pytest.raises(Exception, match="review_actions is append-only"):
                await connection.execute(text(statement))
    (action,) = (await alert_review(database.store, CLOCK_ALERT)).actions
    assert action.reason == "listed in the investigator's brochure 5.4"


async def test_each_review_action_is_chained_into_the_audit_log_in_its_transaction(store, full, now) -> None:
    await a_potential_susar(store, full, now)  # three accounts added: three audit entries
    at = DAY0 + timedelta(days=1)
    await record_review(store, review(ActionKind.ACKNOWLEDGE, at))
    await record_review(store, review(ActionKind.EXPECTEDNESS, at, value="expected"))
    with pytest.raises(ReviewRefused):
        await record_review(store, review(ActionKind.ACKNOWLEDGE, at))  # already acknowledged: nothing written
    with pytest.raises(ReviewRefused, match="'nobody' is not an active medical-monitor account"):
        await record_review(
            store, ReviewRequest(CLOCK_ALERT, ActionKind.COMMENT, "nobody", Role.MEDICAL_MONITOR, "x", at)
        )
    with pytest.raises(ReviewRefused, match=r"'dr\.li' is not an active admin account"):
        await record_review(store, ReviewRequest(CLOCK_ALERT, ActionKind.COMMENT, "dr.li", Role.ADMIN, "x", at))
    report = await verify_audit_log(store)
    assert (report.intact, report.chain.verified, report.unmatched_reviews) == (True, 5, [])
    async with store() as uow:
        entries = await uow.audit_log.for_target(CLOCK_ALERT)
    assert [(e.actor, e.event) for e in entries] == [("dr.li", "review"), ("dr.li", "review")]
    assert '"kind":"expectedness"' in entries[1].detail and '"clock_effect":"closed"' in entries[1].detail


async def test_concurrent_review_actions_chain_one_after_another(store, full, now) -> None:
    await a_potential_susar(store, full, now)
    at = DAY0 + timedelta(days=1)
    comments = [
        record_review(store, review(ActionKind.COMMENT, at + timedelta(seconds=n), key))
        for n in range(6)
        for key in (CLOCK_ALERT, HAEMOPTYSIS_ALERT)
    ]
    await asyncio.gather(*comments)
    report = await verify_audit_log(store)
    assert (report.intact, report.chain.verified) == (True, 3 + 12)  # never two entries at one position
