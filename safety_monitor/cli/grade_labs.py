"""Owns `safety-monitor grade-labs`: batch CTCAE grading of an SDTM LB (or ADaM-style) CSV or XPORT file."""

from __future__ import annotations

import csv
import gc
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import TextIO

import click

from safety_monitor.adapters.ctcae_criteria import CriteriaFileError, load_criteria
from safety_monitor.adapters.sdtm_files import SdtmFileError, is_xport, read_xport_table
from safety_monitor.cli.lab_records import (
    InputError,
    LabColumns,
    LastWrite,
    Record,
    RecordSource,
    csv_cell,
    csv_header,
    csv_records,
    date_cell,
    number_cell,
)
from safety_monitor.domain.baselines import baseline_from_change
from safety_monitor.domain.ctcae import (
    SUPERSEDED_BY_24H,
    BaselineCandidate,
    CriteriaSet,
    Criterion,
    corrected_calcium,
    derive_baselines,
    evaluate,
    grade_ordinal,
    is_baseline_high,
    is_below_normal,
    unit_key,
)
from safety_monitor.domain.grading import Graded
from safety_monitor.domain.messages import MessageType
from safety_monitor.domain.plausibility import TypoScreen, typo_screen

# admiral's ADaM names for the derived grades, plus our reason column (blank grade = cannot grade).
OUTPUT_COLUMNS = ("ATOXDSCL", "ATOXGRL", "ATOXDSCH", "ATOXGRH", "ATOXRSN")
_FT4_CODES = frozenset({"FT4", "T4FR"})  # free thyroxine: flags a raised TSH with a low FT4 of the same draw
_CONTEXT_TESTS = frozenset({"ALB", "PROT", *_FT4_CODES})  # records that inform other records' grades
_FLUSH_EVERY = 4096  # output rows joined into one write


@dataclass(frozen=True, slots=True)
class _Baseline:
    value: float
    unit: tuple[str, float]  # unit_key: a baseline in an exactly equivalent unit is used
    high: bool | None
    shown: str  # the unit as read (for the note when it cannot be used)


# --- pass 1: context ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    """What pass 1 learns: baselines, albumin and FT4 per draw, days with a 24-hour urine protein."""

    baselines: dict[tuple[str, str], _Baseline]
    albumin: dict[tuple[str, str], tuple[float, str]]
    ft4_low: set[tuple[str, str]]
    urine_24h_days: set[tuple[str, str]]


def _needs_context(cols: LabColumns) -> bool:
    """Whether pass 1 can learn anything: baselines to derive, or same-draw context (which needs LBDTC)."""
    return cols.derives_baselines or cols.dtc >= 0


def _scan(records: Iterable[Record], cols: LabColumns, criteria: CriteriaSet, source: RecordSource) -> _Context:
    """Pass 1: only the records that inform other records' grades are parsed."""
    ctx = _Context({}, {}, set(), set())
    derive = cols.derives_baselines
    every_record = derive and cols.first_dose >= 0  # the last value before first dose may be any record
    candidates: list[BaselineCandidate[_Baseline]] = []
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
        item = _Baseline(value, key, is_baseline_high(nrind, value, uln), raw_unit)
        collected = date_cell(dtc, "LBDTC", source, line) if dtc else None
        candidates.append(BaselineCandidate(subject, test, flagged, collected, item))
    if derive:
        ctx.baselines = derive_baselines(candidates, first_dose)
    return ctx


# --- pass 2: grading ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Side:
    """One CTCAE term a test code is graded against, with what grades it for one unit and specimen."""

    term: str
    cell: str  # the term as an output cell
    numeric: Criterion | None  # None: `refused` says why this unit or specimen cannot be graded
    refused: str
    ordinal: Criterion | None  # semi-quantitative scale (urine dipstick), graded from LBSTRESC


@dataclass(frozen=True, slots=True)
class _Plan:
    """How records of one (test code, unit, specimen) are graded; built once per distinct key."""

    test: str  # LBTESTCD stripped, upper case
    unit: str  # LBSTRESU as given (calcium correction reads it), stripped, and folded for baseline matching
    unit_shown: str
    unit_key: tuple[str, float]  # baselines in an exactly equivalent unit are used
    screen: TypoScreen | None  # flags results implausible in a typo-prone unit (platelets 5 in 10^3/mL)
    low: _Side | None
    high: _Side | None
    calcium: bool
    tsh: bool
    needs_dtc: bool  # calcium, TSH or an ordinal scale: same-draw context is looked up by LBDTC


_UNGRADED_TAIL = ",,,,,\n"
_GRADE_TEXT = ("0", "1", "2", "3", "4", "5")
_FT4_NOTE = "FT4 below LLN in the same draw: consider Hypothyroidism (CTCAE navigational note)"
_UNCORRECTED_NOTE = "total calcium graded uncorrected (no albumin of the same draw in a pairing unit)"


