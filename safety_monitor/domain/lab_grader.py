"""Owns the stream's lab and ECG grader: a Finding graded by the CTCAE criteria with its baseline and context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from safety_monitor.domain.baselines import change_from_baseline
from safety_monitor.domain.ctcae import (
    SUPERSEDED_BY_24H,
    CriteriaSet,
    Criterion,
    corrected_calcium,
    grade_ordinal,
    grade_value,
    is_baseline_high,
    is_below_normal,
)
from safety_monitor.domain.grading import NO_CONTEXT, SAME_DAY_NUMERIC, Graded, GradeResult, NotGradable
from safety_monitor.domain.messages import Finding, MessageType
from safety_monitor.domain.plausibility import TypoScreen, typo_screen
from safety_monitor.domain.units import equivalent


class CtcaeGrader:
    """FindingGrader for labs and ECG (hypertension from vital signs stays in grading.BloodPressureGrader)."""

    def __init__(self, criteria: CriteriaSet) -> None:
        self._criteria = criteria
        self._select: dict[tuple[str, str], Criterion | NotGradable] = {}
        self._screens: dict[tuple[str, str], TypoScreen | None] = {}

    @property
    def ctcae_version(self) -> str:
        return self._criteria.ctcae_version

    def uses_baseline(self, test_code: str) -> bool:
        """Whether any criterion for this test reads the subject's baseline (liver tests, QTc change, ...)."""
        terms = self._criteria.test_codes.get(test_code.strip().upper())
        if terms is None:
            return False
        return any(
            "baseline" in criterion.inputs or criterion.rules_if_baseline_high
            for term in (terms.low, terms.high)
            if term is not None
            for criterion in self._criteria.for_term(term)
        )

    def _criterion(self, term: str, unit: str | None) -> Criterion | NotGradable:
        key = (term, (unit or "").strip().casefold())
        found = self._select.get(key)
        if found is None:
            found = self._criteria.select(term, unit)
            self._select[key] = found
        return found

    def grade(
        self,
        finding: Finding,
        baseline: Finding | None,
        same_draw: Mapping[str, Finding] = NO_CONTEXT,
        *,
        albumin: Finding | None = None,
        ft4: Finding | None = None,
    ) -> tuple[GradeResult, ...]:
        """Grades for the low and high terms of the finding's test; () when the test is not graded here.

        `albumin` (same draw; or `same_draw["ALB"]`) corrects total calcium; `ft4` (same draw; or
        `same_draw["FT4"]`) flags a raised TSH with a low FT4.
        """
        albumin = albumin or same_draw.get("ALB")
        ft4 = ft4 or same_draw.get("FT4")
        if finding.domain is MessageType.VS:
            return ()  # hypertension: grading.BloodPressureGrader
        terms = self._criteria.test_codes.get(finding.test_code.strip().upper())
        if terms is None or terms.domain is not finding.domain:
            return ()
        specimen = (finding.specimen or "").strip().upper()
        if terms.specimens and specimen and specimen not in terms.specimens:
            return ()
        results: list[GradeResult] = []
        for term in (terms.low, terms.high):
            if term is None:
                continue
            if terms.specimen_required and specimen not in terms.specimens:
                results.append(
                    NotGradable(
                        term,
                        f"specimen {specimen or 'unknown'}: {term} is graded on "
                        f"{', '.join(sorted(terms.specimens)).lower()} only",
                        self.ctcae_version,
                    )
                )
                continue
            results.append(self._grade_term(term, finding, baseline, albumin, ft4, same_draw))
        caution = self.caution(finding)
        if caution:
            # Graded as sent, but the alert and the stored grade say what a person must check with the site.
            results = [replace(r, caution=caution) if isinstance(r, Graded) else r for r in results]
        return tuple(results)

    def _grade_term(
        self,
        term: str,
        finding: Finding,
        baseline: Finding | None,
        albumin: Finding | None,
        ft4: Finding | None,
        same_draw: Mapping[str, Finding] = NO_CONTEXT,
    ) -> GradeResult:
        if finding.value is None and finding.result_text is not None and finding.result_text.strip():
            scale = self._criteria.ordinal_for(term)
            if scale is not None:
                return self._grade_character(term, scale, finding, same_draw.get(SAME_DAY_NUMERIC))
        criterion = self._criterion(term, finding.unit)
        if isinstance(criterion, NotGradable):
            return criterion
        value = finding.value
        note = ""
        if finding.test_code.strip().upper() == "CA" and value is not None:
            value, note = _correct_calcium(value, finding.unit or "", albumin)
        base_value: float | None = None
        base_high: bool | None = None
        if baseline is not None and baseline.value is not None:
            if equivalent(baseline.unit, finding.unit):
                base_value = baseline.value
                base_high = is_baseline_high(baseline.normal_range_indicator, baseline.value, baseline.uln)
            else:
                note = _join(note, f"baseline unit {baseline.unit!r} differs from {finding.unit!r}: baseline not used")
        result = grade_value(criterion, value, finding.unit, finding.lln, finding.uln, base_value, base_high)
        if isinstance(result, Graded):
            if result.grade >= 1 and base_value is not None and value is not None and "baseline" in criterion.inputs:
                # The stream derives ADaM's CHG / PCHG from the baseline it holds (what grade-labs reads from a
                # file); the grade itself compares with multiples of that baseline, which is the same test.
                change, percent = change_from_baseline(value, base_value)
                shown = f"PCHG {percent:+.1f}%, " if percent is not None else ""
                note = _join(note, f"{shown}CHG {change:+g} from baseline {base_value:g}")
            if (
                term == "Thyroid stimulating hormone increased"
                and result.grade >= 1
                and ft4 is not None
                and is_below_normal(ft4.normal_range_indicator, ft4.value, ft4.lln)
            ):
                note = _join(
                    note,
                    "FT4 below LLN with TSH > ULN: consider Hypothyroidism (CTCAE navigational note)",
                )
            if note:
                result = Graded(
                    result.term,
                    result.grade,
                    result.ctcae_version,
                    result.provisional,
                    _join(note, result.note),
                )
        return result

    def _grade_character(self, term: str, scale: Criterion, finding: Finding, same_day: Finding | None) -> GradeResult:
        """A semi-quantitative result (dipstick "2+") by the term's ordinal scale, unless a same-day numeric result
        gradable for the term exists: CTCAE Proteinuria, "24-hour urine collection takes precedence over
        dipstick" (as grade-labs does for one file)."""
        if same_day is not None and same_day.value is not None:
            numeric = self._criterion(term, same_day.unit)
            if isinstance(numeric, Criterion):
                return NotGradable(term, SUPERSEDED_BY_24H, self.ctcae_version)
        return grade_ordinal(scale, finding.result_text)

    def caution(self, finding: Finding) -> str:
        """The unit-typo flag for a result (domain/plausibility.py), "" when there is none."""
        terms = self._criteria.test_codes.get(finding.test_code.strip().upper())
        if terms is None or finding.value is None:
            return ""
        key = (terms.test_code, (finding.unit or "").strip().casefold())
        if key not in self._screens:
            self._screens[key] = typo_screen(terms, finding.unit)
        screen = self._screens[key]
        return screen.caution(finding.value) if screen is not None else ""


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first and second else first or second


def _correct_calcium(value: float, unit: str, albumin: Finding | None) -> tuple[float, str]:
    if albumin is None or albumin.value is None:
        return value, "total calcium graded uncorrected: no albumin from the same draw"
    corrected = corrected_calcium(value, unit, albumin.value, albumin.unit or "")
    if corrected is None:
        return (
            value,
            f"total calcium graded uncorrected: albumin unit {albumin.unit!r} does not pair with {unit!r}",
        )
    return (
        corrected,
        f"albumin-corrected calcium {corrected:.4g} {unit} graded (total {value:g}, albumin {albumin.value:g})",
    )
