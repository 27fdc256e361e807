"""Owns the value-derived grade of an AE: which CTCAE term its PT is graded from, and the worst grade in its span.

Issue 3: the investigator's AETOXGR and the grade derived from values are both kept, and a disagreement is
visible. For an AE whose MedDRA PT names a CTCAE term that is graded from values (labs, blood pressure, QTc),
the derived grade is the worst grade of that term among the subject's findings collected from the onset date
(any time when the onset is unknown) to the end date (open while the AE is ongoing). Partial dates are compared
at the precision given; a finding that cannot be placed against the span is counted (the conservative choice,
as for treatment emergence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.grading import Graded, GradeResult
from safety_monitor.domain.messages import AdverseEvent, Finding, MessageType


@dataclass(frozen=True, slots=True)
class GradedFrom:
    """The CTCAE term an AE's PT corresponds to, and the findings (domain, test codes) that grade it."""

    ctcae_term: str
    domain: MessageType
    tests: tuple[str, ...]


_ALT = GradedFrom("Alanine aminotransferase increased", MessageType.LB, ("ALT",))
_AST = GradedFrom("Aspartate aminotransferase increased", MessageType.LB, ("AST",))
_ALP = GradedFrom("Alkaline phosphatase increased", MessageType.LB, ("ALP",))
_BILI = GradedFrom("Blood bilirubin increased", MessageType.LB, ("BILI",))
_PLAT = GradedFrom("Platelet count decreased", MessageType.LB, ("PLAT",))
_NEUT = GradedFrom("Neutrophil count decreased", MessageType.LB, ("NEUT",))
_WBC = GradedFrom("White blood cell decreased", MessageType.LB, ("WBC",))
_LYM = GradedFrom("Lymphocyte count decreased", MessageType.LB, ("LYM",))
_HGB = GradedFrom("Anemia", MessageType.LB, ("HGB",))
_CREAT = GradedFrom("Creatinine increased", MessageType.LB, ("CREAT",))
_TSH = GradedFrom("Thyroid stimulating hormone increased", MessageType.LB, ("TSH",))
_QTC = GradedFrom("Electrocardiogram QT corrected interval prolonged", MessageType.EG, ("QTCF", "QTCFAG"))
_HTN = GradedFrom("Hypertension", MessageType.VS, ("SYSBP", "DIABP"))


def _lab(term: str, test: str) -> GradedFrom:
    return GradedFrom(term, MessageType.LB, (test,))


# MedDRA PT (case-folded) -> the CTCAE v5 term graded from values. MedDRA spells PTs the British way
# ("Anaemia", "Hypokalaemia"); CTCAE the American way ("Anemia", "Hypokalemia"); both spellings are listed
# where sites use either. Only PTs whose CTCAE grade rests on a value are here: e.g. "Proteinuria" is left out
# because the dipstick result is not on the wire (a 24-hour collection alone would understate most grades).
PT_TO_CTCAE: Mapping[str, GradedFrom] = {
    pt.casefold(): graded
    for graded, pts in (
        (_HTN, ("Hypertension", "Blood pressure increased", "Hypertensive crisis")),
        (_ALT, ("Alanine aminotransferase increased",)),
        (_AST, ("Aspartate aminotransferase increased",)),
        (_ALP, ("Blood alkaline phosphatase increased", "Alkaline phosphatase increased")),
        (_BILI, ("Blood bilirubin increased", "Hyperbilirubinaemia", "Hyperbilirubinemia")),
        (_PLAT, ("Platelet count decreased", "Thrombocytopenia")),
        (_NEUT, ("Neutrophil count decreased", "Neutropenia")),
        (_WBC, ("White blood cell count decreased", "Leukopenia")),
        (_LYM, ("Lymphocyte count decreased", "Lymphopenia")),
        (_HGB, ("Anaemia", "Anemia", "Haemoglobin decreased", "Hemoglobin decreased")),
        (_CREAT, ("Blood creatinine increased",)),
        (_TSH, ("Blood thyroid stimulating hormone increased",)),
        (
            _QTC,
            (
                "Electrocardiogram QT prolonged",
                "Electrocardiogram QT corrected interval prolonged",
                "Long QT syndrome",
            ),
        ),
        (_lab("Hypokalemia", "K"), ("Hypokalaemia", "Hypokalemia")),
        (_lab("Hyperkalemia", "K"), ("Hyperkalaemia", "Hyperkalemia")),
        (_lab("Hyponatremia", "SODIUM"), ("Hyponatraemia", "Hyponatremia")),
        (_lab("Hypernatremia", "SODIUM"), ("Hypernatraemia", "Hypernatremia")),
        (_lab("Hypomagnesemia", "MG"), ("Hypomagnesaemia", "Hypomagnesemia")),
        (_lab("Hypocalcemia", "CA"), ("Hypocalcaemia", "Hypocalcemia")),
        (_lab("Hypercalcemia", "CA"), ("Hypercalcaemia", "Hypercalcemia")),
        (_lab("Hypoalbuminemia", "ALB"), ("Hypoalbuminaemia", "Hypoalbuminemia")),
        (_lab("Hypertriglyceridemia", "TRIG"), ("Hypertriglyceridaemia", "Hypertriglyceridemia")),
        (_lab("Lipase increased", "LIPASE"), ("Lipase increased",)),
        (_lab("Serum amylase increased", "AMYLASE"), ("Amylase increased",)),
        (_lab("GGT increased", "GGT"), ("Gamma-glutamyltransferase increased",)),
    )
    for pt in pts
}