def _plan(criteria: CriteriaSet, raw_test: str, raw_unit: str, spec: str = "") -> _Plan | None:
    test = raw_test.strip().upper()
    terms = criteria.test_codes.get(test)
    if terms is None or terms.domain is not MessageType.LB:
        return None
    specimen = spec.strip().upper()
    if terms.specimens and specimen and specimen not in terms.specimens:
        return None
    unit = raw_unit.strip() or None
    sides: list[_Side | None] = []
    for term in (terms.low, terms.high):
        if term is None:
            sides.append(None)
        elif terms.specimen_required and specimen not in terms.specimens:
            allowed = ", ".join(sorted(terms.specimens)).lower()
            reason = f"specimen {specimen or 'unknown'}: graded on {allowed} only"
            sides.append(_Side(term, csv_cell(term), None, reason, None))
        else:
            selected = criteria.select(term, unit)
            ordinal = criteria.ordinal_for(term)
            if isinstance(selected, Criterion):
                sides.append(_Side(term, csv_cell(term), selected, "", ordinal))
            else:
                sides.append(_Side(term, csv_cell(term), None, selected.reason, ordinal))
    low, high = sides
    has_scale = any(side is not None and side.ordinal is not None for side in sides)
    return _Plan(
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


def _row_grader(cols: LabColumns, ctx: _Context, source: RecordSource) -> Callable[[list[str], int, _Plan], str]:
    """The per-record grading step, with the column positions and context bound once.

    It returns the output cells added to the record, as CSV text: ",ATOXDSCL,ATOXGRL,ATOXDSCH,ATOXGRH,ATOXRSN\\n".
    """
    vi, li, hi, si, ti = cols.value, cols.lln, cols.uln, cols.subject, cols.text
    di, base_i, bnr_i, chg_i, pchg_i = cols.dtc, cols.base, cols.bnrind, cols.chg, cols.pchg
    has_change = chg_i >= 0 or pchg_i >= 0
    baselines, albumin_of, ft4_low, urine_24h_days = ctx.baselines, ctx.albumin, ctx.ft4_low, ctx.urine_24h_days

    def side_cells(
        side: _Side | None,
        plan: _Plan,
        row: list[str],
        value: float | None,
        lln: float | None,
        uln: float | None,
        base: float | None,
        base_high: bool | None,
        subject: str,
        dtc: str,
        notes: list[str],
    ) -> str:
        """`ATOXDSCx,ATOXGRx` for one side, notes appended to `notes`."""
        if side is None:
            return ","
        term = side.term
        criterion = side.numeric
        if value is not None and criterion is not None:
            grade, provisional, text = evaluate(criterion, value, lln, uln, base, base_high)
        elif value is None and side.ordinal is not None and ti >= 0 and row[ti].strip():
            # Semi-quantitative result (urine dipstick "2+") in LBSTRESC.
            if (subject, dtc[:10]) in urine_24h_days:
                grade, provisional, text = -1, False, SUPERSEDED_BY_24H
            else:
                result = grade_ordinal(side.ordinal, row[ti])
                if isinstance(result, Graded):
                    grade, provisional, text = result.grade, result.provisional, result.note
                else:
                    grade, provisional, text = -1, False, result.reason
        elif criterion is None:
            grade, provisional, text = -1, False, side.refused
        else:
            grade, provisional, text = -1, False, "no numeric result"
        if grade < 0:
            notes.append(f"{term}: cannot grade: {text}")
            return side.cell + ","
        if provisional:
            notes.append(f"{term} grade {grade} provisional: {text}")
        elif text:
            notes.append(f"{term}: {text}")
        if plan.tsh and grade >= 1 and (subject, dtc) in ft4_low:
            notes.append(_FT4_NOTE)
        return side.cell + "," + _GRADE_TEXT[grade]

    def grade_row(row: list[str], number: int, plan: _Plan) -> str:
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
        low = side_cells(plan.low, plan, row, value, lln, uln, base, base_high, subject, dtc, notes)
        high = side_cells(plan.high, plan, row, value, lln, uln, base, base_high, subject, dtc, notes)
        if not notes:
            return f",{low},{high},\n"
        return f",{low},{high},{csv_cell(' | '.join(notes))}\n"

    return grade_row


def grade_labs_csv(path: Path, out: TextIO, criteria: CriteriaSet) -> int:
    """Grade every record of a CSV or XPORT file, writing every input column plus the grade columns as CSV.

    CSV input is read twice, keeping memory flat: pass 1 learns baselines and same-draw context (skipped when
    the file has nothing to learn it from), pass 2 grades and streams rows out. XPORT input is read whole.
    Criteria are looked up once per distinct (test code, unit, specimen). Returns the number of records.
    """
    if is_xport(path):
        try:
            header, rows = read_xport_table(path)
        except SdtmFileError as exc:
            raise InputError(str(exc)) from None
        source = RecordSource(str(path), "record")

        def records() -> Iterator[Record]:
            return ((number, row, None) for number, row in enumerate(rows, 1))

    else:
        source = RecordSource(str(path), "line")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header, _ = csv_header(handle, source)
        width = len(header)

        def records() -> Iterator[Record]:
            return csv_records(path, width, source)

    with _without_cyclic_gc():
        return _grade_records(header, records, out, criteria, source)


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused while records are graded, and resumed after (errors included).

    Grading makes and drops millions of small tuples and dicts, none in a reference cycle: reference counting frees
    each one. The collector still ran every few hundred allocations, and its cost grew with the file: at 1,000,000
    records grade-labs went from 147,600 to 169,100 records/s without it (bench/bench_grade_labs.py, three runs
    each, back to back), with the same peak traced memory (30.5 MB), so nothing waited for it to be freed."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _grade_records(
    header: list[str],
    records: Callable[[], Iterable[Record]],
    out: TextIO,
    criteria: CriteriaSet,
    source: RecordSource,
) -> int:
    cols = LabColumns.of(header, source.path)
    ctx = _scan(records(), cols, criteria, source) if _needs_context(cols) else _Context({}, {}, set(), set())
    last = LastWrite()
    quote = csv.writer(last, lineterminator="\n").writerow  # rows whose cells need quoting
    quote([*header, *OUTPUT_COLUMNS])
    out.write(last.text)
    grade_row = _row_grader(cols, ctx, source)
    plans: dict[tuple[str, ...], _Plan | None] = {}
    key_of: Callable[[list[str]], tuple[str, ...]] = (
        itemgetter(cols.test, cols.unit, cols.spec) if cols.spec >= 0 else itemgetter(cols.test, cols.unit)
    )
    buffer: list[str] = []
    append = buffer.append
    count = 0
    for number, row, body in records():
        count += 1
        key = key_of(row)
        try:
            plan = plans[key]
        except KeyError:
            plan = plans[key] = _plan(criteria, *key)
        tail = _UNGRADED_TAIL if plan is None else grade_row(row, number, plan)
        if body is None:
            quote(row)
            body = last.text[:-1]
        append(body + tail)
        if len(buffer) >= _FLUSH_EVERY:
            out.write("".join(buffer))
            buffer.clear()
    out.write("".join(buffer))
    return count


