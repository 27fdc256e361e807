"""Owns the DSMB safety report's figures: population, exposure, AE tables, EAIR, deaths, boundaries, OS, PFS, ORR.

Every figure is computed here from the system of record as of a data cut, unrounded; the HTML and the mail are
rendered from this same dictionary (adapters/report_render.py), and `--format json` prints it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from safety_monitor.domain import ae_summary, exposure, imputation, response, survival
from safety_monitor.domain.conditions.ae import AeCondition
from safety_monitor.domain.messages import SubjectEventKind
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service import report_efficacy, report_safety
from safety_monitor.service.ports import Statistics, SubjectKey, UnitOfWorkFactory
from safety_monitor.service.report_inputs import ReportInputs, read_inputs

PER_100 = 100.0


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
    deaths = report_safety.deaths(inputs, cut)
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
        "new_serious": report_safety.new_serious(inputs, ruleset, first_doses, cut, since_at),
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
        "boundaries": report_safety.boundaries(inputs, ruleset, first_doses, cut),
        **report_efficacy.efficacy(inputs, stats, cut),
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