def graded_from(event: AdverseEvent) -> GradedFrom | None:
    return PT_TO_CTCAE.get(event.preferred_term.casefold())


@dataclass(frozen=True, slots=True)
class AeSpan:
    """What folding new results into a current AE's derived grade needs: its record, PT, span and the derived
    grade it carries. A few columns of the record: most AEs of a subject with new results are left unchanged."""

    record_key: tuple[str, str, str]  # (study_id, subject_id, AESPID)
    preferred_term: str
    onset_date: PartialDate | None
    end_date: PartialDate | None
    derived_grade: int | None
    derived_term: str | None


def span_of(event: AdverseEvent) -> AeSpan:
    return AeSpan(
        event.record_key,
        event.preferred_term,
        event.onset_date,
        event.end_date,
        event.derived_grade,
        event.derived_term,
    )


def _not_before(value: PartialDate, start: PartialDate) -> bool:
    """value >= start at the precision both give; undecidable counts as inside."""
    for a, b in ((value.year, start.year), (value.month, start.month), (value.day, start.day)):
        if a is None or b is None:
            return True
        if a != b:
            return a > b
    return True


def in_span(collected_at: PartialDate, onset: PartialDate | None, end: PartialDate | None) -> bool:
    """Whether a collection date lies in [onset, end]; an unknown onset opens the span, no end leaves it open."""
    if onset is not None and not _not_before(collected_at, onset):
        return False
    return end is None or _not_before(end, collected_at)


@dataclass(frozen=True, slots=True)
class DerivedGrade:
    term: str
    grade: int | None  # None: no graded finding of the term in the AE's span


def derive_grade(
    event: AdverseEvent, findings: Iterable[tuple[Finding, tuple[GradeResult, ...]]]
) -> DerivedGrade | None:
    """The worst value-derived grade of the AE's CTCAE term in its span; None when the PT is not value-graded.

    `findings` are the subject's graded findings (any tests; those of other tests or subjects are ignored).
    "Cannot grade" never counts; grade 0 does (the values were normal).
    """
    mapping = graded_from(event)
    if mapping is None:
        return None
    env = event.envelope
    worst: int | None = None
    term = mapping.ctcae_term.casefold()
    for finding, grades in findings:
        fenv = finding.envelope
        if (
            finding.domain is not mapping.domain
            or finding.test_code not in mapping.tests
            or (fenv.study_id, fenv.subject_id) != (env.study_id, env.subject_id)
            or not in_span(finding.collected_at, event.onset_date, event.end_date)
        ):
            continue
        for result in grades:
            if isinstance(result, Graded) and result.term.casefold() == term:
                worst = result.grade if worst is None else max(worst, result.grade)
    return DerivedGrade(mapping.ctcae_term, worst)
