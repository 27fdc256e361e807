"""Every rule kind in the pipeline, on memory, SQLite and PostgreSQL: derived AE grades, patterns in any arrival
order, cohort boundaries, the expedited-reporting clock, and hot reload."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from safety_monitor.cli.rule_tests import default_grader
from safety_monitor.domain.conditions.deadline import SaeClock
from safety_monitor.ruleset.errors import ConfigInvalid
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.deadlines import check_deadlines, close_clocks
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.reload import Configuration, ConfigurationHolder
from tests.conftest import RECIPIENTS, ROOT
from tests.factories import STUDY, ae, inbound, lb, subject_id, vs
from tests.harness import run

S1, S2 = subject_id(1), subject_id(2)


@pytest.fixture(scope="module")
def full() -> PipelineConfig:
    return PipelineConfig(load_ruleset(ROOT / "rules"), default_grader(), RECIPIENTS)


async def alert_state(store: UnitOfWorkFactory, rule_id: str) -> list[tuple[str, str, int, str, str]]:
    async with store() as uow:
        changes = await uow.alerts.changes_since(None)
        keys = {c.alert.key for c in changes if c.alert.rule_id == rule_id}
        alerts = await uow.alerts.get(keys)
    return sorted((a.key, a.status.value, a.grade, a.detail, a.observed_on) for a in alerts.values())


async def test_the_derived_grade_is_stored_beside_the_investigator_grade(store, full, now) -> None:
    await run(
        store, full, now, inbound(ae(S1, "AE-1", "Hypertension", 2, soc="Vascular disorders", onset="2026-04-20"))
    )
    async with store() as uow:
        (event,) = (await uow.adverse_events.current([(STUDY, S1, "AE-1")])).values()
    assert (event.investigator_grade, event.derived_grade, event.derived_term) == (2, None, "Hypertension")

    outcome = await run(store, full, now, inbound(vs(S1, "SYSBP", 172, at="2026-04-25T08:00")))
    async with store() as uow:
        disagreeing = await uow.adverse_events.with_derived_grade()
    assert [(e.ae_spid, e.investigator_grade, e.derived_grade) for e in disagreeing] == [("AE-1", 2, 3)]
    assert outcome.alerts_by_rule["hypertension-ae-grade-3"] == 1  # re-evaluated on the derived grade

    # A follow-up that ends the AE before the reading: derived again from the history, the grade falls to none.
    await run(
        store,
        full,
        now,
        inbound(ae(S1, "AE-1", "Hypertension", 2, version=2, soc="Vascular", onset="2026-04-20", AEENDTC="2026-04-22")),
    )
    async with store() as uow:
        (event,) = (await uow.adverse_events.current([(STUDY, S1, "AE-1")])).values()
    assert (event.derived_grade, event.derived_term) == (None, "Hypertension")


def _hys_law_messages() -> list[dict[str, Any]]:
    return [
        lb(S1, "ALT", 150, LBDTC="2026-05-01T08:00"),
        lb(S1, "ALP", 90, LBSTNRHI=100, LBDTC="2026-05-01T08:00"),
        lb(S1, "BILI", 45, LBSTRESU="umol/L", LBSTNRHI=20.5, LBDTC="2026-05-08T08:00"),
        lb(S1, "ALT", 260, LBDTC="2026-05-15T08:00"),
        vs(S2, "SYSBP", 165, at="2026-05-01T09:00"),
        vs(S2, "DIABP", 101, at="2026-05-06T09:00"),
        vs(S2, "SYSBP", 150, at="2026-05-04T09:00"),
    ]


async def _final_state(store: UnitOfWorkFactory) -> tuple[object, ...]:
    state = []
    for rule in ("potential-hys-law", "hypertension-repeated-160-100", "aminotransferase-above-5x-uln-2-weeks"):
        state.append(await alert_state(store, rule))
    return tuple(state)


@pytest.mark.parametrize("permutations", [3])
async def test_patterns_give_the_same_alerts_in_any_arrival_order(store, full, now, permutations: int) -> None:
    messages = _hys_law_messages()
    rng = random.Random(7)
    order = messages[:]
    rng.shuffle(order)
    for message in order:  # one message per batch: the hardest case for event-time logic
        await run(store, full, now, inbound(message))
    got = await _final_state(store)

    from safety_monitor.adapters.memory.unit_of_work import MemoryStore

    reference = MemoryStore()
    await run(reference, full, now, inbound(*sorted(messages, key=lambda m: str(m.get("LBDTC", m.get("VSDTC"))))))
    expected = await _final_state(reference)
    assert [len(x) for x in expected] == [1, 1, 0]

    assert got == expected
    for seed in range(permutations * 10):  # many more orders on the fast store
        shuffled = MemoryStore()
        order = messages[:]
        random.Random(seed).shuffle(order)
        for message in order:
            await run(shuffled, full, now, inbound(message))
        assert await _final_state(shuffled) == expected


async def test_the_reporting_clock_reminds_once_escalates_when_overdue_and_stops_when_submitted(
    store, full, now
) -> None:
    sae = ae(S1, "AE-1", "Haemoptysis", 3, AESER="Y", AEREL_ANLOTINIB="PROBABLE", sent_at="2026-05-01T08:00:00+00:00")
    outcome = await run(store, full, now, inbound(sae))
    assert outcome.alerts_by_rule["sae-reporting-clock"] == 1
    day0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    report = await check_deadlines(store, full, day0 + timedelta(days=12, hours=1))
    again = await check_deadlines(store, full, day0 + timedelta(days=12, hours=2))
    assert (report.reminders, again.reminders) == (1, 0)  # one reminder 3 days before due, not repeated
    async with store() as uow:
        (clock,) = await uow.sae_clocks.open()
    assert isinstance(clock, SaeClock) and clock.due_at(full.ruleset.deadline_rules[0].condition) == day0 + timedelta(
        15
    )  # type: ignore[arg-type]

    overdue = await check_deadlines(store, full, day0 + timedelta(days=16))
    assert overdue.overdue == 1
    kinds = [kind for _, _, kind in await _changes(store, "sae-reporting-clock")]
    assert kinds == ["raised", "reminder", "escalated"]

    closed = await close_clocks(store, (STUDY, S1, "AE-1"), "report submitted", day0 + timedelta(days=16, hours=1))
    assert [c.closed_reason for c in closed] == ["report submitted"]
    async with store() as uow:
        assert await uow.sae_clocks.open() == []
    assert (await check_deadlines(store, full, day0 + timedelta(days=30))).overdue == 0


async def _changes(store: UnitOfWorkFactory, rule_id: str) -> list[tuple[str, int, str]]:
    async with store() as uow:
        changes = await uow.alerts.changes_since(None)
    return [(c.alert.key, c.alert.grade, c.kind.value) for c in changes if c.alert.rule_id == rule_id]


async def test_a_fatal_follow_up_moves_the_due_date_to_day_7_of_its_receipt(store, full, now) -> None:
    first = ae(S1, "AE-1", "Pneumonitis", 3, AESER="Y", AEREL_ICI="RELATED", sent_at="2026-05-01T08:00:00+00:00")
    fatal = ae(
        S1,
        "AE-1",
        "Pneumonitis",
        5,
        version=2,
        AESER="Y",
        AESDTH="Y",
        AEREL_ICI="RELATED",
        sent_at="2026-05-03T08:00:00+00:00",
    )
    await run(store, full, now, inbound(first))
    await run(store, full, now, inbound(fatal))
    async with store() as uow:
        (clock,) = await uow.sae_clocks.open()
    condition = full.ruleset.deadline_rules[0].condition
    assert clock.due_at(condition) == datetime(2026, 5, 10, 8, 0, tzinfo=UTC)  # type: ignore[arg-type]
    assert sorted(k for _, _, k in await _changes(store, "sae-reporting-clock")) == ["escalated", "raised"]


async def test_the_cohort_boundary_reports_the_posterior_beside_the_cutoff(store, full, now) -> None:
    from tests.factories import subject_event

    dosed = [subject_event(subject_id(n), "FIRST_DOSE", "2026-03-01") for n in range(1, 6)]
    await run(store, full, now, inbound(*dosed, ae(S1, "AE-1", "Pneumonitis", 3, onset="2026-05-01")))
    assert await alert_state(store, "cohort-pneumonitis-haemorrhage-grade-3") == []
    outcome = await run(store, full, now, inbound(ae(S2, "AE-1", "Haemoptysis", 3, onset="2026-05-02")))
    assert outcome.alerts_by_rule["cohort-pneumonitis-haemorrhage-grade-3"] == 1
    ((key, _status, _, detail, observed),) = await alert_state(store, "cohort-pneumonitis-haemorrhage-grade-3")
    assert key == f"cohort-pneumonitis-haemorrhage-grade-3|{STUDY}|COHORT" and observed == "2026-05-02"
    assert detail.startswith("2 of 5 evaluable subjects as of 2026-05-02: Pr(rate > 0.1) = 0.9")
    assert "against cutoff 0.9 (Beta(0.2, 1.8) prior); boundary CROSSED" in detail


@pytest.mark.parametrize("arrival", ["later-onset-first", "doses-last", "one-batch-reversed"])
async def test_the_cohort_boundary_is_crossed_whatever_the_order_its_records_arrive_in(
    store, full, now, arrival: str
) -> None:
    """The same five dosed subjects and two grade 3 events as above, arriving out of onset order (a site's late
    data entry; subjects on different Kafka partitions): the boundary is crossed on 2026-05-02 all the same, and
    the alert says what the in-order arrival says."""
    from tests.factories import subject_event

    dosed = [subject_event(subject_id(n), "FIRST_DOSE", "2026-03-01") for n in range(1, 6)]
    earlier = ae(S1, "AE-1", "Pneumonitis", 3, onset="2026-05-01")
    later = ae(S2, "AE-1", "Haemoptysis", 3, onset="2026-05-02")
    if arrival == "later-onset-first":  # the later look, taken first, lacks the earlier event
        batches = [inbound(*dosed, later), inbound(earlier)]
    elif arrival == "doses-last":  # the events come before the subjects are known to be dosed
        batches = [inbound(later), inbound(earlier), inbound(*dosed)]
    else:
        batches = [inbound(later, earlier, *reversed(dosed))]
    raised = 0
    for batch in batches:
        outcome = await run(store, full, now, batch)
        raised += outcome.alerts_by_rule.get("cohort-pneumonitis-haemorrhage-grade-3", 0)
    assert raised == 1
    ((key, _status, _, detail, observed),) = await alert_state(store, "cohort-pneumonitis-haemorrhage-grade-3")
    assert key == f"cohort-pneumonitis-haemorrhage-grade-3|{STUDY}|COHORT" and observed == "2026-05-02"
    assert detail.startswith("2 of 5 evaluable subjects as of 2026-05-02: Pr(rate > 0.1) = 0.9")


async def test_an_ae_lowered_below_the_cohort_grade_leaves_the_boundary_and_its_look(store, full, now) -> None:
    """The cohort counts AEs at grade 3 or more: a follow-up that lowers one to grade 2 takes its subject out of the
    count and its look out of the hits."""
    from safety_monitor.service.cohorts import cohort_hits
    from tests.factories import subject_event

    dosed = [subject_event(subject_id(n), "FIRST_DOSE", "2026-03-01") for n in range(1, 6)]
    s3 = subject_id(3)
    await run(store, full, now, inbound(*dosed, ae(S1, "AE-1", "Pneumonitis", 3, onset="2026-05-01")))
    await run(store, full, now, inbound(ae(S2, "AE-1", "Haemoptysis", 3, onset="2026-05-02")))
    await run(store, full, now, inbound(ae(S2, "AE-1", "Haemoptysis", 2, version=2, onset="2026-05-02")))
    await run(
        store,
        full,
        now,
        inbound(ae(s3, "AE-1", "Haemoptysis", 3, onset="2026-05-03"), ae(s3, "AE-2", "Pneumonitis", 1)),
    )
    async with store() as uow:
        latest = list((await uow.adverse_events.current([(STUDY, s3, "AE-1")])).values())
        hits = await cohort_hits(uow, full.ruleset, full.grader.ctcae_version, latest, [])
        graded = await uow.adverse_events.sourced_facts(["haemoptysis", "PNEUMONITIS"], 3)
        every = await uow.adverse_events.sourced_facts(["haemoptysis", "PNEUMONITIS"])
    # S1 alone on 2026-05-01 does not cross; S2's look is gone; S1 and S3 cross on 2026-05-03.
    assert [(h.observed_on, h.detail.split(":")[0]) for h in hits] == [
        ("2026-05-03", "2 of 5 evaluable subjects as of 2026-05-03")
    ]
    assert sorted((r.fact.subject_id, r.aespid, r.fact.grade) for r in graded) == [(S1, "AE-1", 3), (s3, "AE-1", 3)]
    assert sorted((r.fact.subject_id, r.aespid, r.fact.grade) for r in every) == [
        (S1, "AE-1", 3),
        (S2, "AE-1", 2),
        (s3, "AE-1", 3),
        (s3, "AE-2", 1),
    ]


def test_a_failed_reload_keeps_the_last_good_ruleset_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {id: a, title: t, severity: high, when: {kind: ae, terms: [Haemoptysis]}}\n"
    )
    swapped: list[Configuration] = []
    holder = ConfigurationHolder(
        Configuration(load_ruleset(tmp_path)), lambda: Configuration(load_ruleset(tmp_path)), swapped.append
    )
    good = holder.ruleset.content_hash
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {id: a, title: t, severity: high, when: {kind: ae, terms: [Haemoptysis], grade_at_least: 6}}\n"
    )
    result = holder.reload()
    assert not result.ok and result.ruleset_hash == good and holder.ruleset.content_hash == good
    assert "grade_at_least: 6 is impossible: CTCAE grades run 1-5" in result.error and swapped == []
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {id: a, title: t, severity: high, when: {kind: ae, terms: [Haemoptysis], grade_at_least: 3}}\n"
    )
    result = holder.reload()
    assert result.ok and result.changed and holder.ruleset.content_hash != good and swapped == [holder.current]
    assert holder.reload().changed is False
    with pytest.raises(ConfigInvalid):
        load_ruleset(tmp_path / "missing")


def test_notices_carry_the_rules_recommendation_and_rendered_annotations(full, now) -> None:
    import json

    from safety_monitor.domain.alerts import on_hit
    from safety_monitor.domain.rules import evaluate_ae
    from safety_monitor.service.pipeline import alert_notice
    from streams.decoding import decode
    from streams.embedded import to_service

    item = to_service(decode(json.dumps(ae(S1, "AE-1", "Haemoptysis", 2)), "t:1"))
    (hit,) = [h for h in evaluate_ae(full.ruleset, item.message, "5.0") if h.rule.id == "hemoptysis"]  # type: ignore[union-attr, arg-type]
    _, change = on_hit(None, hit, now)
    assert change is not None
    context = alert_notice(change, RECIPIENTS, full.ruleset).context
    assert context["recommendation"] == "hold"
    assert context["annotations"] == {
        "summary": f"{S1}: Haemoptysis grade 2 (onset 2026-04-29)",
        "description": "Haemoptysis grade 2 (investigator), reported as 'coughing up blood'. Grade 2: hold "
        "anlotinib; grade >= 3: discontinue.",
    }
