"""Reads SDTM tables (LB and alike) from CSV or SAS transport (XPORT v5) files as text columns and rows."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path

XPORT_SUFFIX = ".xpt"


class SdtmFileError(Exception):
    """A file that cannot be read as an SDTM table; the message names the file (and the line, where known)."""


def is_xport(path: Path) -> bool:
    """SAS transport input is recognised by its extension, in any case (`lb.xpt`, `LB.XPT`)."""
    return path.suffix.lower() == XPORT_SUFFIX


def read_lb_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of a CSV or XPORT file, every cell as text, rows as wide as the header.

    CSV cells are kept exactly as written. XPORT cells are rendered as SDTM shows them (see `xport_cell`), so
    grading an XPORT file gives the same output as grading the CSV the same rows would be exported to. Blank
    CSV lines are skipped; a CSV row of another width than the header is an error naming its line.
    """
    if is_xport(path):
        return read_xport_table(path)
    return read_csv_table(path)


def read_csv_table(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if not header:
                raise SdtmFileError(f"{path}: empty file (no header row)")
            rows: list[list[str]] = []
            for row in reader:
                if len(row) != len(header):
                    if not row:
                        continue
                    raise SdtmFileError(
                        f"{path}, line {reader.line_num}: {len(row)} fields but the header has {len(header)}"
                    )
                rows.append(row)
        except csv.Error as exc:
            raise SdtmFileError(f"{path}, line {reader.line_num}: {exc}") from None
    return header, rows


def read_xport_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Every variable of the first member of a SAS XPORT v5 file, as text (pyreadstat reads it whole)."""
    import pyreadstat  # imported here: numpy and the reader load only when an XPORT file is graded

    try:
        data, meta = pyreadstat.read_xport(path, output_format="dict")
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, OSError, UnicodeDecodeError) as exc:
        raise SdtmFileError(f"{path}: not a readable SAS transport (XPORT v5) file: {exc}") from None
    columns = [str(name) for name in meta.column_names]
    if not columns:
        raise SdtmFileError(f"{path}: the SAS transport file has no variables")
    cells: list[Sequence[object]] = [data[name] for name in columns]
    rendered = [[xport_cell(value) for value in column] for column in cells]
    return columns, [list(row) for row in zip(*rendered, strict=True)]


def xport_cell(value: object) -> str:
    """One XPORT value as SDTM text.

    SAS stores every number as a double: a whole number is written without a decimal part ("100", as SAS's
    BEST. format and SDTM datasets show it), any other number as the shortest text that reads back to the same
    double ("2.49"). A missing value (".", ".A"-".Z", blank) is empty. Variables with a SAS date, datetime or
    time format become ISO 8601 text ("2024-01-05", "2024-01-05T08:00:00"), as SDTM --DTC variables hold it.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds" if value.microsecond == 0 else "microseconds")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)
