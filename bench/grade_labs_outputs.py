"""Byte-for-byte check of `grade-labs` output across a change: grades a fixed set of inputs and saves or compares.

    python bench/grade_labs_outputs.py save var/grade-before     # before the change
    python bench/grade_labs_outputs.py compare var/grade-before  # after it: exits 1 on any differing byte

Inputs: the benchmark's generated CSV, the reference test's generator in each of its styles (baselines from LBBLFL,
from first dose, ADaM BASE, CHG / PCHG), admiral's own CTCAE v5 cases as one CSV, and the CLI tests' rows as CSV
and as XPORT.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_grade_labs import generate as bench_generate  # noqa: E402
from safety_monitor.adapters.ctcae_criteria import load_criteria  # noqa: E402
from safety_monitor.cli.grade_labs import grade_labs_csv  # noqa: E402
from tests.integration import test_admiral_cases as admiral  # noqa: E402
from tests.integration import test_grade_labs_cli as cli_cases  # noqa: E402
from tests.integration.test_grade_labs_reference import generate as reference_generate  # noqa: E402


def _admiral_csv() -> str:
    """admiral's cases in one file, laid out as tests/integration/test_admiral_cases.py lays them out."""
    import csv

    cases = admiral.load_cases()
    columns = [c for c in admiral._ORDER if any(c in case.inputs for case in cases)]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["USUBJID", "LBTESTCD", *(admiral._COLUMN.get(c, c) for c in columns)])
    for number, case in enumerate(cases, 1):
        writer.writerow([f"S{number}", case.test_code, *(admiral._cell(case.inputs.get(c)) for c in columns)])
    return text.getvalue()


def _inputs(folder: Path, rows: int) -> dict[str, Path]:
    made: dict[str, Path] = {}

    def text(name: str, make: Callable[[], str]) -> None:
        path = folder / name
        path.write_bytes(make().encode("utf-8"))
        made[name] = path

    bench = folder / "bench.csv"
    bench_generate(bench, rows)
    made["bench.csv"] = bench
    for seed, style in enumerate(("blfl", "dose", "adam", "change"), 11):
        text(f"reference-{style}.csv", lambda style=style, seed=seed: reference_generate(rows // 5, seed, style=style))
    text("admiral.csv", _admiral_csv)
    text("cli.csv", lambda: f"{cli_cases.HEADER}\n{cli_cases.ROWS}")
    header = [*cli_cases.HEADER.split(","), "LBDT"]
    table = [[*row.split(","), row.split(",")[6]] for row in cli_cases.ROWS.splitlines()]
    cli_cases.write_xport(folder / "cli.xpt", header, table, dates="LBDT")
    made["cli.xpt"] = folder / "cli.xpt"
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("save", "compare"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the benchmark file (a fifth per style)")
    args = parser.parse_args()
    criteria = load_criteria("5.0")
    args.folder.mkdir(parents=True, exist_ok=True)
    differing = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in _inputs(Path(tmp), args.rows).items():
            out = io.StringIO(newline="")
            count = grade_labs_csv(path, out, criteria)
            graded = out.getvalue().encode("utf-8")
            saved = args.folder / (name + ".graded.csv")
            digest = hashlib.sha256(graded).hexdigest()[:16]
            if args.mode == "save":
                saved.write_bytes(graded)
                print(f"{name}: {count:,} records, {len(graded):,} bytes, sha256 {digest} saved")
            elif saved.read_bytes() == graded:
                print(f"{name}: {count:,} records, {len(graded):,} bytes, sha256 {digest} identical")
            else:
                differing += 1
                print(f"{name}: {count:,} records, sha256 {digest} DIFFERS from {saved}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
