"""The optimised `grade-labs` path writes byte for byte what a straightforward reference implementation writes."""

from __future__ import annotations

import csv
import io
import random
from datetime import date
from pathlib import Path

import pytest

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.cli.grade_labs import grade_labs_csv
from safety_monitor.domain import units
from safety_monitor.domain.baselines import baseline_from_change
from safety_monitor.domain.ctcae import (
    SUPERSEDED_BY_24H,
    BaselineCandidate,
    CriteriaSet,
    Criterion,
    corrected_calcium,
    derive_baselines,
    grade_ordinal,
    grade_value,
    is_baseline_high,
    is_below_normal,
)
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.grading import Graded, GradeResult, NotGradable
from safety_monitor.domain.messages import MessageType
from safety_monitor.domain.plausibility import typo_screen

CRITERIA = load_criteria("5.0")


def reference_grade_labs(text: str, criteria: CriteriaSet) -> str:
    """Everything in memory, one dict per record, result objects, csv.writer: slow and obvious."""
    table = list(csv.reader(io.StringIO(text, newline="")))
    header, rows = table[0], [r for r in table[1:] if r]
    names = [h.strip().upper() for h in header]
    recs = [dict(zip(names, r, strict=True)) for r in rows]

    def num(raw: str | None) -> float | None:
        return float(raw) if raw is not None and raw.strip() else None

    derive = "BASE" not in names and ("LBBLFL" in names or ("RFXSTDTC" in names and "LBDTC" in names))
    albumin: dict[tuple[str, str], tuple[float, str]] = {}
    ft4_low: set[tuple[str, str]] = set()
    urine_days: set[tuple[str, str]] = set()
    first_dose: dict[str, date] = {}
    candidates: list[BaselineCandidate[tuple[float, str, bool | None]]] = []
    change = "CHG" in names or "PCHG" in names
    urine_24h = [c for c in criteria.for_term("Proteinuria") if not c.is_ordinal]
    for r in recs:
        test, subject, dtc = r["LBTESTCD"].strip().upper(), r["USUBJID"], r.get("LBDTC", "").strip()
        value = num(r["LBSTRESN"])
        if test == "ALB" and dtc and value is not None:
            albumin[(subject, dtc)] = (value, r["LBSTRESU"])
        if test in ("FT4", "T4FR") and dtc and is_below_normal(r.get("LBNRIND"), value, num(r["LBSTNRLO"])):
            ft4_low.add((subject, dtc))
        if test == "PROT" and dtc and value is not None and any(c.accepts_unit(r["LBSTRESU"]) for c in urine_24h):
            urine_days.add((subject, dtc[:10]))
        if not derive:
            continue
        raw_dose = r.get("RFXSTDTC", "").strip()
        if raw_dose and subject not in first_dose:
            dose = PartialDate.parse(raw_dose).as_date()
            if dose is not None:
                first_dose[subject] = dose
        flagged = r.get("LBBLFL", "").strip().upper() == "Y"
        if (flagged or "RFXSTDTC" in names) and value is not None:
            high = is_baseline_high(r.get("LBNRIND"), value, num(r["LBSTNRHI"]))
            item = (value, r["LBSTRESU"], high)
            collected = PartialDate.parse(dtc) if dtc else None
            candidates.append(BaselineCandidate(subject, test, flagged, collected, item))
    baselines = derive_baselines(candidates, first_dose) if derive else {}

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, "ATOXDSCL", "ATOXGRL", "ATOXDSCH", "ATOXGRH", "ATOXRSN"])
    for row, r in zip(rows, recs, strict=True):
        test, subject, unit = r["LBTESTCD"].strip().upper(), r["USUBJID"], r["LBSTRESU"]
        dtc, specimen = r.get("LBDTC", "").strip(), r.get("LBSPEC", "").strip().upper()
        terms = criteria.test_codes.get(test)
        if (
            terms is None
            or terms.domain is not MessageType.LB
            or (terms.specimens and specimen and specimen not in terms.specimens)
        ):
            writer.writerow([*row, "", "", "", "", ""])
            continue
        value, lln, uln = num(r["LBSTRESN"]), num(r["LBSTNRLO"]), num(r["LBSTNRHI"])
        notes: list[str] = []
        base: float | None = None
        base_high: bool | None = None
        if "BASE" in names:
            base = num(r["BASE"])
        if base is None and change and value is not None:
            base = baseline_from_change(value, num(r.get("CHG")), num(r.get("PCHG")))
        if base is not None:
            base_high = is_baseline_high(r.get("BNRIND"), base, uln)
        elif (subject, test) in baselines:
            b_value, b_unit, b_high = baselines[(subject, test)]
            if units.equivalent(b_unit, unit):
                base, base_high = b_value, b_high
            else:
                notes.append(
                    f"baseline unit {b_unit.strip().casefold()!r} differs from {unit.strip()!r}: baseline not used"
                )
        screen = typo_screen(terms, unit.strip() or None)
        if screen is not None and screen.caution(value):
            notes.append(screen.caution(value))
        if test == "CA" and value is not None:
            alb = albumin.get((subject, dtc)) if dtc else None
            corrected = corrected_calcium(value, unit, *alb) if alb else None
            if corrected is None:
                notes.append("total calcium graded uncorrected (no albumin of the same draw in a pairing unit)")
            else:
                notes.append(f"albumin-corrected calcium {corrected:.4g} graded (total {value:g})")
                value = corrected
        cells: list[str] = []
        for term in (terms.low, terms.high):
            if term is None:
                cells += ["", ""]
                continue
            result: GradeResult
            selected = criteria.select(term, unit.strip() or None)
            ordinal = criteria.ordinal_for(term)
            if terms.specimen_required and specimen not in terms.specimens:
                allowed = ", ".join(sorted(terms.specimens)).lower()
                reason = f"specimen {specimen or 'unknown'}: graded on {allowed} only"
                result = NotGradable(term, reason, criteria.ctcae_version)
            elif value is not None and isinstance(selected, Criterion):
                result = grade_value(selected, value, unit, lln, uln, base, base_high)
            elif value is None and ordinal is not None and r.get("LBSTRESC", "").strip():
                result = grade_ordinal(ordinal, r["LBSTRESC"])
                if (subject, dtc[:10]) in urine_days:
                    result = NotGradable(term, SUPERSEDED_BY_24H, criteria.ctcae_version)
            elif isinstance(selected, NotGradable):
                result = selected
            else:
                result = NotGradable(term, "no numeric result", criteria.ctcae_version)
            if isinstance(result, NotGradable):
                cells += [term, ""]
                notes.append(f"{term}: cannot grade: {result.reason}")
                continue
            assert isinstance(result, Graded)
            cells += [term, str(result.grade)]
            if result.provisional:
                notes.append(f"{term} grade {result.grade} provisional: {result.note}")
            elif result.note:
                notes.append(f"{term}: {result.note}")
            if test == "TSH" and result.grade >= 1 and (subject, dtc) in ft4_low:
                notes.append("FT4 below LLN in the same draw: consider Hypothyroidism (CTCAE navigational note)")
        writer.writerow([*row, *cells, " | ".join(notes)])
    return out.getvalue()


