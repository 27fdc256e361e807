"""Benchmark for the embedded runtime: replays N synthetic wire messages into a fresh store; events/s and memory."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.bootstrap import App, bootstrap
from safety_monitor.demo import generate_load, write_jsonl
from safety_monitor.settings import Settings
from streams.embedded import RunSummary, replay_file

TARGET_EVENTS_PER_S = 10_000


@dataclass
class Result:
    summary: RunSummary
    seconds: float
    cpu_seconds: float  # CPU time of this process over the replay, every thread (the SQLite driver runs in one)
    deliver_seconds: float
    delivered: int
    delivery_failed: int
    traced_peak_mb: float | None
    rules: int


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1024


def is_postgres(url: str) -> bool:
    return make_url(url).drivername.startswith(("postgres", "postgresql"))


async def deliver_all(app: App) -> tuple[int, int]:
    """Send everything the outbox holds (the delivery loop takes at most `limit` notices per pass)."""
    sent = failed = 0
    while True:
        report = await app.deliver()
        sent += report.sent
        failed += report.failed
        if report.sent == 0:
            return sent, failed


async def run(app: App, path: Path, batch_size: int, profile: cProfile.Profile | None, trace: bool) -> Result:
    await app.start()  # migrations: not timed
    if trace:
        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    try:
        summary = await replay_file(app, path, batch_size=batch_size)
    finally:
        if profile is not None:
            profile.disable()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    traced_peak = None
    if trace:
        traced_peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    started = time.perf_counter()
    delivered, delivery_failed = await deliver_all(app)
    deliver_seconds = time.perf_counter() - started
    rules = len(app.pipeline.ruleset.rules)
    return Result(summary, seconds, cpu_seconds, deliver_seconds, delivered, delivery_failed, traced_peak, rules)


async def with_postgres_schema(
    url: str, settings: Settings, path: Path, batch_size: int, profile: cProfile.Profile | None, trace: bool
) -> Result:
    """Run against a fresh PostgreSQL schema, dropped afterwards whatever happens."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = create_engine(url, schema=schema)
        app = bootstrap(settings, store=SqlStore(engine))  # an app given a store does not migrate it: do it here
        try:
            await upgrade(engine)
            return await run(app, path, batch_size, profile, trace)
        finally:
            await engine.dispose()
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def with_sqlite(
    settings: Settings, path: Path, batch_size: int, profile: cProfile.Profile | None, trace: bool
) -> Result:
    app = bootstrap(settings)
    try:
        return await run(app, path, batch_size, profile, trace)
    finally:
        await app.close()


def print_profile(profile: cProfile.Profile, out: Path | None) -> None:
    stats = pstats.Stats(profile)
    if out is not None:
        stats.dump_stats(out)
        print(f"\nprofile written to {out} (open with: python -m pstats {out})")
    stats.strip_dirs()
    print("\n--- top 25 by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(25)
    print("--- top 25 by own time (tottime) ---")
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="synthetic messages to replay")
    parser.add_argument("--batch-size", type=int, default=None, help="messages per transaction (default: settings)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a fresh SQLite file in a temp dir; postgresql://... uses a fresh schema, dropped after",
    )
    parser.add_argument(
        "--rules",
        metavar="DIR",
        type=Path,
        default=None,
        help="rules directory (default: the configured one, i.e. the trial's whole catalogue and routing)",
    )
    parser.add_argument("--profile", metavar="FILE", type=Path, default=None, help="cProfile the replay into FILE")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also report the traced Python heap peak (slows the run)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp_dir:
        tmp = Path(tmp_dir)
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        settings = Settings.from_env(
            database_url=url,
            mail_backend="capture",
            mail_capture_dir=tmp / "mail",
            alert_recipients=("dsmb@example.org",),
            **({"rules_dir": args.rules} if args.rules else {}),
        )
        batch_size = args.batch_size or settings.batch_size

        source = tmp / "load.jsonl"
        t0 = time.perf_counter()
        count = write_jsonl(source, generate_load(args.messages, args.seed))
        print(
            f"generated {count:,} messages ({source.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - t0:.1f} s (not timed)"
        )
        rss_before = peak_rss_mb()

        profile = cProfile.Profile() if args.profile is not None else None
        if is_postgres(url):
            result = asyncio.run(with_postgres_schema(url, settings, source, batch_size, profile, args.tracemalloc))
        else:
            result = asyncio.run(with_sqlite(settings, source, batch_size, profile, args.tracemalloc))

        outcome = result.summary.outcome
        store = make_url(url).render_as_string(hide_password=True) if is_postgres(url) else "sqlite (temp file)"
        rate = outcome.received / result.seconds if result.seconds else 0.0
        print(f"store:            {store}")
        print(f"rules:            {settings.rules_dir} ({result.rules} rules)")
        print(f"messages:         {outcome.received:,} in {result.summary.batches:,} batches of {batch_size}")
        print(
            f"applied:          {outcome.applied:,} (stale {outcome.stale}, duplicates {outcome.duplicates}, "
            f"dead-lettered {outcome.dead_lettered}, handler failures {outcome.handler_failures})"
        )
        print(f"rule hits:        {outcome.hits:,}")
        by_rule = dict(sorted(outcome.alerts_by_rule.items()))
        print(f"alerts raised:    {sum(by_rule.values()):,}  {by_rule}")
        print(f"outbox notices:   {outcome.notices:,}")
        print(f"replay seconds:   {result.seconds:.2f}" + ("  (under cProfile)" if profile else ""))
        # On a shared machine the wall clock includes waiting for a core; CPU time does not (it counts every
        # thread of this process, the SQLite driver's included): compare it between runs made under load.
        cpu_rate = outcome.received / result.cpu_seconds if result.cpu_seconds else 0.0
        print(f"replay CPU:       {result.cpu_seconds:.2f} s in this process ({cpu_rate:,.0f} events per CPU second)")
        verdict = "meets" if rate >= TARGET_EVENTS_PER_S else "BELOW"
        print(f"events/s:         {rate:,.0f}  ({verdict} target {TARGET_EVENTS_PER_S:,}/s)")
        print(
            f"outbox delivery:  {result.delivered:,} sent, {result.delivery_failed} failed "
            f"in {result.deliver_seconds:.2f} s (not in events/s)"
        )
        print(f"peak RSS:         {peak_rss_mb():.0f} MB (before replay: {rss_before:.0f} MB)")
        if result.traced_peak_mb is not None:
            print(f"tracemalloc peak: {result.traced_peak_mb:.1f} MB (replay only; tracing slows the run)")
        if profile is not None:
            print_profile(profile, args.profile)


if __name__ == "__main__":
    main()
