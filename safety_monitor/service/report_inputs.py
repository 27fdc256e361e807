"""Owns reading what the DSMB report needs from the system of record, in one transaction (one consistent cut)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from safety_monitor.domain.alerts import Alert
from safety_monitor.domain.conditions.deadline import SaeClock
from safety_monitor.domain.messages import AdverseEvent, TumourResponse
from safety_monitor.domain.review import ActionKind
from safety_monitor.domain.rules import Ruleset, ae_alert_key
from safety_monitor.domain.subjects import Subject, SubjectEventFact
from safety_monitor.service.ports import AeKey, SubjectKey, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class ReportInputs:
    subjects: dict[SubjectKey, Subject]
    events: list[SubjectEventFact]
    adverse_events: list[AdverseEvent]
    responses: list[TumourResponse]
    finding_dates: dict[SubjectKey, str]  # latest complete LB/VS/EG date on or before the cut
    first_serious_sent: dict[AeKey, datetime]
    alert_status: dict[tuple[str, str], int]
    open_alerts: list[Alert]
    clocks: dict[AeKey, list[SaeClock]]
    expectedness: dict[AeKey, str]  # the latest expectedness a reviewer recorded on any alert of the AE


async def read_inputs(store: UnitOfWorkFactory, ruleset: Ruleset, cut: date, since: datetime) -> ReportInputs:
    async with store() as uow:
        subjects = await uow.subjects.all()
        events = await uow.subjects.events()
        adverse_events = await uow.adverse_events.for_subjects(subjects)
        responses = await uow.tumour_responses.current()
        finding_dates = await uow.findings.last_complete_dates(cut.isoformat())
        first_serious = await uow.adverse_events.first_serious_sent()
        alert_status = await uow.alerts.status_counts()
        open_alerts = await uow.alerts.open()
        new_serious = [e for e in adverse_events if first_serious.get(e.record_key, since) >= since]
        new_serious = [e for e in new_serious if e.record_key in first_serious]
        clocks: dict[AeKey, list[SaeClock]] = {}
        expectedness: dict[AeKey, str] = {}
        for event in new_serious:
            clocks[event.record_key] = await uow.sae_clocks.for_case(event.record_key)
            keys = [ae_alert_key(rule.id, event) for rule in ruleset.ae_rules]
            actions = await uow.review_actions.for_alerts(keys)
            recorded = sorted(
                (a for items in actions.values() for a in items if a.kind is ActionKind.EXPECTEDNESS and a.new_value),
                key=lambda a: a.at,
            )
            if recorded:
                expectedness[event.record_key] = str(recorded[-1].new_value)
    return ReportInputs(
        subjects,
        events,
        adverse_events,
        responses,
        finding_dates,
        first_serious,
        alert_status,
        open_alerts,
        clocks,
        expectedness,
    )