# (LBTESTCD as sites spell it, unit, LLN, ULN, low, high, specimen)
TESTS = [
    ("HGB", "g/L", "120", "160", 60, 190, "BLOOD"),
    ("hgb ", "g/dl", "12", "16", 6, 19, ""),
    ("K", "mmol/L", "3.5", "5.1", 2.2, 7.5, "SERUM"),
    ("K", "mg/dL", "3.5", "5.1", 2.2, 7.5, "SERUM"),  # unit not accepted
    ("K", "", "3.5", "5.1", 2.2, 7.5, "SERUM"),  # no unit
    ("ALT", "U/L", "0", "40", 5, 400, "SERUM"),
    ("AST", "U/L", "", "40", 5, 400, "SERUM"),
    ("BILI", "umol/L", "3", "21", 2, 120, "SERUM"),
    ("BILI", "mg/dL", "0.2", "1.2", 0.1, 8, "SERUM"),  # differs from the baseline unit sometimes
    ("CA", "mmol/L", "2.2", "2.6", 1.4, 3.6, "SERUM"),
    ("CA", "mg/dL", "8.5", "10.5", 6, 14, "SERUM"),
    ("ALB", "g/L", "35", "50", 15, 55, "SERUM"),
    ("ALB", "g/dL", "3.5", "5", 1.5, 5.5, "SERUM"),
    ("ALB", "%", "", "", 40, 60, "SERUM"),  # pairs with no calcium unit
    ("TSH", "mU/L", "0.4", "4.0", 0.1, 20, "SERUM"),
    ("FT4", "pmol/L", "12", "22", 5, 30, "SERUM"),
    ("PLAT", "10^9/L", "", "", 10, 600, "BLOOD"),  # missing range
    ("PLAT", "10^3/uL", "150", "400", 10, 600, "BLOOD"),  # exact equivalent of 10^9/L
    ("PLAT", "10^3/mL", "150", "400", 1, 3000, "BLOOD"),  # legacy = /uL: values typed as 10^3/uL are flagged
    ("WBC", "10^3/mL", "4000", "10000", 50, 20000, "BLOOD"),
    ("CD4", "1/uL", "500", "1500", 10, 2000, "BLOOD"),
    ("CAION", "mg/dL", "4.6", "5.3", 2.8, 7.6, "BLOOD"),  # CTCAE mmol/L cut points x 4
    ("FIBRINO", "g/L", "2", "4", 0.3, 5, "BLOOD"),  # decrease from baseline, or from PCHG / CHG
    ("SODIUM", "mmol/L", "135", "145", 118, 165, ""),
    ("CREAT", "umol/L", "60", "110", 40, 500, "SERUM"),
    ("PROT", "g/24h", "0", "0.15", 0, 4, "URINE"),
    ("PROT", "", "", "", 0, 0, "URINE"),  # dipstick: LBSTRESC
    ("PROT", "g/24h", "0", "0.15", 0, 4, "SERUM"),  # another specimen: not graded
    ("PH", "", "7.35", "7.45", 7.0, 7.7, ""),  # specimen required: cannot grade
    ("PH", "", "7.35", "7.45", 7.0, 7.7, "URINE"),  # another specimen: not graded
    ("PH", "", "7.35", "7.45", 7.0, 7.7, "ARTERIAL BLOOD"),
    ("XYZ", "U/L", "0", "10", 0, 20, "SERUM"),  # unknown test code
]
DIPSTICK = ["NEG", "TRACE", "1+", "2+", "3+", "4+", "5+", ""]
VISITS = ["SCREEN", "C1, D1", 'C2 "late"', "C3\nnote", "C4"]


