"""Owns the DSMB report's safety listings: deaths, new serious AEs with their SUSAR clocks, cohort boundary paths."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from safety_monitor.domain import imputation
from safety_monitor.domain.conditions.ae import is_fatal
from safety_monitor.domain.conditions.cohort import CohortCondition
from safety_monitor.domain.conditions.deadline import DeadlineCondition
from safety_monitor.domain.incidence import AeFact
from safety_monitor.domain.messages import SubjectEventKind
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service.ports import SubjectKey
from safety_monitor.service.report_inputs import ReportInputs

BOUNDARY_STEP = timedelta(days=7)  # the path of a cohort boundary: one point a week, and the cut


def deaths(inputs: ReportInputs, cut: date) -> list[dict[str, Any]]:
    fatal: dict[SubjectKey, Any] = {}
    for event in inputs.adverse_events:
        if is_fatal(event):
            fatal.setdefault((event.envelope.study_id, event.envelope.subject_id), event)
    found: dict[SubjectKey, dict[str, Any]] = {}
    for e in inputs.events:
        day = imputation.earliest(e.event_date)
        key = (e.study_id, e.subject_id)
        if e.event is SubjectEventKind.DIED and day is not None and day <= cut:
            if key in found and found[key]["date"] <= day.isoformat():
                continue
            ae = fatal.get(key)
            cause = e.reason or (ae.preferred_term if ae is not None else None)
            found[key] = {
                "study_id": key[0],
                "subject_id": key[1],
                "date": day.isoformat(),
                "date_as_sent": e.event_date.text,
                "cause": cause,
                "source": "DIED",
            }
    for key, ae in fatal.items():
        day = imputation.earliest(ae.end_date or ae.onset_date)
        if key not in found and day is not None and day <= cut:
            text = (ae.end_date or ae.onset_date).text
            found[key] = {
                "study_id": key[0],
                "subject_id": key[1],
                "date": day.isoformat(),
                "date_as_sent": text,
                "cause": ae.preferred_term,
                "source": "AE",
            }
    return sorted(found.values(), key=lambda d: (d["date"], d["subject_id"]))


def new_serious(
    inputs: ReportInputs, ruleset: Ruleset, first_doses: Mapping[SubjectKey, date], cut: date, since_at: datetime
) -> list[dict[str, Any]]:
    until = datetime.combine(cut + timedelta(days=1), time(), tzinfo=UTC)
    rows = []
    for event in inputs.adverse_events:
        sent = inputs.first_serious_sent.get(event.record_key)
        if sent is None or not since_at <= sent < until:
            continue
        clocks = []
        for clock in inputs.clocks.get(event.record_key, []):
            rule = ruleset.by_id(clock.rule_id)
            due = (
                clock.due_at(rule.condition)
                if rule is not None and isinstance(rule.condition, DeadlineCondition)
                else None
            )
            clocks.append(
                {
                    "rule_id": clock.rule_id,
                    "started_at": clock.started_at.isoformat(),
                    "due_at": due.isoformat() if due is not None else None,
                    "closed_at": clock.closed_at.isoformat() if clock.closed_at else None,
                    "closed_reason": clock.closed_reason,
                    "overdue": due is not None and clock.closed_at is None and due < until,
                }
            )
        env = event.envelope
        rows.append(
            {
                "study_id": env.study_id,
                "subject_id": env.subject_id,
                "aespid": event.ae_spid,
                "pt": event.preferred_term,
                "soc": event.system_organ_class,
                "verbatim": event.verbatim_term,
                "grade": event.investigator_grade,
                "onset": event.onset_date.text if event.onset_date else None,
                "first_reported_serious": sent.isoformat(),
                "fatal": is_fatal(event),
                "causality": {"anlotinib": event.causality_anlotinib, "ici": event.causality_ici},
                "expectedness": inputs.expectedness.get(event.record_key),
                "susar_clocks": clocks,
            }
        )
    return sorted(rows, key=lambda r: (r["first_reported_serious"], r["subject_id"], r["aespid"]))


def boundaries(
    inputs: ReportInputs, ruleset: Ruleset, first_doses: Mapping[SubjectKey, date], cut: date
) -> list[dict[str, Any]]:
    facts = [
        AeFact(
            e.envelope.study_id,
            e.envelope.subject_id,
            e.system_organ_class,
            e.preferred_term,
            e.investigator_grade or 0,
            e.onset_date,
        )
        for e in inputs.adverse_events
    ]
    doses: dict[tuple[str, str], date | None] = dict(first_doses)
    studies = sorted({key[0] for key in first_doses})
    start = min(first_doses.values()) if first_doses else cut
    days = []
    day = start
    while day < cut:
        days.append(day)
        day += BOUNDARY_STEP
    days.append(cut)
    out = []
    for rule in ruleset.cohort_rules:
        condition = rule.condition
        if not isinstance(condition, CohortCondition):
            continue
        qualifying = [f for f in facts if condition.qualifies(f.pt, f.grade)]  # once, not at every evaluation date
        for study in studies:
            path = []
            for on in days:
                status = condition.evaluate(study, on, qualifying, doses)
                path.append(
                    {
                        "on": on.isoformat(),
                        "events": status.events,
                        "evaluable": status.evaluable,
                        "statistic": status.status.statistic,
                        "boundary": status.status.boundary,
                        "crossed": status.status.crossed,
                    }
                )
            last = path[-1]
            out.append(
                {
                    "rule_id": rule.id,
                    "title": rule.title,
                    "study_id": study,
                    "statistic_name": "Pr(rate > theta | data)" if hasattr(condition.boundary, "theta") else "LLR",
                    "events": last["events"],
                    "evaluable": last["evaluable"],
                    "statistic": last["statistic"],
                    "boundary": last["boundary"],
                    "crossed": last["crossed"],
                    "path": path,
                }
            )
    return out
