"""Owns which result is a subject's baseline for a test, whether a newly arrived one takes its place, and the
change from it (ADaM CHG and PCHG)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from safety_monitor.domain.ctcae import BaselineCandidate, derive_baselines
from safety_monitor.domain.messages import Finding

TestKey = tuple[str, str, str, str]  # study_id, subject_id, domain (LB / VS / EG), test code


def test_key(finding: Finding) -> TestKey:
    env = finding.envelope
    return (env.study_id, env.subject_id, finding.domain.value, finding.test_code)


def choose_baseline(findings: Iterable[Finding], first_dose: date | None) -> Finding | None:
    """The baseline among one subject's results for one test: the record flagged --BLFL = "Y" (the latest of
    several), else the last result on or before the first-dose date (a pre-dose draw on day 1 counts, as in
    admiral's ADT <= TRTSDT). Without a known first dose only a flagged record can be the baseline.

    The choice is a maximum over the candidates, so folding new results into the current baseline gives the
    same answer as choosing from the whole history: `choose_baseline([current, *new], first_dose)`.
    """
    candidates = [
        BaselineCandidate(f.envelope.subject_id, f.test_code, f.baseline_flag, f.collected_at, f) for f in findings
    ]
    if not candidates:
        return None
    doses = {candidates[0].subject_id: first_dose} if first_dose is not None else {}
    chosen = derive_baselines(candidates, doses)
    return next(iter(chosen.values()), None)


def change_from_baseline(value: float, baseline: float) -> tuple[float, float | None]:
    """ADaM CHG = AVAL - BASE and PCHG = 100 x (AVAL - BASE) / BASE (None when BASE is 0)."""
    change = value - baseline
    return change, (100.0 * change / baseline if baseline != 0 else None)


def baseline_from_change(value: float, chg: float | None, pchg: float | None) -> float | None:
    """The baseline a result's CHG or PCHG implies: BASE = AVAL - CHG exactly, else AVAL / (1 + PCHG / 100).

    ADaM data often carries the change without BASE (admiral grades Fibrinogen decreased on PCHG). A criterion
    stated against the baseline ("50 - <75% decrease from baseline" = value <= 0.5 x baseline) then holds for the
    implied baseline exactly when it holds for the change. PCHG = -100 (value 0) implies no baseline.
    """
    if chg is not None:
        return value - chg
    if pchg is not None and pchg != -100.0:
        return value / (1.0 + pchg / 100.0)
    return None
