"""Floors benchmark: what two unavoidable steps of the pipeline cost on their own, at the scale benchmark's sizes.

A message that reaches the store is decoded (strict JSON, the hardening caps, validation into its model) and its
rows are written in the batch's transaction: the inbox row that recognises a duplicate, its finding or AE
version, and whatever hits, alerts, changes and notifications it raises. This benchmark times those two steps
alone, with nothing else around them, on the input and the rows of a real replay:

- decode alone: `streams.decoding.decode` over every line of the scale benchmark's input, in one loop;
- storage alone: the rows a whole `safety-monitor replay` of that input stored in a fresh SQLite file, written
  again into a second fresh file with the same tables and indexes, batch by batch (each batch holds the share of
  every table's rows that its messages produced, in the order they were stored, one `executemany` per table and
  one transaction a batch, the replay's pragmas). It is a floor, not an estimate: no reads, no updates, no
  foreign-key checks, no driver thread and no conversion from Python objects.

A pipeline that did nothing else still could not go faster than 1 / (decode + storage) messages a second; the
goal of the scale issue (15,000 msg/s at 400,000 messages, 66.7 us a message on one core) is compared with it.

    python bench/bench_floors.py                     # 50k, 200k, 400k
    python bench/bench_floors.py --sizes 20000       # a quick look
    python bench/bench_floors.py --database-url postgresql://postgres@127.0.0.1:5432/test   # PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench_scale import generate, postgres_schema, replay

from safety_monitor.settings import Settings
from streams.decoding import Decoded, decode

GOAL_RATE = 15_000  # msg/s at 400,000 messages on one core, the scale issue's goal


def decode_alone(source: Path) -> tuple[float, int]:
    """Seconds to decode every line of `source` (read beforehand, a chunk at a time), and how many decoded."""
    now = datetime.now(UTC)
    spent = 0.0
    decoded = 0
    with source.open("rb") as lines:
        while chunk := lines.readlines(8 << 20):
            started = time.perf_counter()
            for line in chunk:
                if isinstance(decode(line, "bench", now=now), Decoded):
                    decoded += 1
            spent += time.perf_counter() - started
    return spent, decoded


def storage_alone(
    stored: Path, messages: int, batch: int, tmp: Path, page_size: int | None
) -> tuple[float, Counter[str], int]:
    """Seconds to write the rows of `stored` again into a fresh file with its schema, `batch` messages' share of
    each table per transaction; the seconds spent on each table's rows, and the rows written."""
    source = sqlite3.connect(stored)
    target = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    if page_size is not None:  # before anything is written: a page size is fixed once the file has a table
        target.execute(f"PRAGMA page_size={page_size:d}")
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
    schema = source.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type = 'index'"
    ).fetchall()
    for (statement,) in schema:
        target.execute(statement)
    names = [row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    counts = {name: source.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    counts = {name: count for name, count in counts.items() if count and name != "alembic_version"}
    readers = {name: source.execute(f'SELECT * FROM "{name}"') for name in counts}
    inserts = {
        name: f'INSERT INTO "{name}" VALUES ({", ".join("?" * len(reader.description))})'
        for name, reader in readers.items()
    }
    per_table: Counter[str] = Counter()
    spent = 0.0
    done = 0
    while done < messages:
        size = min(batch, messages - done)
        # each table's share of the rows for messages done..done+size, in the order the replay stored them
        shares = {
            name: reader.fetchmany(
                math.ceil(counts[name] * (done + size) / messages) - math.ceil(counts[name] * done / messages)
            )
            for name, reader in readers.items()
        }
        started = time.perf_counter()
        target.execute("BEGIN")
        for name, rows in shares.items():
            if rows:
                table_started = time.perf_counter()
                target.executemany(inserts[name], rows)
                per_table[name] += time.perf_counter() - table_started
        target.execute("COMMIT")
        spent += time.perf_counter() - started
        done += size
    source.close()
    target.close()
    return spent, per_table, sum(counts.values())


async def storage_alone_postgres(url: str, schema: str, messages: int, batch: int) -> tuple[float, Counter[str], int]:
    """The same on PostgreSQL: the rows of `schema` written again, a batch's share a transaction, into a second
    schema whose tables are made `LIKE` them (columns, defaults, constraints and indexes; no foreign keys)."""
    import asyncpg

    again = f"{schema}_again"
    source = await asyncpg.connect(url)
    target = await asyncpg.connect(url)
    try:
        names = [
            row["tablename"]
            for row in await source.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        ]
        counts = {name: await source.fetchval(f'SELECT count(*) FROM "{schema}"."{name}"') for name in names}
        counts = {name: count for name, count in counts.items() if count and name != "alembic_version"}
        await target.execute(f'CREATE SCHEMA "{again}"')
        inserts = {}
        for name in counts:
            await target.execute(f'CREATE TABLE "{again}"."{name}" (LIKE "{schema}"."{name}" INCLUDING ALL)')
            columns = await source.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
                schema,
                name,
            )
            places = ", ".join(f"${i}" for i in range(1, columns + 1))
            inserts[name] = f'INSERT INTO "{again}"."{name}" VALUES ({places})'
        per_table: Counter[str] = Counter()
        spent = 0.0
        async with source.transaction():
            readers = {name: await source.cursor(f'SELECT * FROM "{schema}"."{name}"') for name in counts}
            done = 0
            while done < messages:
                size = min(batch, messages - done)
                shares = {
                    name: await reader.fetch(_share(counts[name], done, size, messages))
                    for name, reader in readers.items()
                }
                started = time.perf_counter()
                async with target.transaction():
                    for name, rows in shares.items():
                        if rows:
                            table_started = time.perf_counter()
                            await target.executemany(inserts[name], rows)
                            per_table[name] += time.perf_counter() - table_started
                spent += time.perf_counter() - started
                done += size
        return spent, per_table, sum(counts.values())
    finally:
        await target.execute(f'DROP SCHEMA IF EXISTS "{again}" CASCADE')
        await source.close()
        await target.close()


def _share(rows: int, done: int, size: int, messages: int) -> int:
    """How many of a table's `rows` belong to the batch of messages done..done+size, out of `messages`."""
    return math.ceil(rows * (done + size) / messages) - math.ceil(rows * done / messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 400_000])
    parser.add_argument("--subjects", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--database-url", default=None, help="postgresql://...: the same on PostgreSQL")
    parser.add_argument(
        "--page-size", type=int, default=None, help="storage alone with this SQLite page size (the store's: 4096)"
    )
    args = parser.parse_args()
    batch = Settings().batch_size
    budget = 1e6 / GOAL_RATE
    pages = f"pages of {args.page_size:,} bytes" if args.page_size else "the store's page size"
    database = "PostgreSQL (fresh schemas)" if args.database_url else f"SQLite ({pages})"
    print(f"{database}; {args.subjects:,} subjects; batches of {batch:,} messages; {os.cpu_count()} cores")
    print(
        "| messages | whole process (msg/s) | decode alone (us/msg) | storage alone (us/msg) | rows stored "
        "| decode + storage (msg/s) | left of the goal's budget (us/msg) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    tables: list[str] = []
    for size in sorted(set(args.sizes)):
        with tempfile.TemporaryDirectory(prefix="bench-floors-") as tmp_dir:
            tmp = Path(tmp_dir)
            source = tmp / "messages.jsonl"
            generate(source, size, args.subjects, args.seed)
            decoding, decoded = decode_alone(source)
            if decoded != size:
                raise SystemExit(
                    f"{size:,} messages: {size - decoded} refused by the decoder; the floor would be wrong"
                )
            if args.database_url:
                schema = f"bench_floors_{uuid.uuid4().hex[:10]}"
                asyncio.run(postgres_schema(args.database_url, schema, create=True))
                try:
                    run = replay(source, size, tmp, args.database_url, None, schema=schema)
                    storing, per_table, rows = asyncio.run(
                        storage_alone_postgres(args.database_url, schema, size, batch)
                    )
                finally:
                    asyncio.run(postgres_schema(args.database_url, schema, create=False))
            else:
                run = replay(source, size, tmp, None, None)
                storing, per_table, rows = storage_alone(tmp / "scale.db", size, batch, tmp, args.page_size)
            if run.dead_lettered != 0:
                raise SystemExit(f"{size:,} messages: {run.dead_lettered} refused by the replay")
        decode_us = decoding / size * 1e6
        storage_us = storing / size * 1e6
        print(
            f"| {size:,} | {run.rate:,.0f} | {decode_us:.1f} | {storage_us:.1f} | {rows:,} "
            f"| {1e6 / (decode_us + storage_us):,.0f} | {budget - decode_us - storage_us:.1f} |",
            flush=True,
        )
        heaviest = ", ".join(f"{name} {seconds / size * 1e6:.1f}" for name, seconds in per_table.most_common(5))
        tables.append(f"storage at {size:,}, us a message by table (the rest is the commit): {heaviest}")
    print(f"the goal: {GOAL_RATE:,} msg/s, {budget:.1f} us a message for everything the pipeline does")
    print("\n".join(tables))


if __name__ == "__main__":
    main()
