"""The report's definitions in the domain: partial-date imputation, exposure, time at risk, OS / PFS dates, BOR."""

from __future__ import annotations

import json
from datetime import date

import pytest

from safety_monitor.domain.ae_summary import eair_counts, treatment_emergent
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.exposure import subject_exposures, total_years
from safety_monitor.domain.imputation import impute_onset
from safety_monitor.domain.messages import OverallResponse as R
from safety_monitor.domain.messages import SubjectEventKind as K
from safety_monitor.domain.response import best_overall, summarise
from safety_monitor.domain.subjects import SubjectEventFact
from safety_monitor.domain.survival import assessments, overall_survival, progression_free_survival
from streams.decoding import Decoded, decode
from tests.factories import STUDY, ae, rs, subject_id

D = date.fromisoformat
CUT = D("2026-06-30")


def ev(subject: str, kind: K, on: str, drug: str | None = None, reason: str | None = None) -> SubjectEventFact:
    return SubjectEventFact("S", subject, kind, PartialDate.parse(on), drug, reason)


@pytest.mark.parametrize(
    ("onset", "first_dose", "expected"),
    [
        ("2026-03-14", "2026-03-02", "2026-03-14"),  # complete: as sent
        ("2026-03", "2026-03-10", "2026-03-10"),  # month of the first dose: not before it
        ("2026-04", "2026-03-10", "2026-04-01"),  # a later month: its first day
        ("2026", "2026-03-10", "2026-03-10"),  # the year of the first dose
        ("2026-02", "2026-03-10", "2026-02-01"),  # before the first dose: earliest day (not emergent)
        (None, "2026-03-10", "2026-03-10"),  # missing: the first dose
    ],
)
def test_partial_onset_imputation(onset: str | None, first_dose: str, expected: str) -> None:
    value = PartialDate.parse(onset) if onset else None
    assert impute_onset(value, D(first_dose)) == D(expected)


def test_exposure_counts_both_days_and_ends_at_the_earliest_end_per_drug() -> None:
    events = [
        ev("1", K.FIRST_DOSE, "2026-03-02", "ANLOTINIB"),
        ev("1", K.FIRST_DOSE, "2026-03-02", "ICI"),
        ev("1", K.DISCONTINUED, "2026-03-31", "ANLOTINIB"),  # anlotinib stopped; the ICI goes on to the cut
        ev("2", K.FIRST_DOSE, "2026-03-02", "ANLOTINIB"),
        ev("2", K.DIED, "2026-03-11"),
        ev("3", K.FIRST_DOSE, "2026-06-30", "ICI"),  # dosed on the cut day: one day
        ev("4", K.FIRST_DOSE, "2026-07-01", "ICI"),  # after the cut: not exposed yet
        ev("5", K.FIRST_DOSE, "2026-03-02", "ANLOTINIB"),
        ev("5", K.DISCONTINUED, "2026-05-01"),  # no drug named: ends everything
    ]
    exposures = subject_exposures(events, CUT)
    assert sorted(exposures) == [("S", "1"), ("S", "2"), ("S", "3"), ("S", "5")]
    one = exposures[("S", "1")]
    assert (one.days, dict(one.days_by_drug), one.on_treatment) == (121, {"ANLOTINIB": 30, "ICI": 121}, True)
    assert (exposures[("S", "2")].days, exposures[("S", "2")].on_treatment) == (10, False)
    assert exposures[("S", "3")].days == 1
    assert exposures[("S", "5")].days == 61
    assert total_years(exposures) == pytest.approx((121 + 10 + 1 + 61) / 365.25)


def _ae(subject: str, term: str, onset: str) -> object:
    decoded = decode(json.dumps(ae(subject, f"AE-{term}-{onset}", term, 2, onset=onset)), "t")
    assert isinstance(decoded, Decoded)
    return decoded.message


def test_time_at_risk_is_first_dose_to_first_onset_for_subjects_with_the_event() -> None:
    a, b = subject_id(1), subject_id(2)
    events = [SubjectEventFact(STUDY, s, K.FIRST_DOSE, PartialDate.parse("2026-03-01"), "ICI") for s in (a, b)]
    exposures = subject_exposures(events, CUT)
    assert exposures[(STUDY, a)].days == 122
    aes = [_ae(a, "Hypertension", "2026-03-10"), _ae(a, "Hypertension", "2026-03-20"), _ae(a, "Fatigue", "2026-02-01")]
    first_doses = {key: e.first_dose for key, e in exposures.items()}
    teaes = treatment_emergent(aes, first_doses, CUT)  # type: ignore[arg-type]
    assert [t.event.preferred_term for t in teaes] == ["Hypertension", "Hypertension"]  # fatigue was before dosing
    counts = eair_counts(teaes, exposures)
    pt = next(c for c in counts if c.pt == "Hypertension")
    assert (pt.subjects, pt.days_at_risk) == (1, 10 + 122)  # A: 1 March to 10 March is 10 days; B: all 122


def test_os_censors_at_the_last_known_alive_date_and_pfs_at_the_last_evaluable_assessment() -> None:
    origin = {("S", "1"): D("2026-03-01"), ("S", "2"): D("2026-03-01"), ("S", "3"): D("2026-03-01")}
    deaths = {("S", "2"): D("2026-05-01")}
    alive = {("S", "1"): D("2026-06-20")}
    os_records = {r.subject_id: (r.days, r.event) for r in overall_survival(origin, deaths, alive)}
    assert os_records == {"1": (111, False), "2": (61, True), "3": (0, False)}  # no +1; 3: censored at origin

    responses = [
        rs(subject_id(1), "SD", "2026-04-12"),
        rs(subject_id(1), "NE", "2026-05-24"),  # NE never censors
        rs(subject_id(1), "PD", "2026-07-05"),  # after the cut: ignored
        rs(subject_id(3), "PR", "2026-04"),  # partial date: ignored
    ]
    decoded = [decode(json.dumps(r), "t") for r in responses]
    messages = [d.message for d in decoded if isinstance(d, Decoded)]
    by_subject = {("S", k[1][-1]): v for k, v in assessments(messages, CUT).items()}  # type: ignore[arg-type]
    events = [ev("3", K.PROGRESSED, "2026-06-01")]
    pfs = {r.subject_id: (r.days, r.event) for r in progression_free_survival(origin, deaths, events, by_subject, CUT)}
    assert pfs == {"1": (42, False), "2": (61, True), "3": (92, True)}


def test_best_overall_response_and_orr_counts() -> None:
    day = D("2026-04-01")
    assert best_overall([(day, R.SD), (day, R.PR), (day, R.PD)]) is R.PR
    assert best_overall([(day, R.NE), (day, R.NON_CR_NON_PD)]) is R.NON_CR_NON_PD
    summary = summarise({("S", "1"): [(day, R.CR)], ("S", "2"): [(day, R.SD)], ("S", "3"): [(day, R.NE)]})
    assert (summary.evaluable, summary.responders) == (3, 1)
