"""Owns grade-labs' first pass: the baselines and same-draw context (albumin, low FT4, 24-hour urine days) it learns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from safety_monitor.cli.lab_records import LabColumns, Record, RecordSource, date_cell, number_cell
from safety_monitor.domain.ctcae import (
    BaselineCandidate,
    CriteriaSet,
    derive_baselines,
    is_baseline_high,
    is_below_normal,
    unit_key,
)

_FT4_CODES = frozenset({"FT4", "T4FR"})  # free thyroxine: flags a raised TSH with a low FT4 of the same draw
_CONTEXT_TESTS = frozenset({"ALB", "PROT", *_FT4_CODES})  # records that inform other records' grades


@dataclass(frozen=True, slots=True)
class Baseline:
    value: float
    unit: tuple[str, float]  # unit_key: a baseline in an exactly equivalent unit is used
    high: bool | None
    shown: str  # the unit as read (for the note when it cannot be used)


@dataclass(slots=True)
class Context:
    """What pass 1 learns: baselines, albumin and FT4 per draw, days with a 24-hour urine protein."""

    baselines: dict[tuple[str, str], Baseline]
    albumin: dict[tuple[str, str], tuple[float, str]]
    ft4_low: set[tuple[str, str]]
    urine_24h_days: set[tuple[str, str]]


def needs_context(cols: LabColumns) -> bool:
    """Whether pass 1 can learn anything: baselines to derive, or same-draw context (which needs LBDTC)."""
    return cols.derives_baselines or cols.dtc >= 0


def scan(records: Iterable[Record], cols: LabColumns, criteria: CriteriaSet, source: RecordSource) -> Context:
    """Pass 1: only the records that inform other records' grades are parsed."""
    ctx = Context({}, {}, set(), set())
    derive = cols.derives_baselines
    every_record = derive and cols.first_dose >= 0  # the last value before first dose may be any record
    candidates: list[BaselineCandidate[Baseline]] = []
    first_dose: dict[str, date] = {}
    proteinuria = criteria.ordinal_for("Proteinuria")
    urine_24h = [c for c in criteria.for_term("Proteinuria") if not c.is_ordinal]
    is_24h_unit: dict[str, bool] = {}  # LBSTRESU as read -> a 24-hour urine protein unit
    unit_keys: dict[str, tuple[str, float]] = {}  # LBSTRESU as read -> unit_key

    def urine_24h_unit(unit: str) -> bool:
        known = is_24h_unit.get(unit)
        if known is None:
            known = is_24h_unit[unit] = any(c.accepts_unit(unit) for c in urine_24h)
        return known

    folded: dict[str, tuple[str, bool]] = {}  # raw LBTESTCD -> (stripped upper case, informs others), per spelling
    ti, bi, di, fi = cols.test, cols.blfl, cols.dtc, cols.first_dose
    for line, row, _ in records:
        raw_test = row[ti]
        known = folded.get(raw_test)
        if known is None:
            upper = raw_test.strip().upper()
            known = folded[raw_test] = (upper, upper in _CONTEXT_TESTS)
        test, informs = known
        flag = row[bi] if bi >= 0 else ""
        flagged = flag != "" and flag.strip().upper() == "Y"
        if not informs and not every_record and not (derive and flagged):
            continue  # the common case: a record that informs no other record's grade
        subject = row[cols.subject]
        dtc = row[di].strip() if di >= 0 else ""
        if test == "ALB" and dtc:
            value = number_cell(row[cols.value].strip(), "LBSTRESN", source, line)
            if value is not None:
                ctx.albumin[(subject, dtc)] = (value, row[cols.unit])
        elif test in _FT4_CODES and dtc:
            value = number_cell(row[cols.value].strip(), "LBSTRESN", source, line)
            lln = number_cell(row[cols.lln].strip(), "LBSTNRLO", source, line)
            nrind = row[cols.nrind] if cols.nrind >= 0 else None
            if is_below_normal(nrind, value, lln):
                ctx.ft4_low.add((subject, dtc))
        elif (
            test == "PROT"
            and proteinuria is not None
            and dtc
            and row[cols.value].strip()
            and urine_24h_unit(row[cols.unit])
        ):
            ctx.urine_24h_days.add((subject, dtc[:10]))
        if not derive:
            continue
        if fi >= 0 and subject not in first_dose:
            raw_dose = row[fi].strip()
            if raw_dose:
                dose = date_cell(raw_dose, "RFXSTDTC", source, line).as_date()
                if dose is not None:
                    first_dose[subject] = dose
        if not flagged and fi < 0:
            continue
        value = number_cell(row[cols.value].strip(), "LBSTRESN", source, line)
        if value is None:
            continue
        uln = number_cell(row[cols.uln].strip(), "LBSTNRHI", source, line)
        nrind = row[cols.nrind] if cols.nrind >= 0 else None
        raw_unit = row[cols.unit]
        key = unit_keys.get(raw_unit)
        if key is None:
            key = unit_keys[raw_unit] = unit_key(raw_unit)
        item = Baseline(value, key, is_baseline_high(nrind, value, uln), raw_unit)
        collected = date_cell(dtc, "LBDTC", source, line) if dtc else None
        candidates.append(BaselineCandidate(subject, test, flagged, collected, item))
    if derive:
        ctx.baselines = derive_baselines(candidates, first_dose)
    return ctx
