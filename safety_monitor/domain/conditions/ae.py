"""Owns the `ae` condition: an adverse event matching terms, grade, seriousness, causality and outcome criteria."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from safety_monitor.domain.messages import AdverseEvent

NOT_ATTRIBUTED = "unknown"  # AEIRAE null: immune-relatedness not yet attributed by the investigator

# The study drugs whose causality a site reports separately (AEREL_ANLOTINIB, AEREL_ICI):
# docs/architecture.md, "Wire format".
DRUGS = ("anlotinib", "ici")

# Seriousness criteria (ICH E2A; SDTM AESDTH, AESLIFE, AESHOSP) a rule may require, any of them.
SERIOUSNESS_CRITERIA = ("death", "life_threatening", "hospitalisation")

# AEOUT value for a fatal outcome (CDISC controlled terminology C66768 "FATAL").
FATAL_OUTCOME = "FATAL"


class GradeSource(StrEnum):
    """Which grade a threshold reads: the investigator's AETOXGR, the value-derived grade, or the worse of both."""

    INVESTIGATOR = "investigator"
    DERIVED = "derived"
    WORST = "worst"


def is_fatal(event: AdverseEvent) -> bool:
    """AESDTH = Y, AEOUT = FATAL, or CTCAE grade 5 (death related to AE)."""
    return (
        (event.death or "").upper() == "Y"
        or (event.outcome or "").strip().upper() == FATAL_OUTCOME
        or event.investigator_grade == 5
    )


def seriousness_flags(event: AdverseEvent) -> frozenset[str]:
    """The seriousness criteria the site ticked, by their rule names."""
    flags = {
        "death": event.death,
        "life_threatening": event.life_threatening,
        "hospitalisation": event.hospitalisation,
    }
    return frozenset(name for name, value in flags.items() if (value or "").upper() == "Y")


def causality(event: AdverseEvent, drug: str) -> str:
    """The site's causality for one study drug, upper case; "" when not given."""
    value = event.causality_anlotinib if drug == "anlotinib" else event.causality_ici
    return (value or "").strip().upper()


def grade_of(event: AdverseEvent, source: GradeSource) -> int | None:
    """The grade a threshold reads; None when that grade is not known (a derived grade needs findings)."""
    if source is GradeSource.INVESTIGATOR:
        return event.investigator_grade
    if source is GradeSource.DERIVED:
        return event.derived_grade
    known = [g for g in (event.investigator_grade, event.derived_grade) if g is not None]
    return max(known) if known else None


@dataclass(frozen=True, slots=True)
class AeCondition:
    """Matches an AE by what it is (PT set, verbatim substrings, SOC) and what it did (grade and qualifiers).

    What it is: the MedDRA PT in `terms` (case-insensitive) or the verbatim AETERM containing one of
    `verbatim_contains`; when `socs` is set the SOC must be one of them as well. No term criteria = any AE.
    Qualifiers, all of which must hold when set:
    - `grade_at_least` on the grade chosen by `grade_source`;
    - `serious` (AESER); `seriousness`: any of the named criteria (death, life_threatening, hospitalisation);
    - `related_to`: per-drug causality, any of the listed drugs with any of its listed values;
    - `immune_related`: accepted AEIRAE values ("Y", "N", "U", or "unknown" for not yet attributed). Attribution
      often arrives later than the event, so a safety rule that must not wait for it accepts "unknown" too
      (docs/clinical-decisions.md);
    - `fatal`: AESDTH = Y or AEOUT = FATAL or grade 5.
    """

    terms: frozenset[str] = frozenset()  # case-folded MedDRA PT names
    grade_at_least: int = 1
    immune_related: frozenset[str] | None = None
    serious: bool | None = None
    verbatim_contains: tuple[str, ...] = ()  # case-folded substrings of AETERM
    socs: frozenset[str] = frozenset()  # case-folded MedDRA SOC names
    grade_source: GradeSource = GradeSource.INVESTIGATOR
    seriousness: frozenset[str] = frozenset()
    related_to: tuple[tuple[str, frozenset[str]], ...] = ()  # (drug, accepted causality values, upper case)
    fatal: bool | None = None

    kind = "ae"

    def is_about(self, event: AdverseEvent) -> bool:
        """Whether the AE is one of the terms the condition names (before grade and qualifiers)."""
        if self.terms or self.verbatim_contains:
            named = event.preferred_term.casefold() in self.terms
            if not named and self.verbatim_contains:
                verbatim = event.verbatim_term.casefold()
                named = any(part in verbatim for part in self.verbatim_contains)
            if not named:
                return False
        return not self.socs or event.system_organ_class.casefold() in self.socs

    def grade(self, event: AdverseEvent) -> int | None:
        """The grade that satisfies the condition, or None when the AE does not match."""
        if not self.is_about(event):
            return None
        grade = grade_of(event, self.grade_source)
        if grade is None or grade < self.grade_at_least:
            return None
        if self.immune_related is not None:
            attribution = event.immune_related or NOT_ATTRIBUTED
            if attribution not in self.immune_related:
                return None
        if self.serious is not None and ((event.serious or "").upper() == "Y") != self.serious:
            return None
        if self.seriousness and not self.seriousness & seriousness_flags(event):
            return None
        if self.related_to and not any(causality(event, drug) in accepted for drug, accepted in self.related_to):
            return None
        if self.fatal is not None and is_fatal(event) != self.fatal:
            return None
        return grade

    def matches(self, event: AdverseEvent) -> bool:
        return self.grade(event) is not None
