"""`grade-labs` gives the grade admiral's own CTCAE v5 test cases expect, row for row (tests/data/admiral_*.json)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.cli.grade_labs import grade_labs_csv

CASES = Path(__file__).parents[1] / "data" / "admiral_ctcae_v5_cases.json"
# admiral's analysis names -> the SDTM LB columns grade-labs reads (ADaM BASE, BNRIND and PCHG keep their names)
_COLUMN = {"AVAL": "LBSTRESN", "ANRLO": "LBSTNRLO", "ANRHI": "LBSTNRHI", "AVALU": "LBSTRESU"}
_ORDER = ("AVAL", "AVALU", "ANRLO", "ANRHI", "BASE", "BNRIND", "PCHG", "CHG")


@dataclass(frozen=True)
class Case:
    where: str  # "admiral test 46c, row 3"
    test_code: str
    side: str  # "L" or "H": compared with ATOXGRL or ATOXGRH
    inputs: dict[str, Any]
    expected: int | None


def _transform(row: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """One of admiral's derivations of a table: copy a column, offset it, scale values, respell the unit, set."""
    row = dict(row)
    for target, source in spec.get("copy", {}).items():
        row[target] = row.get(source)
    for column, delta in spec.get("offset", {}).items():
        row[column] = None if row.get(column) is None else row[column] + delta
    for column, factor in spec.get("scale", {}).items():
        row[column] = None if row.get(column) is None else row[column] * factor
    if "units" in spec:
        unit = row.get("AVALU")
        mapped = {k.upper(): v for k, v in spec["units"].items()}
        if unit is not None and unit.upper() in mapped:
            row["AVALU"] = mapped[unit.upper()]
        elif spec.get("other_units") == "missing":
            row["AVALU"] = None
    row.update(spec.get("set", {}))
    return row


def load_cases() -> list[Case]:
    doc = json.loads(CASES.read_text(encoding="utf-8"))
    cases: list[Case] = []
    for table in doc["tables"]:
        base = []
        for raw in table["rows"]:
            *values, expected = raw
            base.append((_transform(dict(zip(table["columns"], values, strict=True)), table), expected))
        versions = [(table["admiral_test"], {})] + [(v["admiral_test"], v) for v in table.get("variants", [])]
        for name, spec in versions:
            for number, (row, expected) in enumerate(base, 1):
                cases.append(
                    Case(
                        f"admiral test {name}, row {number}",
                        table["test_code"],
                        table["side"],
                        _transform(row, spec),
                        expected,
                    )
                )
    return cases


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def grade_cases(cases: list[Case]) -> list[tuple[Case, int | None, str]]:
    """(case, grade-labs' grade, its ATOXRSN) for every case, all in one CSV file as a data manager would give it."""
    columns = [c for c in _ORDER if any(c in case.inputs for case in cases)]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["USUBJID", "LBTESTCD", *(_COLUMN.get(c, c) for c in columns)])
    for number, case in enumerate(cases, 1):
        writer.writerow([f"S{number}", case.test_code, *(_cell(case.inputs.get(c)) for c in columns)])
    return _run(cases, text.getvalue())


def _run(cases: list[Case], text: str) -> list[tuple[Case, int | None, str]]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "admiral_cases.csv"
        path.write_text(text, encoding="utf-8")
        out = io.StringIO()
        grade_labs_csv(path, out, load_criteria("5.0"))
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    graded = []
    for case, row in zip(cases, rows, strict=True):
        cell = row["ATOXGRL" if case.side == "L" else "ATOXGRH"]
        graded.append((case, int(cell) if cell else None, row["ATOXRSN"]))
    return graded


def test_every_admiral_case_agrees() -> None:
    graded = grade_cases(load_cases())
    wrong = [
        f"{case.where} ({case.test_code} {case.inputs}): admiral {case.expected}, grade-labs {got} ({why})"
        for case, got, why in graded
        if got != case.expected
    ]
    assert not wrong, f"{len(wrong)} of {len(graded)} cases disagree:\n" + "\n".join(wrong)


@pytest.mark.parametrize("test_code", ["WBC", "LYM", "NEUT", "PLAT", "CD4", "FIBRINO", "CAION"])
def test_the_three_causes_are_covered(test_code: str) -> None:
    """The units, ionized calcium in mg/dL and percent change rows are in the comparison, not left out."""
    cases = load_cases()
    units = {c.inputs.get("AVALU") for c in cases if c.test_code == test_code}
    wanted = {"WBC": "10^3/mL", "LYM": "10^3/mL", "NEUT": "10^3/mL", "PLAT": "10^3/mL", "CD4": "1/uL", "CAION": "mg/dL"}
    if test_code == "FIBRINO":
        assert any(
            c.inputs.get("PCHG") is not None and "BASE" not in c.inputs for c in cases if c.test_code == test_code
        )
    else:
        assert wanted[test_code] in units
