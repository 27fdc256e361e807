"""Benchmark for `grade-labs`: grades a large seeded SDTM LB CSV in-process and reports records/s and memory."""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import os
import pstats
import random
import resource
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.cli.grade_labs import grade_labs_csv

# (LBTESTCD, unit, LLN, ULN, typical low, typical high) — SI units, realistic spread incl. abnormal values.
TESTS = [
    ("HGB", "g/L", 120, 160, 60, 190),
    ("WBC", "10^9/L", 4.0, 10.0, 0.5, 30),
    ("NEUT", "10^9/L", 1.8, 7.5, 0.2, 12),
    ("LYM", "10^9/L", 1.0, 4.0, 0.1, 8),
    ("PLAT", "10^9/L", 150, 400, 10, 600),
    ("ALT", "U/L", 0, 40, 5, 400),
    ("AST", "U/L", 0, 40, 5, 400),
    ("ALP", "U/L", 40, 130, 20, 900),
    ("BILI", "umol/L", 3, 21, 2, 120),
    ("CREAT", "umol/L", 60, 110, 40, 500),
    ("K", "mmol/L", 3.5, 5.1, 2.2, 7.5),
    ("SODIUM", "mmol/L", 135, 145, 118, 165),
    ("CA", "mmol/L", 2.2, 2.6, 1.4, 3.6),
    ("MG", "mmol/L", 0.7, 1.0, 0.25, 1.5),
    ("GLUC", "mmol/L", 3.9, 6.1, 1.5, 20),
    ("ALB", "g/L", 35, 50, 15, 55),
    ("TSH", "mU/L", 0.4, 4.0, 0.1, 20),
    ("LIPASE", "U/L", 10, 60, 5, 600),
    ("XYZ", "U/L", 0, 10, 0, 20),  # unknown test code: passes through
]


def generate(path: Path, rows: int, seed: int = 20240501) -> None:
    rng = random.Random(seed)
    subjects = max(1, rows // 200)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            [
                "STUDYID",
                "USUBJID",
                "LBTESTCD",
                "LBSTRESN",
                "LBSTRESU",
                "LBSTNRLO",
                "LBSTNRHI",
                "LBNRIND",
                "LBDTC",
                "LBBLFL",
                "VISIT",
            ]
        )
        for i in range(rows):
            test, unit, lln, uln, lo, hi = TESTS[i % len(TESTS)]
            subject = f"ANL-01-{(i // 190) % subjects:05d}"
            visit = (i // (len(TESTS) * subjects)) % 30
            value = round(rng.uniform(lo, hi), 2)
            nrind = "HIGH" if value > uln else "LOW" if value < lln else "NORMAL"
            blfl = "Y" if visit == 0 else ""
            writer.writerow(
                [
                    "ANL-01",
                    subject,
                    test,
                    value,
                    unit,
                    lln,
                    uln,
                    nrind,
                    f"2024-{1 + visit % 12:02d}-{1 + visit % 28:02d}T08:00",
                    blfl,
                    f"C{visit}",
                ]
            )


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs; the median is the figure")
    parser.add_argument("--profile", action="store_true", help="also run cProfile and print where the time goes")
    args = parser.parse_args()
    criteria = load_criteria("5.0")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lb.csv"
        t0 = time.perf_counter()
        generate(src, args.rows)
        print(f"generated {args.rows:,} rows ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        out_path = Path(tmp) / "graded.csv"
        rates: list[float] = []
        for run in range(1, args.runs + 1):
            load = _loadavg()
            with out_path.open("w", newline="", encoding="utf-8") as out:
                t0 = time.perf_counter()
                count = grade_labs_csv(src, out, criteria)
                elapsed = time.perf_counter() - t0
            rates.append(count / elapsed)
            print(
                f"run {run}: {count:,} records in {elapsed:.2f} s = {count / elapsed:,.0f} records/s (loadavg {load})"
            )
        print(
            f"grade-labs: median {statistics.median(rates):,.0f} records/s over {len(rates)} runs "
            f"(min {min(rates):,.0f}, max {max(rates):,.0f}); loadavg {_loadavg()} on {os.cpu_count()} CPUs"
        )
        sample = min(args.rows, 200_000)
        small = Path(tmp) / "small.csv"
        generate(small, sample)
        tracemalloc.start()
        grade_labs_csv(small, io.StringIO(), criteria)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"peak traced memory for {sample:,} records (output kept in memory): {peak / 1e6:.1f} MB")
        with out_path.open("w", newline="", encoding="utf-8") as out:
            tracemalloc.start()
            grade_labs_csv(src, out, criteria)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        print(f"peak traced memory for {args.rows:,} records streamed to a file: {peak / 1e6:.1f} MB")
        print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        if args.profile:
            profiler = cProfile.Profile()
            with out_path.open("w", newline="", encoding="utf-8") as out:
                profiler.runcall(grade_labs_csv, small, out, criteria)
            print(f"where the time goes (cProfile, {sample:,} records, sorted by own time):")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
