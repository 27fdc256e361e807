"""Owns the DSMB safety report's figures: population, exposure, AE tables, EAIR, deaths, boundaries, OS, PFS, ORR.

Every figure is computed here from the system of record as of a data cut, unrounded; the HTML and the mail are
rendered from this same dictionary (adapters/report_render.py), and `--format json` prints it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from safety_monitor.domain import ae_summary, exposure, imputation, response, survival
from safety_monitor.domain.conditions.ae import AeCondition, is_fatal
from safety_monitor.domain.conditions.cohort import CohortCondition
from safety_monitor.domain.conditions.deadline import DeadlineCondition
from safety_monitor.domain.incidence import AeFact
from safety_monitor.domain.messages import SubjectEventKind
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service.ports import KaplanMeier, Statistics, SubjectKey, UnitOfWorkFactory
from safety_monitor.service.report_inputs import ReportInputs, read_inputs

PER_100 = 100.0
BOUNDARY_STEP = timedelta(days=7)  # the path of a cohort boundary: one point a week, and the cut


def report_window(as_of: date, since: date | None) -> tuple[date, datetime]:
    """The data cut and the start of "new since the last report" (a week before the cut by default: the DSMB's
    weekly report)."""
    start = since if since is not None else as_of - timedelta(days=7)
    return as_of, datetime.combine(start, time(), tzinfo=UTC)


async def build_report(
    store: UnitOfWorkFactory, ruleset: Ruleset, stats: Statistics, *, as_of: date, since: date | None = None
) -> dict[str, Any]:
    cut, since_at = report_window(as_of, since)
    inputs = await read_inputs(store, ruleset, cut, since_at)
    return assemble(inputs, ruleset, stats, cut, since_at)


def assemble(
    inputs: ReportInputs, ruleset: Ruleset, stats: Statistics, cut: date, since_at: datetime
) -> dict[str, Any]:
    exposures = exposure.subject_exposures(inputs.events, cut)
    first_doses = {key: e.first_dose for key, e in exposures.items()}
    safety_n = len(exposures)
    teaes = ae_summary.treatment_emergent(inputs.adverse_events, first_doses, cut)
    deaths = _deaths(inputs, cut)
    return {
        "data_cut": cut.isoformat(),
        "new_since": since_at.isoformat(),
        "population": _population(inputs, exposures, deaths, cut),
        "exposure": {
            "subjects": safety_n,
            "person_years": exposure.total_years(exposures),
            "days": sum(e.days for e in exposures.values()),
            "by_drug": exposure.years_by_drug(exposures),
        },
        "ae_overview": _percent(ae_summary.overview(teaes, _immune_terms(ruleset)), safety_n),
        "soc_pt": [
            {
                "soc": row.soc,
                "pt": row.pt,
                "by_grade": list(row.by_grade),
                "subjects": row.subjects,
                "percent": _pct(row.subjects, safety_n),
                "grade_3_plus": sum(row.by_grade[2:]),
            }
            for row in ae_summary.worst_grades(teaes)
        ],
        "eair": [_eair_row(row, stats) for row in ae_summary.eair_counts(teaes, exposures)],
        "aesi": [
            {
                "signal": row.signal,
                "terms": list(row.terms),
                "grade_at_least": row.grade_at_least,
                "subjects": row.subjects,
                "percent": _pct(row.subjects, safety_n),
                "onset_day_median": row.median_onset_day,
                "onset_day_range": [min(row.onset_days), max(row.onset_days)] if row.onset_days else None,
            }
            for row in ae_summary.special_interest(teaes, _signals(ruleset))
        ],
        "new_serious": _new_serious(inputs, ruleset, first_doses, cut, since_at),
        "deaths": deaths,
        "alerts": [
            {"rule_id": rule_id, "status": status, "alerts": n}
            for (rule_id, status), n in sorted(inputs.alert_status.items())
        ],
        "open_review": {
            "open_alerts": len(inputs.open_alerts),
            "by_severity": _count(a.severity for a in inputs.open_alerts),
            "oldest": [
                {
                    "rule_id": a.rule_id,
                    "subject_id": a.subject_id,
                    "term": a.term,
                    "grade": a.grade,
                    "severity": a.severity,
                    "raised_at": a.raised_at.isoformat(),
                }
                for a in inputs.open_alerts[:15]
            ],
        },
        "boundaries": _boundaries(inputs, ruleset, first_doses, cut),
        **_efficacy(inputs, stats, cut),
        "methods": METHODS,
    }


METHODS = {
    "population": (
        "Enrolled: an ENROLLED event on or before the cut. Randomised: a RANDOMIZED event. Safety population: at "
        "least one dose (FIRST_DOSE of either drug). On treatment: in the safety population, no end of treatment "
        "on or before the cut. Discontinued: treatment ended other than by completion or death, by the reason of "
        "the last DISCONTINUED event (text before the first colon). Died: a DIED event on or before the cut."
    ),
    "exposure": exposure.METHOD,
    "adverse_events": ae_summary.TEAE_METHOD,
    "eair": ae_summary.EAIR_METHOD,
    "partial_dates": imputation.METHOD,
    "aesi": (
        "AEs of special interest are the rules' signals: the PTs of the AE rules sharing a `signal` label, at the "
        "lowest grade any of them asks for. Time to first onset in study days (day 1 = first dose). Immune-related: "
        "AEIRAE = Y, or a PT of an AE rule labelled drug: ici."
    ),
    "new_serious": (
        "New serious AEs: AE records whose first version marked serious (AESER = Y) was sent on or after the start "
        "of the period, with per-drug causality (AEREL_*), the latest expectedness a reviewer recorded and the "
        "expedited-reporting (SUSAR) clock of the case."
    ),
    "deaths": (
        "Every DIED event on or before the cut, with its REASON as the cause (the fatal AE's PT where no reason "
        "is given); subjects with a fatal AE (grade 5, AESDTH = Y or AEOUT = FATAL) and no DIED event are listed "
        "too, dated by the AE's end date (else onset)."
    ),
    "boundaries": (
        "Each cohort rule evaluated weekly from the first dose in the study to the cut, as the rules engine "
        "evaluates it: events and evaluable subjects, the posterior probability (beta-binomial) or log-likelihood "
        "ratio (SPRT) against its boundary."
    ),
    "survival": survival.METHOD,
    "orr": response.METHOD,
}


def _pct(n: int, denominator: int) -> float:
    return PER_100 * n / denominator if denominator else 0.0


def _percent(counts: Mapping[str, int], denominator: int) -> dict[str, Any]:
    return {key: {"subjects": n, "percent": _pct(n, denominator)} for key, n in counts.items()}


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))


def _eair_row(row: ae_summary.EairCount, stats: Statistics) -> dict[str, Any]:
    low, high = stats.poisson_interval(row.subjects)
    years = row.person_years
    scale = PER_100 / years if years > 0 else float("nan")
    return {
        "soc": row.soc,
        "pt": row.pt,
        "subjects": row.subjects,
        "person_years": years,
        "per_100py": row.subjects * scale if years > 0 else None,
        "ci95": [low * scale, high * scale] if years > 0 else [None, None],
    }


def _immune_terms(ruleset: Ruleset) -> frozenset[str]:
    terms: set[str] = set()
    for rule in ruleset.ae_rules:
        if dict(rule.labels).get("drug") == "ici" and isinstance(rule.condition, AeCondition):
            terms |= rule.condition.terms
    return frozenset(terms)


def _signals(ruleset: Ruleset) -> dict[str, tuple[frozenset[str], int]]:
    signals: dict[str, tuple[frozenset[str], int]] = {}
    for rule in ruleset.ae_rules:
        signal = dict(rule.labels).get("signal")
        condition = rule.condition
        if signal is None or not isinstance(condition, AeCondition) or not condition.terms:
            continue
        terms, grade = signals.get(signal, (frozenset(), 5))
        signals[signal] = (terms | condition.terms, min(grade, condition.grade_at_least or 1))
    return signals


def _population(
    inputs: ReportInputs,
    exposures: Mapping[SubjectKey, exposure.Exposure],
    deaths: Sequence[Mapping[str, Any]],
    cut: date,
) -> dict[str, Any]:
    def having(kind: SubjectEventKind) -> set[SubjectKey]:
        return {
            (e.study_id, e.subject_id)
            for e in inputs.events
            if e.event is kind and (imputation.earliest(e.event_date) or cut) <= cut
        }

    died = {(d["study_id"], d["subject_id"]) for d in deaths}
    completed = having(SubjectEventKind.COMPLETED)
    last_reason: dict[SubjectKey, tuple[date, str]] = {}
    for e in inputs.events:
        day = imputation.earliest(e.event_date)
        if e.event is SubjectEventKind.DISCONTINUED and day is not None and day <= cut:
            key = (e.study_id, e.subject_id)
            reason = (e.reason or "not given").split(":")[0].strip().upper() or "NOT GIVEN"
            if key not in last_reason or day >= last_reason[key][0]:
                last_reason[key] = (day, reason)
    discontinued = [
        key
        for key, e in exposures.items()
        if not e.on_treatment and key not in died and key not in completed and key in last_reason
    ]
    return {
        "enrolled": len(having(SubjectEventKind.ENROLLED)),
        "randomised": len(having(SubjectEventKind.RANDOMIZED)),
        "safety": len(exposures),
        "on_treatment": sum(1 for key, e in exposures.items() if e.on_treatment and key not in died),
        "discontinued": len(discontinued),
        "discontinued_by_reason": _count(last_reason[key][1] for key in discontinued),
        "completed": len(completed),
        "died": len(died),
    }


def _deaths(inputs: ReportInputs, cut: date) -> list[dict[str, Any]]:
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


def _new_serious(
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


def _boundaries(
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


def _km_json(km: KaplanMeier) -> dict[str, Any]:
    return {
        "subjects": km.events + km.censored,
        "events": km.events,
        "censored": km.censored,
        "median_days": km.median,
        "median_ci95": list(km.median_ci),
        "km": [{"t_days": t, "survival": s, "at_risk": n, "events": d, "censored": c} for t, s, n, d, c in km.steps],
    }


def _efficacy(inputs: ReportInputs, stats: Statistics, cut: date) -> dict[str, Any]:
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
