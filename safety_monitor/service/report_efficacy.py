"""Owns the DSMB report's efficacy figures: OS and PFS (Kaplan-Meier) and the objective response rate."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from safety_monitor.domain import response, survival
from safety_monitor.service.ports import KaplanMeier, Statistics, SubjectKey
from safety_monitor.service.report_inputs import ReportInputs


def _km_json(km: KaplanMeier) -> dict[str, Any]:
    return {
        "subjects": km.events + km.censored,
        "events": km.events,
        "censored": km.censored,
        "median_days": km.median,
        "median_ci95": list(km.median_ci),
        "km": [{"t_days": t, "survival": s, "at_risk": n, "events": d, "censored": c} for t, s, n, d, c in km.steps],
    }


def efficacy(inputs: ReportInputs, stats: Statistics, cut: date) -> dict[str, Any]:
    origin = survival.origins(inputs.events, cut)
    deaths = survival.death_dates(inputs.events, cut)
    rs = survival.assessments(inputs.responses, cut)
    last_alive = _last_known_alive(inputs, rs, cut)
    os_records = survival.overall_survival(origin, deaths, last_alive)
    pfs_records = survival.progression_free_survival(origin, deaths, inputs.events, rs, cut)
    summary = response.summarise({k: v for k, v in rs.items() if k in origin or k in inputs.subjects})
    low, high = stats.clopper_pearson(summary.responders, summary.evaluable)
    return {
        "os": _km_json(stats.kaplan_meier([r.days for r in os_records], [r.event for r in os_records])),
        "pfs": _km_json(stats.kaplan_meier([r.days for r in pfs_records], [r.event for r in pfs_records])),
        "orr": {
            "evaluable": summary.evaluable,
            "responders": summary.responders,
            "rate": summary.responders / summary.evaluable if summary.evaluable else None,
            "ci95": [low, high] if summary.evaluable else [None, None],
            "best_overall_response": dict(summary.best),
            "confirmed": False,
        },
    }


def _last_known_alive(
    inputs: ReportInputs, rs: Mapping[SubjectKey, list[tuple[date, Any]]], cut: date
) -> dict[SubjectKey, date]:
    """The latest complete clinical date of each subject on or before the cut (never a transmission time)."""
    latest: dict[SubjectKey, date] = {}

    def see(key: SubjectKey, day: date | None) -> None:
        if day is not None and day <= cut and (key not in latest or day > latest[key]):
            latest[key] = day

    for e in inputs.events:
        see((e.study_id, e.subject_id), survival.complete_on_or_before(e.event_date, cut))
    for ae in inputs.adverse_events:
        key = (ae.envelope.study_id, ae.envelope.subject_id)
        see(key, survival.complete_on_or_before(ae.onset_date, cut))
        see(key, survival.complete_on_or_before(ae.end_date, cut))
    for key, text in inputs.finding_dates.items():
        see(key, date.fromisoformat(text))
    for key, items in rs.items():
        for day, _ in items:
            see(key, day)
    return latest