@click.command("grade-labs")
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the graded CSV here (default: standard output).",
)
@click.option("--ctcae-version", default="5.0", show_default=True, help="CTCAE version of the criteria.")
def grade_labs(input_file: Path, output: Path | None, ctcae_version: str) -> None:
    """Grade lab results by CTCAE (admiral conventions) and write them as CSV with the grade columns added.

    INPUT is a CSV file or, when its name ends in .xpt, a SAS transport (XPORT v5) file, with SDTM LB
    columns USUBJID, LBTESTCD, LBSTRESN, LBSTRESU, LBSTNRLO, LBSTNRHI; optional LBDTC, LBBLFL, LBNRIND,
    LBSPEC, LBSTRESC (urine dipstick) and RFXSTDTC (first dose: baseline = last value on or before it when no
    record is flagged LBBLFL=Y). ADaM-style BASE and BNRIND, when present, are used as the baseline instead; a
    row without BASE but with CHG or PCHG uses the baseline they imply (BASE = AVAL - CHG, or AVAL / (1 + PCHG/100)).
    XPORT numbers are written as SDTM shows them (100, not 100.0; missing = blank), SAS dates as ISO 8601.
    Units: any exact equivalent of the unit CTCAE states is graded (1/uL and 10^3/mL as /mm3, 10^3/uL as
    10^9/L); a count in 10^3/mL too low to be real is graded as sent and flagged in ATOXRSN.
    Output: every input column plus ATOXDSCL, ATOXGRL, ATOXDSCH, ATOXGRH (blank grade = cannot grade) and
    ATOXRSN (why a grade is missing, provisional or to be checked). Unknown test codes pass through ungraded.
    """
    try:
        criteria = load_criteria(ctcae_version)
    except CriteriaFileError as exc:
        raise click.ClickException(str(exc)) from None
    if output is None:
        grade_labs_csv(input_file, sys.stdout, criteria)
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("w", newline="", encoding="utf-8") as out:
            count = grade_labs_csv(input_file, out, criteria)
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    click.echo(f"graded {count} records -> {output}", err=True)
