"""`safety-monitor grade-labs` end to end through click: columns, grades, baselines, precedence, errors."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from safety_monitor.adapters.sdtm_files import SdtmFileError, read_lb_table, xport_cell
from safety_monitor.cli.grade_labs import grade_labs

HEADER = "USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBSTNRLO,LBSTNRHI,LBDTC,LBBLFL,LBSTRESC,LBSPEC,VISIT"
ROWS = """\
S1,K,2.49,mmol/L,3.5,5.1,2024-01-01,Y,,SERUM,SCREEN
S1,ALT,100,U/L,0,40,2024-01-01,Y,,SERUM,SCREEN
S1,ALT,160,U/L,0,40,2024-02-01,,,SERUM,C2
S1,XYZ,1,U/L,0,40,2024-02-01,,,SERUM,C2
S1,PROT,,,,,2024-02-01,,2+,URINE,C2
S1,PROT,1.2,g/24h,0,0.15,2024-02-01,,,URINE,C2
S1,PROT,,,,,2024-03-01,,4+,URINE,C3
S1,SODIUM,127,mmol/L,135,145,2024-03-01,,,SERUM,C3
S1,K,4,mg/dL,3.5,5.1,2024-03-01,,,SERUM,C3
S2,ALT,130,U/L,0,40,2024-02-01,,,SERUM,C2
S2,HGB,,g/L,120,160,2024-02-01,,,SERUM,C2
S2,PLAT,49.99,10^9/L,,,2024-02-01,,,SERUM,C2
"""


def write(tmp_path: Path, text: str, name: str = "lb.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(grade_labs, list(args))
    return result.exit_code, result.stdout, result.stderr


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_stdout_has_every_input_column_plus_grades(tmp_path: Path) -> None:
    code, out, _ = run(str(write(tmp_path, f"{HEADER}\n{ROWS}")))
    assert code == 0
    rows = parse(out)
    assert list(rows[0]) == [*HEADER.split(","), "ATOXDSCL", "ATOXGRL", "ATOXDSCH", "ATOXGRH", "ATOXRSN"]
    assert len(rows) == 12
    k = rows[0]
    assert (k["ATOXDSCL"], k["ATOXGRL"], k["ATOXDSCH"], k["ATOXGRH"], k["VISIT"]) == (
        "Hypokalemia", "4", "Hyperkalemia", "0", "SCREEN",
    )  # fmt: skip


def test_baseline_from_lbblfl_drives_liver_grading(tmp_path: Path) -> None:
    rows = parse(run(str(write(tmp_path, f"{HEADER}\n{ROWS}")))[1])
    # S1 baseline ALT 100 > ULN 40: 160 is 1.6 x baseline -> grade 1 (would be grade 3 against ULN)
    assert (rows[2]["ATOXDSCH"], rows[2]["ATOXGRH"]) == ("Alanine aminotransferase increased", "1")
    assert "multiples of baseline" in rows[2]["ATOXRSN"]
    # S2 has no baseline: graded against ULN, worst case, provisional
    assert rows[9]["ATOXGRH"] == "2"
    assert "provisional" in rows[9]["ATOXRSN"]


def test_unknown_test_code_passes_through_ungraded(tmp_path: Path) -> None:
    row = parse(run(str(write(tmp_path, f"{HEADER}\n{ROWS}")))[1])[3]
    assert row["LBTESTCD"] == "XYZ"
    assert [row[c] for c in ("ATOXDSCL", "ATOXGRL", "ATOXDSCH", "ATOXGRH", "ATOXRSN")] == ["", "", "", "", ""]


def test_proteinuria_24h_takes_precedence_over_same_day_dipstick(tmp_path: Path) -> None:
    rows = parse(run(str(write(tmp_path, f"{HEADER}\n{ROWS}")))[1])
    assert (rows[4]["ATOXDSCH"], rows[4]["ATOXGRH"]) == ("Proteinuria", "")
    assert "24-hour" in rows[4]["ATOXRSN"]
    assert rows[5]["ATOXGRH"] == "2"
    assert rows[6]["ATOXGRH"] == "3"  # 4+ on a day without a 24-hour collection


def test_cannot_grade_is_blank_with_a_reason(tmp_path: Path) -> None:
    rows = parse(run(str(write(tmp_path, f"{HEADER}\n{ROWS}")))[1])
    unit = rows[8]
    assert (unit["ATOXGRL"], unit["ATOXGRH"]) == ("", "")
    assert "unit mg/dL not accepted for Hypokalemia" in unit["ATOXRSN"]
    missing = rows[10]
    assert (missing["ATOXDSCL"], missing["ATOXGRL"]) == ("Anemia", "")
    assert "no numeric result" in missing["ATOXRSN"]
    plat = rows[11]  # no LLN needed below 50
    assert plat["ATOXGRL"] == "3"
    sodium = rows[7]
    assert sodium["ATOXGRL"] == "3" and "provisional" in sodium["ATOXRSN"]


def test_adam_base_and_bnrind_win(tmp_path: Path) -> None:
    text = (
        "USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBSTNRLO,LBSTNRHI,LBBLFL,BASE,BNRIND\n"
        "S1,ALT,100,U/L,0,40,Y,100,HIGH\n"
        "S1,ALT,130,U/L,0,40,,30,NORMAL\n"
    )
    rows = parse(run(str(write(tmp_path, text)))[1])
    assert rows[1]["ATOXGRH"] == "2"  # BASE 30 normal: graded against ULN although LBBLFL flags 100


# CTCAE v5 Fibrinogen decreased: G2 <0.75 - 0.5 x LLN; if abnormal, 25 - <50% decrease from baseline;
# G3 <0.5 - 0.25 x LLN; if abnormal, 50 - <75% decrease from baseline; G4 ... 75% decrease from baseline.
def test_pchg_and_chg_stand_in_for_a_missing_base(tmp_path: Path) -> None:
    text = (
        "USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBSTNRLO,LBSTNRHI,BASE,CHG,PCHG\n"
        "S1,FIBRINO,1.9,g/L,2,4,,,-50\n"  # abnormal, 50 % below baseline: G3
        "S1,FIBRINO,1.9,g/L,2,4,,-1.9,\n"  # BASE = 3.8: the same 50 % decrease, from CHG
        "S1,FIBRINO,1.9,g/L,2,4,2.0,,-50\n"  # BASE given wins: 5 % below it, G1 by LLN
        "S1,FIBRINO,1.9,g/L,2,4,,,\n"  # no baseline at all: G1 by LLN
        "S1,FIBRINO,0,g/L,2,4,,,-100\n"  # a 100 % fall: G4 on the absolute value
    )
    rows = parse(run(str(write(tmp_path, text)))[1])
    assert [r["ATOXGRL"] for r in rows] == ["3", "3", "1", "1", "4"]


# CTCAE v5 Platelet count decreased: G4 <25,000/mm3. 5 x 10^3/mL is 5/uL: graded G4 as sent, and flagged.
def test_implausible_legacy_unit_value_is_graded_and_flagged(tmp_path: Path) -> None:
    text = (
        "USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBSTNRLO,LBSTNRHI\n"
        "S1,PLAT,5,10^3/mL,150,400\n"
        "S1,PLAT,24000,10^3/mL,150000,400000\n"
        "S1,CD4,180,1/uL,500,1500\n"
    )
    rows = parse(run(str(write(tmp_path, text)))[1])
    assert rows[0]["ATOXGRL"] == "4"
    assert rows[0]["ATOXRSN"].startswith("unit check: PLAT 5 10^3/mL = 5 /uL, implausible")
    assert "10^3/uL may have been meant" in rows[0]["ATOXRSN"]
    assert (rows[1]["ATOXGRL"], rows[1]["ATOXRSN"]) == ("4", "")  # 24,000/uL: plausible, G4, no flag
    assert (rows[2]["ATOXGRL"], rows[2]["ATOXRSN"]) == ("3", "")  # CTCAE <200 - 50/mm3: G3


def test_baseline_from_first_dose_date(tmp_path: Path) -> None:
    text = (
        "USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBSTNRLO,LBSTNRHI,LBDTC,RFXSTDTC\n"
        "S1,ALT,90,U/L,0,40,2024-01-05,2024-01-10\n"
        "S1,ALT,160,U/L,0,40,2024-02-01,2024-01-10\n"
    )
    rows = parse(run(str(write(tmp_path, text)))[1])
    assert rows[1]["ATOXGRH"] == "1"  # 160 / 90 = 1.8 x a high baseline


def test_output_file_option(tmp_path: Path) -> None:
    target = tmp_path / "graded.csv"
    code, out, err = run(str(write(tmp_path, f"{HEADER}\n{ROWS}")), "-o", str(target))
    assert code == 0 and out == ""
    assert "graded 12 records" in err
    assert len(parse(target.read_text(encoding="utf-8"))) == 12


def test_missing_column_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "USUBJID,LBTESTCD,LBSTRESN\nS1,K,3\n")
    code, _, err = run(str(path))
    assert code == 1
    assert f"{path}: missing required column(s) LBSTRESU, LBSTNRLO, LBSTNRHI" in err


def test_bad_number_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\nS1,K,3.1,mmol/L,3.5,5.1,2024-01-01,,,SERUM,C1\nS1,K,abc,mmol/L,3.5,5.1,,,,,\n")
    code, _, err = run(str(path))
    assert code == 1
    assert f"{path}, line 3: LBSTRESN 'abc' is not a number" in err


def test_ragged_row_and_bad_date_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\nS1,K,3.1\n")
    assert f"{path}, line 2: 3 fields but the header has 11" in run(str(path))[2]
    path = write(tmp_path, f"{HEADER}\nS1,K,3.1,mmol/L,3.5,5.1,2024-13-01,Y,,SERUM,C1\n", "bad_date.csv")
    assert f"{path}, line 2: LBDTC '2024-13-01': month 13 does not exist" in run(str(path))[2]


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert f"{path}: empty file (no header row)" in run(str(path))[2]


# --- SAS transport (XPORT v5) input ----------------------------------------------------------------------------

NUMERIC = ("LBSTRESN", "LBSTNRLO", "LBSTNRHI")


def write_xport(path: Path, header: list[str], rows: list[list[str]], dates: str = "") -> None:
    """The rows as SAS would hold them: numeric LBSTRESN / LBSTNRLO / LBSTNRHI, ISO dates under `dates` as SAS
    dates (DATE9.), everything else character."""
    import pandas as pd  # test dependency: pyreadstat.write_xport needs a pandas DataFrame
    import pyreadstat

    columns: dict[str, list[object]] = {}
    for i, name in enumerate(header):
        cells = [row[i] for row in rows]
        if name in NUMERIC:
            columns[name] = [float(c) if c else float("nan") for c in cells]
        elif name == dates:
            columns[name] = [date.fromisoformat(c) if c else None for c in cells]
        else:
            columns[name] = list(cells)
    formats = {dates: "DATE9"} if dates else None
    pyreadstat.write_xport(pd.DataFrame(columns), str(path), file_format_version=5, variable_format=formats)


def test_xpt_input_grades_as_the_same_rows_in_csv(tmp_path: Path) -> None:
    header = [*HEADER.split(","), "LBDT"]
    rows = [[*row.split(","), row.split(",")[6]] for row in ROWS.splitlines()]
    csv_path = write(tmp_path, "\n".join(",".join(r) for r in [header, *rows]) + "\n")
    xpt_path = tmp_path / "lb.XPT"  # the extension is matched in any case
    write_xport(xpt_path, header, rows, dates="LBDT")

    code, from_xpt, err = run(str(xpt_path))
    assert code == 0, err
    assert from_xpt == run(str(csv_path))[1]
    graded = parse(from_xpt)
    assert (graded[0]["LBSTRESN"], graded[0]["LBDT"], graded[0]["ATOXGRL"]) == ("2.49", "2024-01-01", "4")
    assert (graded[1]["LBSTRESN"], graded[4]["LBSTRESN"]) == ("100", "")  # whole numbers without ".0"


def test_read_lb_table_gives_the_same_table_for_csv_and_xpt(tmp_path: Path) -> None:
    header = HEADER.split(",")
    rows = [row.split(",") for row in ROWS.splitlines()]
    csv_path = write(tmp_path, f"{HEADER}\n{ROWS}")
    xpt_path = tmp_path / "lb.xpt"
    write_xport(xpt_path, header, rows)
    assert read_lb_table(xpt_path) == read_lb_table(csv_path) == (header, rows)


def test_corrupt_xpt_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.xpt"
    path.write_bytes(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!" + b"\x00" * 100)
    code, out, err = run(str(path))
    assert code == 1 and out == ""
    assert f"Error: {path}: not a readable SAS transport (XPORT v5) file" in err
    with pytest.raises(SdtmFileError, match=r"broken\.xpt: not a readable SAS transport"):
        read_lb_table(path)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (100.0, "100"),
        (2.49, "2.49"),
        (-0.5, "-0.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (float("nan"), ""),
        (None, ""),
        ("ALT", "ALT"),
        (date(2024, 1, 5), "2024-01-05"),
        (datetime(2024, 1, 5, 8, 30), "2024-01-05T08:30:00"),
    ],
    ids=["whole", "decimal", "negative", "round-trip", "missing", "none", "text", "date", "datetime"],
)
def test_xport_cells_read_as_sdtm_text(value: object, text: str) -> None:
    assert xport_cell(value) == text
