"""Owns `safety-monitor grade-labs`: batch CTCAE grading of an SDTM LB (or ADaM-style) CSV file."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

import click

from safety_monitor.adapters.ctcae_criteria import CriteriaFileError, load_criteria
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
)
from safety_monitor.domain.dates import InvalidDate, PartialDate
from safety_monitor.domain.grading import Graded, GradeResult, NotGradable
from safety_monitor.domain.messages import MessageType

REQUIRED_COLUMNS = ("USUBJID", "LBTESTCD", "LBSTRESN", "LBSTRESU", "LBSTNRLO", "LBSTNRHI")
# admiral's ADaM names for the derived grades, plus our reason column (blank grade = cannot grade).
OUTPUT_COLUMNS = ("ATOXDSCL", "ATOXGRL", "ATOXDSCH", "ATOXGRH", "ATOXRSN")
_FT4_CODES = frozenset({"FT4", "T4FR"})  # free thyroxine: flags a raised TSH with a low FT4 of the same draw
_TSH_TERM = "Thyroid stimulating hormone increased"


class InputError(click.ClickException):
    """Bad input: the message names the file and, where it applies, the line."""


@dataclass(frozen=True, slots=True)
class _Baseline:
    value: float
    unit: str
    high: bool | None


@dataclass(frozen=True, slots=True)
class _Columns:
    subject: int
    test: int
    value: int
    unit: int
    lln: int
    uln: int
    dtc: int
    blfl: int
    base: int
    bnrind: int
    nrind: int
    spec: int
    text: int
    first_dose: int

    @classmethod
    def of(cls, header: Sequence[str], path: str) -> _Columns:
        names = [h.strip().upper() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise InputError(
                f"{path}: missing required column(s) {', '.join(missing)}; "
                f"expected SDTM LB columns {', '.join(REQUIRED_COLUMNS)} "
                "(optional: LBDTC, LBBLFL, LBNRIND, LBSPEC, LBSTRESC, RFXSTDTC, BASE, BNRIND)"
            )

        def at(name: str) -> int:
            return names.index(name) if name in names else -1

        return cls(
            subject=at("USUBJID"),
            test=at("LBTESTCD"),
            value=at("LBSTRESN"),
            unit=at("LBSTRESU"),
            lln=at("LBSTNRLO"),
            uln=at("LBSTNRHI"),
            dtc=at("LBDTC"),
            blfl=at("LBBLFL"),
            base=at("BASE"),
            bnrind=at("BNRIND"),
            nrind=at("LBNRIND"),
            spec=at("LBSPEC"),
            text=at("LBSTRESC"),
            first_dose=at("RFXSTDTC"),
        )


def _number(raw: str, column: str, path: str, line: int) -> float | None:
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InputError(f"{path}, line {line}: {column} {raw!r} is not a number") from None


def _rows(path: Path, width: int) -> Iterator[tuple[int, list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) != width:
                if not row:
                    continue
                raise InputError(f"{path}, line {reader.line_num}: {len(row)} fields but the header has {width}")
            yield reader.line_num, row


@dataclass(slots=True)
class _Context:
    """What pass 1 learns: baselines, albumin and FT4 per draw, days with a 24-hour urine protein."""

    baselines: dict[tuple[str, str], _Baseline]
    albumin: dict[tuple[str, str], tuple[float, str]]
    ft4_low: set[tuple[str, str]]
    urine_24h_days: set[tuple[str, str]]


def _scan(path: Path, cols: _Columns, width: int, criteria: CriteriaSet) -> _Context:
    """Pass 1: only the records that inform other records' grades are parsed."""
    s = str(path)
    ctx = _Context({}, {}, set(), set())
    derive = cols.base < 0 and (cols.blfl >= 0 or (cols.first_dose >= 0 and cols.dtc >= 0))
    candidates: list[BaselineCandidate[_Baseline]] = []
    first_dose: dict[str, date] = {}
    proteinuria = criteria.ordinal_for("Proteinuria")
    urine_units = {u.casefold() for c in criteria.for_term("Proteinuria") if not c.is_ordinal for u in c.units}
    context_tests = {"ALB", "PROT", *_FT4_CODES}
    folded: dict[str, str] = {}  # raw LBTESTCD -> stripped upper case, computed once per spelling
    ti, bi, di, fi = cols.test, cols.blfl, cols.dtc, cols.first_dose
    for line, row in _rows(path, width):
        raw_test = row[ti]
        test = folded.get(raw_test)
        if test is None:
            test = folded[raw_test] = raw_test.strip().upper()
        flagged = bi >= 0 and row[bi] != "" and row[bi].strip().upper() == "Y"
        if test not in context_tests and not (derive and (flagged or fi >= 0)):
            continue  # the common case: a record that informs no other record's grade
        subject = row[cols.subject]
        dtc = row[di].strip() if di >= 0 else ""
        if test == "ALB" and dtc:
            value = _number(row[cols.value].strip(), "LBSTRESN", s, line)
            if value is not None:
                ctx.albumin[(subject, dtc)] = (value, row[cols.unit])
        elif test in _FT4_CODES and dtc:
            value = _number(row[cols.value].strip(), "LBSTRESN", s, line)
            lln = _number(row[cols.lln].strip(), "LBSTNRLO", s, line)
            nrind = row[cols.nrind] if cols.nrind >= 0 else None
            if is_below_normal(nrind, value, lln):
                ctx.ft4_low.add((subject, dtc))
        elif (
            test == "PROT"
            and proteinuria is not None
            and dtc
            and row[cols.value].strip()
            and row[cols.unit].strip().casefold() in urine_units
        ):
            ctx.urine_24h_days.add((subject, dtc[:10]))
        if not derive:
            continue
        if fi >= 0 and subject not in first_dose:
            raw_dose = row[fi].strip()
            if raw_dose:
                dose = _date(raw_dose, "RFXSTDTC", s, line).as_date()
                if dose is not None:
                    first_dose[subject] = dose
        if not flagged and fi < 0:
            continue
        value = _number(row[cols.value].strip(), "LBSTRESN", s, line)
        if value is None:
            continue
        uln = _number(row[cols.uln].strip(), "LBSTNRHI", s, line)
        nrind = row[cols.nrind] if cols.nrind >= 0 else None
        item = _Baseline(value, row[cols.unit].strip().casefold(), is_baseline_high(nrind, value, uln))
        collected = _date(dtc, "LBDTC", s, line) if dtc else None
        candidates.append(BaselineCandidate(subject, test, flagged, collected, item))
    if derive:
        ctx.baselines = derive_baselines(candidates, first_dose)
    return ctx


