"""Owns the unit-typo screen: a result implausible in a typo-prone unit (platelets 5 in 10^3/mL) is flagged.

The grade is still derived from the value as sent: the site may be right, and a missed grade is worse than a
flagged one. The flag travels with the grade (ATOXRSN in `grade-labs`, the alert text in the stream) so that a
person checks the unit with the site.
"""

from __future__ import annotations

from dataclasses import dataclass

from safety_monitor.domain.ctcae import TestCodeTerms
from safety_monitor.domain.units import lookup


@dataclass(frozen=True, slots=True)
class TypoScreen:
    """For one test code and record unit: results below `below` (in the record's unit) are implausible."""

    test_code: str
    unit: str
    below: float
    floor: float  # the plausibility floor, in `floor_unit`
    floor_unit: str
    to_floor_unit: float  # 1 <unit> = to_floor_unit <floor_unit>
    twin: str  # the unit that was probably meant, e.g. "10^3/uL"
    twin_factor: float  # 1 <twin> = twin_factor <unit>

    def caution(self, value: float | None) -> str:
        """The flag for one result, or "" when the value is plausible (or absent, or zero: 0 reads the same
        in every unit, so it suggests no typo)."""
        if value is None or not 0 < value < self.below:
            return ""
        as_given = value * self.to_floor_unit
        as_twin = as_given * self.twin_factor
        return (
            f"unit check: {self.test_code} {value:g} {self.unit} = {as_given:g} {self.floor_unit}, implausible "
            f"(lowest plausible {self.floor:g} {self.floor_unit}); graded as sent, but {self.twin} may have been "
            f"meant ({value:g} {self.twin} = {as_twin:g} {self.floor_unit}): check with the site"
        )


def typo_screen(terms: TestCodeTerms, unit: str | None) -> TypoScreen | None:
    """The screen for results of `terms.test_code` in `unit`, or None when the unit is not typo-prone or the test
    has no plausibility floor in that quantity kind."""
    if terms.plausible_min is None:
        return None
    given, floor = lookup(unit), lookup(terms.plausible_unit)
    if given is None or floor is None or not given.typo_of or given.canonical != floor.canonical:
        return None
    assert unit is not None
    below = terms.plausible_min * floor.factor / given.factor
    return TypoScreen(
        terms.test_code,
        unit.strip(),
        below,
        terms.plausible_min,
        terms.plausible_unit,
        given.factor / floor.factor,
        given.typo_of,
        given.typo_factor,
    )
