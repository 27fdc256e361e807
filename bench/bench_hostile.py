"""Benchmark: the replay rate kept on a hostile file. Replays N synthetic wire messages clean, then the same N with
every kind of hostile line (tests/hostile.py) spliced in three times, each into a fresh SQLite store; both rates."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the hostile lines live beside the tests

from bench.bench_replay import with_sqlite
from safety_monitor.demo import generate_load, write_jsonl
from safety_monitor.settings import Settings
from tests.hostile import spliced_file

TARGET_KEPT = 0.5  # issue 10: at least half the clean file's rate


def replay(tmp: Path, name: str, path: Path, rules: Path | None) -> tuple[float, float, int, int]:
    """(events/s wall, events/s per CPU second, applied, dead-lettered) of one replay into a fresh store."""
    settings = Settings.from_env(
        database_url=f"sqlite:///{tmp}/{name}.db",
        mail_backend="capture",
        mail_capture_dir=tmp / f"mail-{name}",
        alert_recipients=("dsmb@example.org",),
        **({"rules_dir": rules} if rules else {}),
    )
    result = asyncio.run(with_sqlite(settings, path, settings.batch_size, None, False))
    outcome = result.summary.outcome
    return (
        outcome.received / result.seconds,
        outcome.received / result.cpu_seconds,
        outcome.applied,
        outcome.dead_lettered,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="replays of each file; the best rate counts")
    parser.add_argument("--rules", metavar="DIR", type=Path, default=None, help="default: the configured rules")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp_dir:
        tmp = Path(tmp_dir)
        valid = list(generate_load(args.messages))
        clean, hostile = tmp / "clean.jsonl", tmp / "hostile.jsonl"
        write_jsonl(clean, valid)
        spliced = spliced_file(hostile, valid)
        figures: dict[str, list[tuple[float, float, int, int]]] = {"clean": [], "hostile": []}
        for run in range(args.runs):
            for name, path in (("clean", clean), ("hostile", hostile)):
                started = time.perf_counter()
                figures[name].append(replay(tmp, f"{name}-{run}", path, args.rules))
                print(
                    f"run {run + 1} {name:<8} {figures[name][-1][0]:>8,.0f} events/s "
                    f"({time.perf_counter() - started:.1f} s with start-up)"
                )
        best = {name: max(runs) for name, runs in figures.items()}
        print(f"messages:        {args.messages:,} valid; hostile file: + {spliced} hostile lines")
        for name, (rate, cpu_rate, applied, dead) in best.items():
            print(
                f"{name + ':':<16} {rate:>8,.0f} events/s ({cpu_rate:,.0f} per CPU second); "
                f"applied {applied:,}, dead-lettered {dead}"
            )
        kept = best["hostile"][0] / best["clean"][0]
        kept_cpu = best["hostile"][1] / best["clean"][1]
        verdict = "meets" if kept >= TARGET_KEPT else "BELOW"
        print(f"rate kept:       {kept:.0%} wall, {kept_cpu:.0%} CPU ({verdict} target {TARGET_KEPT:.0%})")


if __name__ == "__main__":
    main()
