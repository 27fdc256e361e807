"""RS assessments and the efficacy SUBJECT events go through the pipeline like the other messages: deduplicated by
msg_id, versioned by record (subject, test, RSDTC), stored on every store."""

from __future__ import annotations

from safety_monitor.domain.messages import OverallResponse, SubjectEventKind
from tests.factories import enrolled_and_dosed, inbound, rs, subject_event, subject_id
from tests.harness import run

S7 = subject_id(7)


async def test_rs_versions_replace_by_record_and_a_lower_version_is_stale(store, config, now) -> None:
    first = rs(S7, "SD", "2026-04-13")
    corrected = rs(S7, "PR", "2026-04-13", version=2)
    late_v1 = rs(S7, "PD", "2026-04-13", version=1)
    outcome = await run(store, config, now, inbound(*enrolled_and_dosed(S7), first, first, corrected))
    assert (outcome.applied, outcome.duplicates, outcome.stale) == (4, 1, 0)
    again = await run(store, config, now, inbound(late_v1, rs(S7, "PD", "2026-05-25")))
    assert (again.applied, again.stale) == (1, 1)
    async with store() as uow:
        current = await uow.tumour_responses.current()
    assert sorted((r.assessed_on.text, r.response, r.envelope.record_version) for r in current) == [
        ("2026-04-13", OverallResponse.PR, 2),
        ("2026-05-25", OverallResponse.PD, 1),
    ]


async def test_randomised_progressed_and_alive_events_are_stored(store, config, now) -> None:
    events = [
        subject_event(S7, "RANDOMIZED", "2026-02-28", drug=None),
        subject_event(S7, "PROGRESSED", "2026-05-20", drug=None),
        subject_event(S7, "ALIVE", "2026-06-30", drug=None),
    ]
    outcome = await run(store, config, now, inbound(*enrolled_and_dosed(S7), *events))
    assert outcome.applied == 5 and outcome.dead_lettered == 0
    async with store() as uow:
        stored = await uow.subjects.events()
        everyone = await uow.subjects.all()
    assert {(e.event, e.event_date.text) for e in stored} >= {
        (SubjectEventKind.RANDOMIZED, "2026-02-28"),
        (SubjectEventKind.PROGRESSED, "2026-05-20"),
        (SubjectEventKind.ALIVE, "2026-06-30"),
    }
    assert ("ALTER-ICI-01", S7) in everyone


async def test_last_complete_finding_dates_ignore_partial_dates_and_dates_after_the_cut(store, config, now) -> None:
    from tests.factories import lb

    messages = [
        lb(S7, "ALT", 30, LBDTC="2026-04-30T07:45"),
        lb(S7, "AST", 30, LBDTC="2026-05-02"),
        lb(S7, "BILI", 10, LBDTC="2026-06"),
        lb(S7, "ALP", 80, LBDTC="2026-07-01"),
    ]
    await run(store, config, now, inbound(*enrolled_and_dosed(S7), *messages))
    async with store() as uow:
        dates = await uow.findings.last_complete_dates("2026-06-15")
    assert dates == {("ALTER-ICI-01", S7): "2026-05-02"}


def test_rs_messages_travel_on_the_subject_topic() -> None:
    from streams.topics import TopicNames

    names = TopicNames()
    assert names.for_msg_type("RS") == names.for_msg_type("SUBJECT") == "safety.subject"
