"""The runtime contract, run the same way on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.domain.alerts import AlertStatus
from safety_monitor.service.handling import HandlingPolicy, handle_batch
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.views import incidence_table
from tests.factories import ae, enrolled_and_dosed, inbound, subject_id, vs
from tests.harness import notices, run
from tests.hostile import PoisonGrader

S7 = subject_id(7)


async def alerts(store: UnitOfWorkFactory, *keys: str) -> dict[str, object]:
    async with store() as uow:
        return dict(await uow.alerts.get(keys))


async def test_first_report_raises_one_alert_and_one_notice(store, config, now) -> None:
    outcome = await run(store, config, now, inbound(*enrolled_and_dosed(S7), ae(S7, "AE-1", "Haemoptysis", 2)))
    assert (outcome.applied, outcome.hits, outcome.notices) == (3, 1, 1)
    assert outcome.alerts_by_rule == {"hemoptysis": 1}
    assert await notices(store, now) == [("raised", "hemoptysis", 2)]


async def test_duplicate_message_is_acknowledged_and_skipped(store, config, now) -> None:
    message = ae(S7, "AE-1", "Haemoptysis", 2)
    await run(store, config, now, inbound(message))
    again = await run(store, config, now, inbound(message, message))
    assert (again.duplicates, again.applied, again.notices, again.dead_lettered) == (2, 0, 0, 0)
    assert len(await notices(store, now)) == 1


async def test_a_reserialised_redelivery_is_a_duplicate_not_a_conflict(store, config, now) -> None:
    message = ae(S7, "AE-1", "Haemoptysis", 2)
    reordered = json.dumps(dict(reversed(list(message.items()))), indent=1)
    await run(store, config, now, inbound(message))
    outcome = await run(store, config, now, inbound(reordered, json.dumps(message, indent=2)))
    assert (outcome.duplicates, outcome.conflicts, outcome.dead_lettered) == (2, 0, 0)


async def test_same_msg_id_with_other_content_is_a_conflict_kept_in_dead_letters(store, config, now) -> None:
    first = ae(S7, "AE-1", "Haemoptysis", 2, msg_id="dup-1")
    second = ae(S7, "AE-1", "Haemoptysis", 4, msg_id="dup-1")
    await run(store, config, now, inbound(first))
    outcome = await run(store, config, now, inbound(second))
    assert (outcome.conflicts, outcome.dead_lettered, outcome.applied) == (1, 1, 0)
    async with store() as uow:
        letters = await uow.dead_letters.list()
        current = await uow.adverse_events.current([("ALTER-ICI-01", S7, "AE-1")])
    assert "msg_id conflict" in letters[0][0].reason
    assert json.loads(letters[0][0].payload)["AETOXGR"] == 4  # the second version is kept, not merged
    assert current[("ALTER-ICI-01", S7, "AE-1")].investigator_grade == 2


async def test_follow_up_raising_the_grade_escalates_at_once(store, config, now) -> None:
    await run(store, config, now, inbound(ae(S7, "AE-1", "Haemoptysis", 2)))
    outcome = await run(store, config, now, inbound(ae(S7, "AE-1", "Haemoptysis", 3, version=2)))
    assert outcome.notices == 1 and outcome.alerts_by_rule == {}
    assert sorted(await notices(store, now)) == [("escalated", "hemoptysis", 3), ("raised", "hemoptysis", 2)]


async def test_stale_follow_up_is_ignored_and_counted(store, config, now) -> None:
    await run(store, config, now, inbound(ae(S7, "AE-1", "Haemoptysis", 3, version=2)))
    outcome = await run(store, config, now, inbound(ae(S7, "AE-1", "Haemoptysis", 1, version=1)))
    assert (outcome.stale, outcome.applied, outcome.notices) == (1, 0, 0)
    async with store() as uow:
        current = await uow.adverse_events.current([("ALTER-ICI-01", S7, "AE-1")])
    assert current[("ALTER-ICI-01", S7, "AE-1")].investigator_grade == 3


async def test_a_batch_gives_the_same_result_as_one_message_at_a_time(store, config, now) -> None:
    later, earlier = ae(S7, "AE-1", "Haemoptysis", 3, version=2), ae(S7, "AE-1", "Haemoptysis", 2, version=1)
    outcome = await run(store, config, now, inbound(later, earlier))
    assert (outcome.applied, outcome.stale) == (1, 1)
    assert await notices(store, now) == [("raised", "hemoptysis", 3)]

    one_by_one = MemoryStore()
    for message in (later, earlier):
        await run(one_by_one, config, now, inbound(message))
    assert await notices(one_by_one, now) == await notices(store, now)


async def test_correction_that_removes_the_basis_sends_an_update_and_keeps_the_alert(store, config, now) -> None:
    await run(store, config, now, inbound(ae(S7, "AE-1", "Haemoptysis", 2)))
    corrected = ae(S7, "AE-1", "Epistaxis", 2, version=2)
    outcome = await run(store, config, now, inbound(corrected))
    assert outcome.notices == 1
    found = await alerts(store, f"hemoptysis|ALTER-ICI-01|{S7}|AE:AE-1")
    (alert,) = found.values()
    assert alert.status is AlertStatus.BASIS_REMOVED  # type: ignore[attr-defined]
    assert ("basis_removed", "hemoptysis", 2) in await notices(store, now)


async def test_lower_grade_correction_lowers_incidence(store, config, now) -> None:
    await run(
        store,
        config,
        now,
        inbound(*enrolled_and_dosed(S7), ae(S7, "AE-2", "Hypertension", 3, soc="Vascular disorders")),
    )
    await run(store, config, now, inbound(ae(S7, "AE-2", "Hypertension", 2, version=2, soc="Vascular disorders")))
    rows = {(r.pt, r.grade_band): r.subjects for r in await incidence_table(store)}
    assert rows == {("Hypertension", "any"): 1, ("Hypertension", ">=3"): 0}


async def test_unknown_subject_alerts_at_once_and_enters_incidence_when_dosed(store, config, now) -> None:
    stranger = subject_id(1, site="099")
    outcome = await run(store, config, now, inbound(ae(stranger, "AE-9", "Haemoptysis", 3)))
    assert outcome.alerts_by_rule == {"hemoptysis": 1}
    assert await incidence_table(store) == []
    async with store() as uow:
        assert await uow.adverse_events.unknown_subject_count() == 1
    await run(store, config, now, inbound(*enrolled_and_dosed(stranger)))
    rows = {(r.pt, r.grade_band): (r.subjects, r.denominator) for r in await incidence_table(store)}
    assert rows == {("Haemoptysis", "any"): (1, 1), ("Haemoptysis", ">=3"): (1, 1)}


async def test_incidence_counts_a_subject_once_per_term_at_the_worst_grade(store, config, now) -> None:
    s8 = subject_id(8)
    batch = inbound(
        *enrolled_and_dosed(S7),
        *enrolled_and_dosed(s8),
        *enrolled_and_dosed(subject_id(9)),
        ae(S7, "AE-1", "Diarrhoea", 1, soc="Gastrointestinal disorders"),
        ae(S7, "AE-2", "diarrhoea", 3, soc="Gastrointestinal disorders"),
        ae(s8, "AE-1", "Diarrhoea", 2, soc="Gastrointestinal disorders"),
    )
    await run(store, config, now, batch)
    rows = [(r.pt, r.grade_band, r.subjects, r.denominator, r.percent) for r in await incidence_table(store)]
    assert rows == [("Diarrhoea", "any", 2, 3, 66.7), ("Diarrhoea", ">=3", 1, 3, 33.3)]


async def test_treatment_emergent_restriction_uses_partial_dates(store, config, now) -> None:
    batch = inbound(
        *enrolled_and_dosed(S7, first_dose="2026-03-10"),
        ae(S7, "AE-1", "Fatigue", 1, soc="General disorders", onset="2026-03-01"),  # before first dose
        ae(S7, "AE-2", "Rash", 1, soc="Skin", onset="2026-03"),  # same month: undecidable -> emergent
        ae(S7, "AE-3", "Cough", 1, soc="Respiratory", onset="2026-03-10"),
    )
    await run(store, config, now, batch)
    emergent = {r.pt for r in await incidence_table(store, treatment_emergent_only=True)}
    everything = {r.pt for r in await incidence_table(store)}
    assert emergent == {"Rash", "Cough"}
    assert everything == {"Fatigue", "Rash", "Cough"}


async def test_blood_pressure_reading_raises_the_hypertension_alert_once_per_subject(store, config, now) -> None:
    outcome = await run(
        store,
        config,
        now,
        inbound(vs(S7, "SYSBP", 165), vs(S7, "DIABP", 104), vs(S7, "SYSBP", 150, at="2026-05-03T09:00")),
    )
    assert outcome.hits == 2 and outcome.alerts_by_rule == {"hypertension-grade-3": 1}
    assert await notices(store, now) == [("raised", "hypertension-grade-3", 3)]


async def test_rejected_messages_are_dead_lettered_once_and_counted_on_repeat(store, config, now) -> None:
    bad = ae(S7, "AE-1", "Haemoptysis", 6)
    first = await run(store, config, now, inbound(bad, "{not json"))
    second = await run(store, config, now, inbound(bad))
    assert (first.dead_lettered, second.dead_lettered) == (2, 1)
    async with store() as uow:
        letters = {letter.reason: count for letter, count in await uow.dead_letters.list()}
    assert letters[f"message {bad['msg_id']} (AE): AETOXGR: grade 6 is impossible: CTCAE grades run 1-5"] == 2
    assert len(letters) == 2


async def test_every_hit_and_alert_records_the_ruleset_and_ctcae_version(store, config, now) -> None:
    await run(store, config, now, inbound(ae(S7, "AE-1", "Haemoptysis", 2)))
    (alert,) = (await alerts(store, f"hemoptysis|ALTER-ICI-01|{S7}|AE:AE-1")).values()
    assert alert.ruleset_hash == config.ruleset.content_hash  # type: ignore[attr-defined]
    assert alert.ctcae_version == "5.0"  # type: ignore[attr-defined]


async def test_a_failing_batch_leaves_nothing_behind(store, config, now) -> None:
    class Boom(Exception):
        pass

    class ExplodingGrader:
        ctcae_version = "5.0"

        def uses_baseline(self, test_code: str) -> bool:
            return False

        def grade(self, finding: object, baseline: object, same_draw: object = None) -> tuple[()]:
            raise Boom("grader failed")

    broken = PipelineConfig(config.ruleset, ExplodingGrader(), config.alert_recipients)  # type: ignore[arg-type]
    with pytest.raises(Boom):
        await run(store, broken, now, inbound(ae(S7, "AE-1", "Haemoptysis", 2), vs(S7)))
    # Rolled back: the same messages are new again, and process normally.
    outcome = await run(store, config, now, inbound(ae(S7, "AE-1", "Haemoptysis", 2)))
    assert outcome.applied == 1 and outcome.duplicates == 0


async def test_a_poison_message_is_isolated_and_dead_lettered_the_rest_is_processed(store, config, now) -> None:
    poisoned = PipelineConfig(config.ruleset, PoisonGrader(), config.alert_recipients)  # type: ignore[arg-type]
    batch = inbound(ae(S7, "AE-1", "Haemoptysis", 2), vs(S7, "SYSBP", 666), vs(S7, "SYSBP", 120, at="2026-05-05T08:00"))
    outcome = await handle_batch(store, batch, poisoned, FixedClock(now), HandlingPolicy(attempts=2, first_backoff_s=0))
    assert (outcome.applied, outcome.handler_failures, outcome.dead_lettered) == (2, 1, 1)
    assert outcome.alerts_by_rule == {"hemoptysis": 1}
    async with store() as uow:
        ((letter, count),) = await uow.dead_letters.list()
    assert letter.reason == "handler error: ValueError: cannot grade this" and count == 1