def _date(raw: str, column: str, path: str, line: int) -> PartialDate:
    try:
        return PartialDate.parse(raw)
    except InvalidDate as exc:
        raise InputError(f"{path}, line {line}: {column} {exc}") from None


@dataclass(frozen=True, slots=True)
class _Plan:
    """How records of one (test code, unit, specimen) are graded; built once per distinct key."""

    sides: tuple[tuple[str, Criterion | NotGradable | None, Criterion | None], ...]  # term, numeric, ordinal
    calcium: bool
    tsh: bool


_UNGRADED = ("", "", "", "", "")
_GRADE_TEXT = ("0", "1", "2", "3", "4", "5")


def grade_labs_csv(path: Path, out: TextIO, criteria: CriteriaSet) -> int:
    """Grade every record of `path`, writing every input column plus the grade columns; returns the count.

    Two passes over the file keep memory flat: pass 1 learns baselines and same-draw context, pass 2 grades
    and streams rows out. Criteria are looked up once per distinct (test code, unit, specimen).
    """
    s = str(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise InputError(f"{s}: empty file (no header row)")
    cols = _Columns.of(header, s)
    width = len(header)
    ctx = _scan(path, cols, width, criteria)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, *OUTPUT_COLUMNS])
    write = writer.writerow
    plans: dict[tuple[str, str, str], _Plan | None] = {}
    ti, ui, si = cols.test, cols.unit, cols.spec
    count = 0
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) != width:
                if not row:
                    continue
                raise InputError(f"{s}, line {reader.line_num}: {len(row)} fields but the header has {width}")
            count += 1
            key = (row[ti], row[ui], row[si] if si >= 0 else "")
            try:
                plan = plans[key]
            except KeyError:
                plan = plans[key] = _plan(criteria, *key)
            if plan is None:
                row.extend(_UNGRADED)
            else:
                row.extend(_grade_row(row, reader.line_num, cols, ctx, plan, criteria, s))
            write(row)
    return count


def _plan(criteria: CriteriaSet, raw_test: str, raw_unit: str, spec: str) -> _Plan | None:
    test = raw_test.strip().upper()
    terms = criteria.test_codes.get(test)
    if terms is None or terms.domain is not MessageType.LB:
        return None
    specimen = spec.strip().upper()
    if terms.specimens and specimen and specimen not in terms.specimens:
        return None
    unit = raw_unit.strip() or None
    sides: list[tuple[str, Criterion | NotGradable | None, Criterion | None]] = []
    for term in (terms.low, terms.high):
        if term is None:
            sides.append(("", None, None))
        elif terms.specimen_required and specimen not in terms.specimens:
            allowed = ", ".join(sorted(terms.specimens)).lower()
            reason = f"specimen {specimen or 'unknown'}: graded on {allowed} only"
            sides.append((term, NotGradable(term, reason, criteria.ctcae_version), None))
        else:
            sides.append((term, criteria.select(term, unit), criteria.ordinal_for(term)))
    return _Plan(tuple(sides), calcium=test == "CA", tsh=test == "TSH")


