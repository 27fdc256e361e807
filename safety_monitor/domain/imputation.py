"""Owns the partial-date imputation every report figure uses: the earliest day a partial SDTM date allows."""

from __future__ import annotations

from datetime import date

from safety_monitor.domain.dates import PartialDate

# The convention (ICH E9 practice; the common ADaM ASTDT rule): a date known to the month is the 1st of that month,
# a date known to the year is 1 January; for an AE onset, never before the first dose when the first dose falls in
# the period the partial date names (the AE is then treatment-emergent from day 1). A missing onset date is the
# first dose date. Earliest-possible dates make times to onset and times at risk no longer than the data allow,
# which errs towards higher exposure-adjusted rates: the safe side for a DSMB.
METHOD = (
    "Partial dates are imputed to the earliest day they allow: YYYY-MM to the 1st of the month, YYYY to 1 January. "
    "An AE onset is never imputed before the subject's first dose when the first dose lies in the period the partial "
    "date names, and a missing onset is the first dose date. The same rule is applied to every figure."
)


def earliest(value: PartialDate | None) -> date | None:
    """The first day of the period a (possibly partial) date names; None when absent."""
    if value is None:
        return None
    return date(value.year, value.month or 1, value.day or 1)


def impute_onset(onset: PartialDate | None, first_dose: date | None) -> date | None:
    """An AE onset as a calendar date: the earliest possible, not before the first dose where the date allows."""
    if onset is None:
        return first_dose
    day = earliest(onset)
    assert day is not None
    if first_dose is None or onset.is_complete:
        return day
    same_period = onset.year == first_dose.year and (onset.month is None or onset.month == first_dose.month)
    return max(day, first_dose) if same_period else day
