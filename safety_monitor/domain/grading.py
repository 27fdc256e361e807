"""Owns the grading seam: what a grade is, "cannot grade", and the first grading step used by the pipeline.

The complete CTCAE v5 engine (labs, ECG, proteinuria, ...) plugs in behind `FindingGrader`; this module keeps
the two grades the walking skeleton needs: the investigator's AETOXGR for AEs, and the blood-pressure based
hypertension grade for SYSBP/DIABP vital signs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from safety_monitor.domain.messages import Finding, MessageType

DEFAULT_CTCAE_VERSION = "5.0"


@dataclass(frozen=True, slots=True)
class Graded:
    """A CTCAE grade (0 = within normal limits for the criterion) for one term."""

    term: str
    grade: int
    ctcae_version: str
    provisional: bool = False  # value-only grade; CTCAE needs clinical context to confirm it
    note: str = ""
    caution: str = ""  # a doubt about the input a person must check with the site (a likely unit typo)


@dataclass(frozen=True, slots=True)
class NotGradable:
    """The criterion applies but the inputs do not allow a grade; never the same as grade 0."""

    term: str
    reason: str  # "unit mg/dL not accepted for Hypokalemia"; never empty
    ctcae_version: str


GradeResult = Graded | NotGradable


# Tests whose grade needs another result of the same draw: total calcium is graded albumin-corrected (CTCAE
# grades corrected calcium), and a raised TSH is flagged when FT4 is low (hypothyroidism, not just TSH rise).
SAME_DRAW_CONTEXT: Mapping[str, tuple[str, ...]] = {"CA": ("ALB",), "TSH": ("FT4",)}
NO_CONTEXT: Mapping[str, Finding] = MappingProxyType({})

# CTCAE v5 Proteinuria, navigational note: "24-hour urine collection takes precedence over dipstick". A character
# result (LBSTRESC, a dipstick "2+") of these tests is graded knowing the numeric result of the same test and
# subject collected the same day, if any; the grader receives it as same_draw[SAME_DAY_NUMERIC].
SAME_DAY_NUMERIC_TESTS = frozenset({"PROT"})
SAME_DAY_NUMERIC = "same-day numeric result"


class FindingGrader(Protocol):
    """Grades one lab / vital / ECG finding.

    `baseline` is the subject's baseline for the same test, if known; `same_draw` maps test codes to results
    of the same subject and collection time named in SAME_DRAW_CONTEXT (e.g. {"ALB": ...} for calcium), and
    SAME_DAY_NUMERIC to a same-day numeric result for a character result of SAME_DAY_NUMERIC_TESTS.
    """

    @property
    def ctcae_version(self) -> str: ...

    def uses_baseline(self, test_code: str) -> bool:
        """Whether grading this test reads the baseline: only then does a new baseline re-grade results."""
        ...

    def grade(
        self, finding: Finding, baseline: Finding | None, same_draw: Mapping[str, Finding] = NO_CONTEXT
    ) -> tuple[GradeResult, ...]: ...


# CTCAE v5.0 "Hypertension" (adult): G1 SBP 120-139 or DBP 80-89; G2 SBP 140-159 or DBP 90-99;
# G3 SBP >= 160 or DBP >= 100 (with medical intervention). The "or" means each of SBP and DBP grades on its
# own, so a single reading grades without its partner. Grades 2-3 also depend on treatment, so the value-only
# grade is provisional; grade 4 (life-threatening) and 5 (death) cannot come from a value.
_HYPERTENSION = "Hypertension"
_BP_CUTS: dict[str, tuple[tuple[float, int], ...]] = {
    "SYSBP": ((160.0, 3), (140.0, 2), (120.0, 1)),
    "DIABP": ((100.0, 3), (90.0, 2), (80.0, 1)),
}


def hypertension_grade(test_code: str, value_mmhg: float) -> int:
    """Provisional CTCAE v5 hypertension grade from one SBP or DBP reading in mmHg."""
    for cut, grade in _BP_CUTS[test_code]:
        if value_mmhg >= cut:
            return grade
    return 0


class BloodPressureGrader:
    """First grading step: hypertension from SYSBP/DIABP vital signs; other findings are not graded yet."""

    def __init__(self, ctcae_version: str = DEFAULT_CTCAE_VERSION) -> None:
        self._version = ctcae_version

    @property
    def ctcae_version(self) -> str:
        return self._version

    def uses_baseline(self, test_code: str) -> bool:
        return False  # CTCAE hypertension grades absolute readings

    def grade(
        self, finding: Finding, baseline: Finding | None, same_draw: Mapping[str, Finding] = NO_CONTEXT
    ) -> tuple[GradeResult, ...]:
        if finding.domain is not MessageType.VS or finding.test_code not in _BP_CUTS:
            return ()
        if finding.value is None:
            return (NotGradable(_HYPERTENSION, f"{finding.test_code} has no numeric result", self._version),)
        if (finding.unit or "").strip().lower() != "mmhg":
            return (
                NotGradable(
                    _HYPERTENSION,
                    f"unit {finding.unit!r} not accepted for Hypertension (mmHg)",
                    self._version,
                ),
            )
        grade = hypertension_grade(finding.test_code, finding.value)
        return (
            Graded(
                _HYPERTENSION,
                grade,
                self._version,
                provisional=grade in (2, 3),
                note="value-only grade; CTCAE grades 2-3 also depend on antihypertensive treatment"
                if grade in (2, 3)
                else "",
            ),
        )


class CombinedGrader:
    """The pipeline's grader: each finding goes to every grader; results are concatenated.

    Used as BloodPressureGrader (vital signs) + CtcaeGrader (labs, ECG); each returns () for what it does not
    grade. All graders must state the same CTCAE version, which is stored with every grade.
    """

    def __init__(self, *graders: FindingGrader) -> None:
        versions = {g.ctcae_version for g in graders}
        if len(versions) != 1:
            raise ValueError(f"graders disagree on the CTCAE version: {sorted(versions)}")
        self._graders = graders
        self._version = versions.pop()

    @property
    def ctcae_version(self) -> str:
        return self._version

    def uses_baseline(self, test_code: str) -> bool:
        return any(grader.uses_baseline(test_code) for grader in self._graders)

    def grade(
        self, finding: Finding, baseline: Finding | None, same_draw: Mapping[str, Finding] = NO_CONTEXT
    ) -> tuple[GradeResult, ...]:
        results: tuple[GradeResult, ...] = ()
        for grader in self._graders:
            results += grader.grade(finding, baseline, same_draw)
        return results
