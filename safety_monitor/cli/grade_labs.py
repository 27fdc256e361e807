"""Owns `safety-monitor grade-labs`: batch CTCAE grading of an SDTM LB (or ADaM-style) CSV or XPORT file."""

from __future__ import annotations

import csv
import gc
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import TextIO

import click

from safety_monitor.adapters.ctcae_criteria import CriteriaFileError, load_criteria
from safety_monitor.adapters.sdtm_files import SdtmFileError, is_xport, read_xport_table
from safety_monitor.cli.lab_context import Context, needs_context, scan
from safety_monitor.cli.lab_grader import UNGRADED_TAIL, Plan, plan_for, row_grader
from safety_monitor.cli.lab_records import (
    InputError,
    LabColumns,
    LastWrite,
    Record,
    RecordSource,
    csv_header,
    csv_records,
)
from safety_monitor.domain.ctcae import CriteriaSet

# admiral's ADaM names for the derived grades, plus our reason column (blank grade = cannot grade).
OUTPUT_COLUMNS = ("ATOXDSCL", "ATOXGRL", "ATOXDSCH", "ATOXGRH", "ATOXRSN")
_FLUSH_EVERY = 4096  # output rows joined into one write


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
    ctx = scan(records(), cols, criteria, source) if needs_context(cols) else Context({}, {}, set(), set())
    last = LastWrite()
    quote = csv.writer(last, lineterminator="\n").writerow  # rows whose cells need quoting
    quote([*header, *OUTPUT_COLUMNS])
    out.write(last.text)
    grade_row = row_grader(cols, ctx, source)
    plans: dict[tuple[str, ...], Plan | None] = {}
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
            plan = plans[key] = plan_for(criteria, *key)
        tail = UNGRADED_TAIL if plan is None else grade_row(row, number, plan)
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
