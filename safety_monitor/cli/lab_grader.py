"""Owns grade-labs' second pass: how one (test code, unit, specimen) is graded, and the per-record row grader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from safety_monitor.cli.lab_context import Context
from safety_monitor.cli.lab_records import LabColumns, RecordSource, csv_cell, number_cell
from safety_monitor.domain.baselines import baseline_from_change
from safety_monitor.domain.ctcae import (
    SUPERSEDED_BY_24H,
    CriteriaSet,
    Criterion,
    corrected_calcium,
    grade_ordinal,
    is_baseline_high,
    unit_key,
)
from safety_monitor.domain.ctcae_walk import Outcome, WalkFunction, compile_walk
from safety_monitor.domain.grading import Graded
from safety_monitor.domain.messages import MessageType
from safety_monitor.domain.plausibility import TypoScreen, typo_screen

SideResult = tuple[str, str, int]  # (the side's cells "ATOXDSCx,ATOXGRx", its note or "", grade or -1)


@dataclass(frozen=True, slots=True)
class Side:
    """One CTCAE term a test code is graded against, with what grades it for one unit and specimen."""

    term: str
    cell: str  # the term as an output cell
    numeric: Criterion | None  # None: `refused` says why this unit or specimen cannot be graded
    refused: str
    ordinal: Criterion | None  # semi-quantitative scale (urine dipstick), graded from LBSTRESC
    walk: WalkFunction | None = None  # `numeric` compiled: the index into `results` for a numeric result
    results: tuple[SideResult, ...] = ()  # every outcome of `numeric`, as side_result() writes it


@dataclass(frozen=True, slots=True)
class Plan:
    """How records of one (test code, unit, specimen) are graded; built once per distinct key."""

    test: str  # LBTESTCD stripped, upper case
    unit: str  # LBSTRESU as given (calcium correction reads it), stripped, and folded for baseline matching
    unit_shown: str
    unit_key: tuple[str, float]  # baselines in an exactly equivalent unit are used
    screen: TypoScreen | None  # flags results implausible in a typo-prone unit (platelets 5 in 10^3/mL)
    low: Side | None
    high: Side | None
    calcium: bool
    tsh: bool
    needs_dtc: bool  # calcium, TSH or an ordinal scale: same-draw context is looked up by LBDTC


UNGRADED_TAIL = ",,,,,\n"
_GRADE_TEXT = ("0", "1", "2", "3", "4", "5")
_FT4_NOTE = "FT4 below LLN in the same draw: consider Hypothyroidism (CTCAE navigational note)"
_UNCORRECTED_NOTE = "total calcium graded uncorrected (no albumin of the same draw in a pairing unit)"


def side_result(term: str, cell: str, outcome: Outcome) -> SideResult:
    """What one side writes for an outcome of the walk (ctcae.evaluate's (grade, provisional, note))."""
    grade, provisional, text = outcome
    if grade < 0:
        return cell + ",", f"{term}: cannot grade: {text}", grade
    if provisional:
        note = f"{term} grade {grade} provisional: {text}"
    elif text:
        note = f"{term}: {text}"
    else:
        note = ""
    return cell + "," + _GRADE_TEXT[grade], note, grade


def _numeric_side(term: str, criterion: Criterion, ordinal: Criterion | None) -> Side:
    cell = csv_cell(term)
    compiled = compile_walk(criterion)
    results = tuple(side_result(term, cell, outcome) for outcome in compiled.outcomes)
    return Side(term, cell, criterion, "", ordinal, compiled.walk, results)


def plan_for(criteria: CriteriaSet, raw_test: str, raw_unit: str, spec: str = "") -> Plan | None:
    test = raw_test.strip().upper()
    terms = criteria.test_codes.get(test)
    if terms is None or terms.domain is not MessageType.LB:
        return None
    specimen = spec.strip().upper()
    if terms.specimens and specimen and specimen not in terms.specimens:
        return None
    unit = raw_unit.strip() or None
    sides: list[Side | None] = []
    for term in (terms.low, terms.high):
        if term is None:
            sides.append(None)
        elif terms.specimen_required and specimen not in terms.specimens:
            allowed = ", ".join(sorted(terms.specimens)).lower()
            reason = f"specimen {specimen or 'unknown'}: graded on {allowed} only"
            sides.append(Side(term, csv_cell(term), None, reason, None))
        else:
            selected = criteria.select(term, unit)
            ordinal = criteria.ordinal_for(term)
            if isinstance(selected, Criterion):
                sides.append(_numeric_side(term, selected, ordinal))
            else:
                sides.append(Side(term, csv_cell(term), None, selected.reason, ordinal))
    low, high = sides
    has_scale = any(side is not None and side.ordinal is not None for side in sides)
    return Plan(
        test=test,
        unit=raw_unit,
        unit_shown=raw_unit.strip(),
        unit_key=unit_key(raw_unit),
        screen=typo_screen(terms, unit),
        low=low,
        high=high,
        calcium=test == "CA",
        tsh=test == "TSH",
        needs_dtc=test in ("CA", "TSH") or has_scale,
    )


def row_grader(cols: LabColumns, ctx: Context, source: RecordSource) -> Callable[[list[str], int, Plan], str]:
    """The per-record grading step, with the column positions and context bound once.

    It returns the output cells added to the record, as CSV text: ",ATOXDSCL,ATOXGRL,ATOXDSCH,ATOXGRH,ATOXRSN\\n".
    """
    vi, li, hi, si, ti = cols.value, cols.lln, cols.uln, cols.subject, cols.text
    di, base_i, bnr_i, chg_i, pchg_i = cols.dtc, cols.base, cols.bnrind, cols.chg, cols.pchg
    has_change = chg_i >= 0 or pchg_i >= 0
    baselines, albumin_of, ft4_low, urine_24h_days = ctx.baselines, ctx.albumin, ctx.ft4_low, ctx.urine_24h_days

    def side_cells(
        side: Side,
        plan: Plan,
        row: list[str],
        value: float | None,
        subject: str,
        dtc: str,
        notes: list[str],
    ) -> str:
        """`ATOXDSCx,ATOXGRx` for one side not graded by its compiled walk, notes appended to `notes`."""
        if value is None and side.ordinal is not None and ti >= 0 and row[ti].strip():
            # Semi-quantitative result (urine dipstick "2+") in LBSTRESC.
            if (subject, dtc[:10]) in urine_24h_days:
                grade, provisional, text = -1, False, SUPERSEDED_BY_24H
            else:
                result = grade_ordinal(side.ordinal, row[ti])
                if isinstance(result, Graded):
                    grade, provisional, text = result.grade, result.provisional, result.note
                else:
                    grade, provisional, text = -1, False, result.reason
        elif side.numeric is None:
            grade, provisional, text = -1, False, side.refused
        else:
            grade, provisional, text = -1, False, "no numeric result"
        cells, note, grade = side_result(side.term, side.cell, (grade, provisional, text))
        if note:
            notes.append(note)
        if plan.tsh and grade >= 1 and (subject, dtc) in ft4_low:
            notes.append(_FT4_NOTE)
        return cells

    def cells_of(
        side: Side,
        plan: Plan,
        row: list[str],
        value: float | None,
        lln: float | None,
        uln: float | None,
        base: float | None,
        base_high: bool | None,
        dtc: str,
        notes: list[str],
    ) -> str:
        """`ATOXDSCx,ATOXGRx` for one side: its compiled walk gives the index of a result whose cells and note
        are already written; a side without one (ordinal results, refused units, no value) takes the long way."""
        if value is not None and side.walk is not None:
            cells, note, grade = side.results[side.walk(value, lln, uln, base, base_high)]
            if note:
                notes.append(note)
            if grade >= 1 and plan.tsh and (row[si], dtc) in ft4_low:
                notes.append(_FT4_NOTE)
            return cells
        return side_cells(side, plan, row, value, row[si], dtc, notes)

    def grade_row(row: list[str], number: int, plan: Plan) -> str:
        raw_value, raw_lln, raw_uln = row[vi], row[li], row[hi]
        try:
            value = float(raw_value) if raw_value else None
            lln = float(raw_lln) if raw_lln else None
            uln = float(raw_uln) if raw_uln else None
        except ValueError:  # blanks with spaces, or real garbage: the careful path names the column and line
            value = number_cell(raw_value.strip(), "LBSTRESN", source, number)
            lln = number_cell(raw_lln.strip(), "LBSTNRLO", source, number)
            uln = number_cell(raw_uln.strip(), "LBSTNRHI", source, number)
        subject = row[si]
        base: float | None = None
        base_high: bool | None = None
        notes: list[str] = []
        if base_i >= 0:
            # ADaM BASE / BNRIND supplied by the caller win over any derivation.
            base = number_cell(row[base_i].strip(), "BASE", source, number)
        if base is None and has_change and value is not None:
            # No BASE on the row: the caller's CHG / PCHG imply it (ADaM; admiral grades fibrinogen on PCHG).
            chg = number_cell(row[chg_i].strip(), "CHG", source, number) if chg_i >= 0 else None
            pchg = number_cell(row[pchg_i].strip(), "PCHG", source, number) if pchg_i >= 0 else None
            base = baseline_from_change(value, chg, pchg)
        if base is not None:
            base_high = is_baseline_high(row[bnr_i] if bnr_i >= 0 else None, base, uln)
        elif baselines:
            found = baselines.get((subject, plan.test))
            if found is not None:
                if found.unit == plan.unit_key:
                    base, base_high = found.value, found.high
                else:
                    shown = found.shown.strip().casefold()
                    notes.append(f"baseline unit {shown!r} differs from {plan.unit_shown!r}: baseline not used")
        if plan.screen is not None:
            caution = plan.screen.caution(value)
            if caution:
                notes.append(caution)
        dtc = row[di].strip() if di >= 0 and plan.needs_dtc else ""
        if plan.calcium and value is not None:
            albumin = albumin_of.get((subject, dtc)) if dtc else None
            corrected = corrected_calcium(value, plan.unit, *albumin) if albumin is not None else None
            if corrected is None:
                notes.append(_UNCORRECTED_NOTE)
            else:
                notes.append(f"albumin-corrected calcium {corrected:.4g} graded (total {value:g})")
                value = corrected
        low = "," if plan.low is None else cells_of(plan.low, plan, row, value, lln, uln, base, base_high, dtc, notes)
        high = (
            "," if plan.high is None else cells_of(plan.high, plan, row, value, lln, uln, base, base_high, dtc, notes)
        )
        if not notes:
            return f",{low},{high},\n"
        return f",{low},{high},{csv_cell(' | '.join(notes))}\n"

    return grade_row