def generate(rows: int, seed: int, *, style: str) -> str:
    """Rows of several subjects over a few draw dates, so baselines, same-draw pairs and 24 h urine meet."""
    rng = random.Random(seed)
    header = ["STUDYID", "USUBJID", "LBTESTCD", "LBSTRESN", "LBSTRESC", "LBSTRESU", "LBSTNRLO", "LBSTNRHI"]
    header += ["LBNRIND", "LBSPEC", "LBDTC", "VISIT"]
    header += {
        "blfl": ["LBBLFL"],
        "dose": ["RFXSTDTC"],
        "adam": ["LBBLFL", "BASE", "BNRIND"],
        "change": ["LBBLFL", "CHG", "PCHG", "BNRIND"],
    }[style]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if style == "dose" else "\n")
    writer.writerow(header)
    for i in range(rows):
        test, unit, lln, uln, lo, hi, spec = rng.choice(TESTS)
        subject = f"S{rng.randrange(12):02d}"
        day = rng.randrange(1, 6)
        dtc = rng.choice([f"2024-01-{day:02d}", f"2024-01-{day:02d}T08:00", "2024-01", ""])
        value = "" if rng.random() < 0.05 else f"{rng.uniform(lo, hi):.{rng.choice([0, 1, 2])}f}"
        text = ""
        if test == "PROT" and not unit:
            value, text = "", rng.choice(DIPSTICK)
        nrind = rng.choice(["HIGH", "LOW", "NORMAL", "H", "", "low "])
        row = ["ST1", subject, test, value, text, unit, lln, uln, nrind, spec, dtc, rng.choice(VISITS)]
        if style == "blfl":
            row.append(rng.choice(["Y", "", "", "", " y"]))
        elif style == "dose":
            row.append(rng.choice(["2024-01-03", "2024-01-03", "2024-01", ""]) if i % 7 else "")
        elif style == "adam":
            base = "" if rng.random() < 0.2 else f"{rng.uniform(lo, hi):.1f}"
            row += [rng.choice(["Y", ""]), base, rng.choice(["HIGH", "NORMAL", "LOW", ""])]
        else:
            chg = f"{rng.uniform(lo - hi, hi - lo) / 4:.1f}" if rng.random() < 0.3 else ""
            pchg = rng.choice(["", "-75", "-50", "-25", "-10", "0", "10", "-100"])
            row += [rng.choice(["Y", ""]), chg, pchg, rng.choice(["HIGH", "NORMAL", ""])]
        writer.writerow(row)
        if i % 997 == 0:
            out.write("\n")  # a blank line, skipped
    return out.getvalue()