def _grade_row(
    row: list[str],
    line: int,
    cols: _Columns,
    ctx: _Context,
    plan: _Plan,
    criteria: CriteriaSet,
    path: str,
) -> tuple[str, str, str, str, str]:
    raw_value = row[cols.value]
    try:
        value = float(raw_value) if raw_value else None
        lln = float(row[cols.lln]) if row[cols.lln] else None
        uln = float(row[cols.uln]) if row[cols.uln] else None
    except ValueError:  # blanks with spaces, or real garbage: the careful path names the column and line
        value = _number(raw_value.strip(), "LBSTRESN", path, line)
        lln = _number(row[cols.lln].strip(), "LBSTNRLO", path, line)
        uln = _number(row[cols.uln].strip(), "LBSTNRHI", path, line)
    subject = row[cols.subject]
    unit = row[cols.unit]
    base: float | None = None
    base_high: bool | None = None
    notes: list[str] = []
    if cols.base >= 0:
        # ADaM BASE / BNRIND supplied by the caller win over any derivation.
        base = _number(row[cols.base].strip(), "BASE", path, line)
        bnrind = row[cols.bnrind] if cols.bnrind >= 0 else None
        base_high = is_baseline_high(bnrind, base, uln) if base is not None else None
    elif ctx.baselines:
        found = ctx.baselines.get((subject, row[cols.test].strip().upper()))
        if found is not None:
            if found.unit == unit.strip().casefold():
                base, base_high = found.value, found.high
            else:
                notes.append(f"baseline unit {found.unit!r} differs from {unit.strip()!r}: baseline not used")
    dtc = row[cols.dtc].strip() if cols.dtc >= 0 else ""
    if plan.calcium and value is not None:
        albumin = ctx.albumin.get((subject, dtc)) if dtc else None
        corrected = corrected_calcium(value, unit, albumin[0], albumin[1]) if albumin is not None else None
        if corrected is None:
            notes.append("total calcium graded uncorrected (no albumin of the same draw in a pairing unit)")
        else:
            notes.append(f"albumin-corrected calcium {corrected:.4g} graded (total {value:g})")
            value = corrected
    out: list[str] = []
    for term, criterion, ordinal in plan.sides:
        if criterion is None:
            out += ("", "")
            continue
        if value is not None and type(criterion) is Criterion:
            grade, provisional, text = evaluate(criterion, value, lln, uln, base, base_high)
        else:
            result: GradeResult
            if value is None and ordinal is not None and cols.text >= 0 and row[cols.text].strip():
                # Semi-quantitative result (urine dipstick "2+") in LBSTRESC.
                result = grade_ordinal(ordinal, row[cols.text])
                if (subject, dtc[:10]) in ctx.urine_24h_days:
                    result = NotGradable(term, SUPERSEDED_BY_24H, criteria.ctcae_version)
            elif isinstance(criterion, NotGradable):
                result = criterion
            else:
                result = NotGradable(term, "no numeric result", criteria.ctcae_version)
            if isinstance(result, Graded):
                grade, provisional, text = result.grade, result.provisional, result.note
            else:
                grade, provisional, text = -1, False, result.reason
        if grade < 0:
            out += (term, "")
            notes.append(f"{term}: cannot grade: {text}")
            continue
        out += (term, _GRADE_TEXT[grade])
        if provisional:
            notes.append(f"{term} grade {grade} provisional: {text}")
        elif text:
            notes.append(f"{term}: {text}")
        if plan.tsh and grade >= 1 and (subject, dtc) in ctx.ft4_low:
            notes.append("FT4 below LLN in the same draw: consider Hypothyroidism (CTCAE navigational note)")
    return out[0], out[1], out[2], out[3], " | ".join(notes) if notes else ""


@click.command("grade-labs")
@click.argument("input_csv", metavar="INPUT.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the graded CSV here (default: standard output).",
)
@click.option("--ctcae-version", default="5.0", show_default=True, help="CTCAE version of the criteria.")
def grade_labs(input_csv: Path, output: Path | None, ctcae_version: str) -> None:
    """Grade lab results by CTCAE (admiral conventions) and write them with the grade columns added.

    INPUT.csv has SDTM LB columns USUBJID, LBTESTCD, LBSTRESN, LBSTRESU, LBSTNRLO, LBSTNRHI; optional LBDTC,
    LBBLFL, LBNRIND, LBSPEC, LBSTRESC (urine dipstick) and RFXSTDTC (first dose: baseline = last value on or
    before it when no record is flagged LBBLFL=Y). ADaM-style BASE and BNRIND, when present, are used as the
    baseline instead. Output: every input column plus ATOXDSCL, ATOXGRL, ATOXDSCH, ATOXGRH (blank grade =
    cannot grade) and ATOXRSN (why a grade is missing or provisional). Unknown test codes pass through
    ungraded.
    """
    try:
        criteria = load_criteria(ctcae_version)
    except CriteriaFileError as exc:
        raise click.ClickException(str(exc)) from None
    if output is None:
        grade_labs_csv(input_csv, sys.stdout, criteria)
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("w", newline="", encoding="utf-8") as out:
            count = grade_labs_csv(input_csv, out, criteria)
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    click.echo(f"graded {count} records -> {output}", err=True)
