"""Owns reading an SDTM LB table for `grade-labs`: its columns, its records as split cells, and where each came from."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TextIO

import click

from safety_monitor.domain.dates import InvalidDate, PartialDate

REQUIRED_COLUMNS = ("USUBJID", "LBTESTCD", "LBSTRESN", "LBSTRESU", "LBSTNRLO", "LBSTNRHI")

# (line or record number, cells, the CSV line as read without its terminator or None when it must be
# re-quoted): what both passes iterate over.
Record = tuple[int, list[str], str | None]


class InputError(click.ClickException):
    """Bad input: the message names the file and, where it applies, the line (CSV) or record (XPORT)."""


@dataclass(frozen=True, slots=True)
class LabColumns:
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
    chg: int
    pchg: int

    @classmethod
    def of(cls, header: Sequence[str], path: str) -> LabColumns:
        names = [h.strip().upper() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise InputError(
                f"{path}: missing required column(s) {', '.join(missing)}; "
                f"expected SDTM LB columns {', '.join(REQUIRED_COLUMNS)} "
                "(optional: LBDTC, LBBLFL, LBNRIND, LBSPEC, LBSTRESC, RFXSTDTC, BASE, BNRIND, CHG, PCHG)"
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
            chg=at("CHG"),
            pchg=at("PCHG"),
        )

    @property
    def derives_baselines(self) -> bool:
        """Baselines come from LBBLFL or from RFXSTDTC + LBDTC, unless the caller gives ADaM BASE."""
        return self.base < 0 and (self.blfl >= 0 or (self.first_dose >= 0 and self.dtc >= 0))


@dataclass(frozen=True, slots=True)
class RecordSource:
    """Where records come from, for error messages: `<path>, line 12` (CSV) or `<path>, record 12` (XPORT)."""

    path: str
    unit: str

    def at(self, number: int) -> str:
        return f"{self.path}, {self.unit} {number}"


def number_cell(raw: str, column: str, source: RecordSource, number: int) -> float | None:
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InputError(f"{source.at(number)}: {column} {raw!r} is not a number") from None


def date_cell(raw: str, column: str, source: RecordSource, number: int) -> PartialDate:
    try:
        return PartialDate.parse(raw)
    except InvalidDate as exc:
        raise InputError(f"{source.at(number)}: {column} {exc}") from None


# --- reading ------------------------------------------------------------------------------------------------


def csv_header(handle: TextIO, source: RecordSource) -> tuple[list[str], int]:
    """The header row and the number of physical lines it took."""
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"{source.at(reader.line_num)}: {exc}") from None
    if not header:
        raise InputError(f"{source.path}: empty file (no header row)")
    return header, reader.line_num


def csv_records(path: Path, width: int, source: RecordSource) -> Iterator[Record]:
    """The data records of a CSV file, exactly as `csv.reader` (excel dialect) splits them, only faster.

    A line without a double quote (or NUL) is one record whose cells are the line split at commas: that is
    what csv.reader makes of it, and such cells need no quoting on output either, so the line is handed on
    to be echoed as read. Any other line goes through csv.reader, which reads on through quoted line breaks.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        _, number = csv_header(handle, source)
        for line in handle:
            number += 1
            if '"' in line or "\0" in line:
                reader = csv.reader(chain((line,), handle))
                try:
                    row = next(reader, [])
                except csv.Error as exc:
                    raise InputError(f"{source.at(number + reader.line_num - 1)}: {exc}") from None
                number += reader.line_num - 1
                body = None
            else:
                body = line.rstrip("\r\n")  # a line holds exactly one terminator: \n, \r\n or \r
                if not body:
                    continue  # a blank line: csv.reader yields [] for it
                row = body.split(",")
            if len(row) != width:
                if not row:
                    continue
                raise InputError(f"{source.at(number)}: {len(row)} fields but the header has {width}")
            yield number, row, body


class LastWrite:
    """A csv.writer target keeping the one string each writerow() writes."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text = text
        return len(text)


def csv_cell(text: str) -> str:
    """`text` as csv.writer (QUOTE_MINIMAL, "\\n" line ends) writes a single cell."""
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text