@pytest.mark.parametrize("style", ["blfl", "dose", "adam", "change"])
def test_optimised_output_equals_reference(tmp_path: Path, style: str) -> None:
    text = generate(3000, seed=len(style), style=style)
    path = tmp_path / "lb.csv"
    path.write_bytes(text.encode("utf-8"))
    out = io.StringIO(newline="")
    assert grade_labs_csv(path, out, CRITERIA) == 3000
    expected = reference_grade_labs(text, CRITERIA)
    assert out.getvalue().splitlines() == expected.splitlines()  # readable diff first
    assert out.getvalue() == expected


def test_generated_rows_reach_every_branch(tmp_path: Path) -> None:
    """Guard the equivalence test against a generator that stops exercising the interesting cases."""
    text = reference_grade_labs(generate(3000, seed=4, style="blfl"), CRITERIA)
    for fragment in (
        "albumin-corrected calcium",
        "graded uncorrected",
        "FT4 below LLN",
        "superseded by a 24-hour",
        "not accepted for Hypokalemia",
        "baseline unit",
        "multiples of baseline",
        "baseline unknown",
        "no numeric result",
        "graded on arterial blood",
        "is not on the scale",
        "unit check: PLAT",
        ",XYZ,",
        '"C1, D1"',
    ):
        assert fragment in text, fragment


def test_the_garbage_collector_is_resumed_after_grading_and_after_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from safety_monitor.cli import grade_labs

    path = tmp_path / "lb.csv"
    path.write_bytes(generate(200, seed=1, style="blfl").encode("utf-8"))
    grade_labs_csv(path, io.StringIO(newline=""), CRITERIA)
    assert gc.isenabled()
    gc.disable()  # a caller that had it paused keeps it paused
    try:
        grade_labs_csv(path, io.StringIO(newline=""), CRITERIA)
        assert not gc.isenabled()
    finally:
        gc.enable()

    def fail(*_: object) -> int:
        assert not gc.isenabled()  # paused while grading
        raise OSError("disk full")

    monkeypatch.setattr(grade_labs, "_grade_records", fail)
    with pytest.raises(OSError, match="disk full"):
        grade_labs_csv(path, io.StringIO(newline=""), CRITERIA)
    assert gc.isenabled()
