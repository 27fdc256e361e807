"""Owns lab unit spellings: one table from each accepted spelling to its UCUM-style canonical form and exact factor.

Why a table and not a unit library: grading needs a small, closed set of quantity kinds (counts per volume, mass
and substance concentration, excretion per day, time), each spelled a dozen ways by lab systems ("10^3/mL",
"cells/mm3", "10*9/L"). A general unit algebra would also accept spellings that are legal but wrong for a lab
result (cholesterol in umol/L, haemoglobin in g/cL): admiral refuses those, and so do we. The domain stays stdlib
only, and a lookup costs nothing on the batch path.

Each spelling maps to `Unit(canonical, factor)`: 1 <spelling> = factor <canonical>. Two spellings are exact
equivalents when both canonical form and factor agree ("10^3/mL" = "/uL", factor 1); only exact equivalents are
graded by the same criterion. Values are never rescaled between magnitudes (mg/L into g/L): CTCAE states each
threshold at one magnitude, and a value at another magnitude is more often a unit entry error than a choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit as the table knows it: `factor` times the canonical (UCUM-style) unit of its quantity kind."""

    canonical: str
    factor: float
    # A spelling one slip away that means `typo_factor` times this unit: "10^3/mL" is often typed for
    # "10^3/uL" (1000 x larger). Used to flag values that are implausible as given but plausible as the twin.
    typo_of: str = ""
    typo_factor: float = 1.0

    @property
    def key(self) -> tuple[str, float]:
        """What two exactly equivalent spellings share."""
        return (self.canonical, self.factor)


_COUNT = "/uL"  # number concentration; UCUM "/uL" (= /mm3)
_MASS = "g/L"
_SUBSTANCE = "mmol/L"
_EQUIVALENTS = "meq/L"  # charge concentration: equals mmol/L only for monovalent ions, so kept apart
_EXCRETION = "g/(24.h)"
_TIME = "ms"

# Spellings as labs and SDTM LBSTRESU carry them; matched after strip() and casefold(). "G/L" (giga per litre) is
# deliberately absent: folded, it is "g/L" (grams per litre).
_TABLE: dict[str, Unit] = {}
_SPELLED: dict[str, str] = {}  # folded spelling -> the spelling as written here


def _add(canonical: str, factor: float, *spellings: str, typo_of: str = "", typo_factor: float = 1.0) -> None:
    for spelling in spellings:
        key = spelling.casefold()
        if key in _TABLE:
            raise ValueError(f"unit spelling {spelling!r} listed twice")
        _TABLE[key] = Unit(canonical, factor, typo_of, typo_factor)
        _SPELLED[key] = spelling


# 1 mm3 = 1 uL; 10^3/mL = 10^3 per 1000 uL = 1/uL (admiral's "legacy" conventional unit). 10^9/L = 10^3/uL.
_add(_COUNT, 1.0, "/uL", "1/uL", "cells/uL", "/mm3", "1/mm3", "cells/mm3", "10^6/L", "10*6/L")
_add(_COUNT, 1.0, "10^3/mL", "10*3/mL", "10E3/mL", typo_of="10^3/uL", typo_factor=1000.0)
_add(_COUNT, 1000.0, "10^9/L", "10*9/L", "10E9/L", "x10^9/L", "10^3/uL", "10*3/uL", "10E3/uL", "10^3/mm3", "K/uL")
_add(_MASS, 1.0, "g/L")
_add(_MASS, 10.0, "g/dL")
_add(_MASS, 0.01, "mg/dL")
_add(_MASS, 0.001, "mg/L")
_add(_SUBSTANCE, 1.0, "mmol/L")
_add(_SUBSTANCE, 0.001, "umol/L", "µmol/L")
_add(_EQUIVALENTS, 1.0, "mEq/L")
_add(_EXCRETION, 1.0, "g/(24.h)", "g/24h", "g/24 h", "g/24hr", "g/d", "g/day")
_add(_EXCRETION, 0.001, "mg/(24.h)", "mg/24h", "mg/24 h", "mg/d", "mg/day")
_add(_TIME, 1.0, "ms", "msec")

UNITS: Mapping[str, Unit] = dict(_TABLE)


def lookup(spelling: str | None) -> Unit | None:
    """The table's entry for a spelling (case-insensitive, surrounding blanks ignored), None when unknown."""
    if spelling is None:
        return None
    return UNITS.get(spelling.strip().casefold())


def equivalent(first: str | None, second: str | None) -> bool:
    """Whether two spellings are the same unit exactly (same canonical form and factor); case and blanks aside."""
    a, b = lookup(first), lookup(second)
    if a is not None and b is not None:
        return a.key == b.key
    # A spelling the table does not know (U/L, ratios, none at all) is only ever the same as itself.
    return (first or "").strip().casefold() == (second or "").strip().casefold()


def spellings_of(key: tuple[str, float]) -> tuple[str, ...]:
    """Every spelling the table accepts for one exact unit, in table order (for messages and docs)."""
    return tuple(_SPELLED[folded] for folded, unit in UNITS.items() if unit.key == key)
