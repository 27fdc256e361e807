"""The recorded run (tests/data/recorded/README.md): the committed input replayed, its outputs in canonical form."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import gzip
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from unittest import mock

from click.testing import CliRunner
from sqlalchemy import Table, select

from safety_monitor.adapters.clock import SystemClock
from safety_monitor.adapters.sql import tables
from safety_monitor.adapters.sql.database import create_engine
from safety_monitor.cli.main import cli
from safety_monitor.demo import generate_trial

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "tests" / "data" / "recorded"
INPUT = RECORDED / "messages.jsonl.gz"
GOLDEN = RECORDED / "golden"
INPUT_NAME = "messages.jsonl"  # the name the replayed copy has: dead letters name their origin by it

# The input: the demo's seeded trial (subjects, dosing, deaths, serious and fatal AEs with their follow-ups,
# tumour responses, duplicates, a stale follow-up, an msg_id conflict, an unknown subject, malformed lines), then
# bench/bench_scale.py's mix (a third of the labs out of range, often far: Hy's law patterns, grade 3 blood
# pressure, AE follow-ups) for 250 subjects of other sites (CN001-CN005) of the same study.
TRIAL_SEED, TRIAL_SUBJECTS = 20260302, 60
MIX_SEED, MIX_MESSAGES, MIX_SUBJECTS = 13, 10_000, 250

# The replay runs at a fixed "now" (the service reads time only through its clock, adapters/clock.py): the last
# data is from 2026-05-31 and every expedited-reporting clock is past due by then (each escalated once). Delivery runs at
# the replay's end (what is due at once: grade 5 routes) and again an hour later (every group_wait has passed).
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
DELIVER_AT = NOW + timedelta(hours=1)

# Left out of the captured tables: instants of the receiving clock, which is wall-clock time in production (here
# NOW or DELIVER_AT, but whether a rewrite stamps each message or each batch is not an output): when a message
# was received, an alert raised / updated / changed, a notice or email written, decided, flushed or sent, a
# reporting clock started / escalated / closed, a publication written or sent. Every id the tables hold is kept:
# all are hashes of their content (alert_id, notice_id, notification_id, group_id, mail_id) or the sites' msg_ids,
# none random. The autoincrement ids of digest_run and review_actions are not captured (this run writes neither).
CLOCK_COLUMNS = frozenset(
    {
        "received_at",
        "first_received_at",
        "raised_at",
        "updated_at",
        "at",
        "created_at",
        "next_attempt_at",
        "decided_at",
        "last_flush_at",
        "last_notified_at",
        "started_at",
        "short_known_at",
        "closed_at",
        "published_at",
    }
)
# The same instants under the names the notice contexts give them (as shown in the emails, whose text keeps them:
# under the fixed clock they read NOW or DELIVER_AT).
CLOCK_KEYS = frozenset({"changed_at", "changed_at_shown", "raised_at_shown"})
# sent_at is a site's send time in adverse_event, finding and tumour_response, but a clock instant in the outbox:
# left out there only. The inbox's payload is left out too: it is the input line itself, not an output.
LEFT_OUT_BY_TABLE = {"outbox": frozenset({"sent_at"}), "inbox": frozenset({"payload"})}
# The inbox's content_hash (SHA-256 of the line as received) is kept to its first 16 hex digits: enough to see it
# change (a changed hash would call a re-sent message a conflict), at a quarter of the size.
SHORTENED = {("inbox", "content_hash"): 16}

# The tables captured row by row, each as JSON lines sorted by the row's text: the inbox (each message's outcome
# and content hash), the current records as stored (decoded), and what the rules, routing and grading made of them.
TABLES: tuple[Table, ...] = (
    tables.inbox,
    tables.alert,
    tables.rule_hit,
    tables.alert_change,
    tables.notification,
    tables.notification_group,
    tables.notification_log,
    tables.outbox,
    tables.sae_clock,
    tables.dead_letter,
    tables.finding,
    tables.adverse_event,
    tables.subject,
    tables.tumour_response,
    tables.publication,
)

# The golden files, each with the command (or table) it comes from.
COMMANDS: dict[str, tuple[str, ...]] = {
    "incidence.csv": ("incidence", "--format", "csv"),
    "incidence-treatment-emergent.json": ("incidence", "--format", "json", "--treatment-emergent"),
    "grades.csv": ("grades", "disagreements", "--all", "--format", "csv"),
    "dead-letters.txt": ("dead-letters", "--limit", "100000"),
}
# The DSMB report at the trial's last day (its own file: the command writes it and prints where).
REPORT = ("report", "--as-of", "2026-05-31", "--since", "2026-03-02", "--format", "json", "-o", "report.json")


def _bench_scale() -> Any:
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "bench_scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_scale", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def generate_input(target: Path = INPUT) -> None:
    """Write the input: the trial's lines, then the mix's, gzipped with no name or time in its header."""
    trial = generate_trial(seed=TRIAL_SEED, subjects=TRIAL_SUBJECTS)
    with tempfile.TemporaryDirectory() as tmp:
        mix = Path(tmp) / "mix.jsonl"
        _bench_scale().generate(mix, MIX_MESSAGES, MIX_SUBJECTS, MIX_SEED)
        text = "".join(line + "\n" for line in trial.lines) + mix.read_text(encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as sink:
        sink.write(text.encode("utf-8"))


@contextmanager
def clock_at(moments: list[datetime]) -> Iterator[None]:
    """The system clock reads moments[0] (change it in place to move time)."""

    def now(self: SystemClock) -> datetime:
        return moments[0]

    with mock.patch.object(SystemClock, "now", now):
        yield


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if result.exit_code != 0:
        raise AssertionError(f"safety-monitor {' '.join(args)} exited {result.exit_code}:\n{result.output}")
    return result.output


def environment(workdir: Path, database_url: str, schema: str | None) -> dict[str, str]:
    """The environment of the commands: the trial's rules and routing, mail as .eml files under workdir."""
    env = {
        "DATABASE_URL": database_url,
        "SAFETY_MONITOR_RULES_DIR": str(ROOT / "rules"),
        "SAFETY_MONITOR_TEMPLATES_DIR": str(ROOT / "templates"),
        "MAIL_BACKEND": "capture",
        "MAIL_CAPTURE_DIR": str(workdir / "mail"),
    }
    if schema:
        env["DATABASE_SCHEMA"] = schema
    return env


# Variables the commands read that must not leak in from the caller's environment.
CLEARED = (
    *("DATABASE_SCHEMA", "ALERT_RECIPIENTS", "DIGEST_RECIPIENTS", "MEDICAL_MONITOR_EMAILS", "DSMB_EMAILS"),
    *("SAFETY_PHYSICIAN_EMAILS", "MAIL_FROM", "PUBLIC_URL", "BATCH_SIZE", "CTCAE_VERSION"),
)


def record(workdir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Replay the input in `workdir` with `env` (os.environ is set for the run), return the outputs by file name."""
    source = workdir / INPUT_NAME
    source.write_bytes(gzip.decompress(INPUT.read_bytes()))
    saved = {name: os.environ.get(name) for name in (*CLEARED, *env)}
    cwd = Path.cwd()
    moments = [NOW]
    try:
        for name in CLEARED:
            os.environ.pop(name, None)
        os.environ.update(env)
        os.chdir(workdir)
        with clock_at(moments):
            outputs = {"replay.txt": _replay_summary(invoke("replay", INPUT_NAME))}
            moments[0] = DELIVER_AT
            outputs["deliver.txt"] = invoke("deliver")
            for name, args in COMMANDS.items():
                outputs[name] = invoke(*args)
            # Listed oldest first: all were received at NOW, so their order among themselves is the database's.
            outputs["dead-letters.txt"] = "".join(sorted(outputs["dead-letters.txt"].splitlines(keepends=True)))
            invoke(*REPORT)
            outputs["report.json"] = (workdir / "report.json").read_text(encoding="utf-8")
            outputs |= asyncio.run(_tables(env["DATABASE_URL"], env.get("DATABASE_SCHEMA")))
            outputs["mail.jsonl"] = _mail(Path(env["MAIL_CAPTURE_DIR"]))
    finally:
        os.chdir(cwd)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return outputs


def _replay_summary(output: str) -> str:
    """The replay's summary without its duration and rate (wall-clock time: "in 12.3 s (1,130 msg/s)")."""
    lines = output.splitlines(keepends=True)
    return "".join(line.split(" in ")[0] + "\n" if line.startswith("messages processed:") else line for line in lines)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _without_clock(value: Any) -> Any:
    """JSON columns (alert_change.snapshot, the outbox's and notifications' contexts) hold clock instants too."""
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in CLOCK_COLUMNS | CLOCK_KEYS}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


async def _tables(url: str, schema: str | None) -> dict[str, str]:
    engine = create_engine(url, schema=schema)
    outputs = {}
    try:
        async with engine.connect() as conn:
            for table in TABLES:
                skip = CLOCK_COLUMNS | LEFT_OUT_BY_TABLE.get(table.name, frozenset())
                columns = [c for c in table.columns if c.name not in skip]
                rows = [dict(row) for row in (await conn.execute(select(*columns))).mappings()]
                for (name, column), length in SHORTENED.items():
                    if name == table.name:
                        for row in rows:
                            row[column] = row[column][:length]
                lines = sorted(_canonical(_without_clock(row)) + "\n" for row in rows)
                outputs[f"table-{table.name}.jsonl"] = "".join(lines)
    finally:
        await engine.dispose()
    return outputs


def _mail(directory: Path) -> str:
    """Every email written: its headers but Date and the MIME boundary (random), and its plain-text body."""
    lines = []
    for path in directory.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        headers = {k: str(v) for k, v in message.items() if k not in ("Date", "Content-Type")}
        headers["Content-Type"] = message.get_content_type()
        body = message.get_body(("plain",))
        text = body.get_content() if isinstance(body, EmailMessage) else ""
        lines.append(_canonical({"headers": headers, "text": text}) + "\n")
    return "".join(sorted(lines))


# Golden files larger than this are kept gzipped (`zcat` shows them); the smaller ones as plain text.
GZIP_ABOVE = 100_000


def golden_files(directory: Path = GOLDEN) -> dict[str, Path]:
    """The golden files by output name (a gzipped one under its name without .gz)."""
    return {p.name.removesuffix(".gz"): p for p in sorted(directory.iterdir())}


def read_golden(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


def write_outputs(outputs: Mapping[str, str], directory: Path = GOLDEN) -> None:
    """Write the outputs as the golden files; a file whose content is unchanged is left as it is."""
    directory.mkdir(parents=True, exist_ok=True)
    existing = golden_files(directory)
    for name, text in outputs.items():
        path = directory / (f"{name}.gz" if len(text.encode()) > GZIP_ABOVE else name)
        old = existing.pop(name, None)
        if old == path and read_golden(old) == text:
            continue
        if old is not None:
            old.unlink()
        data = text.encode("utf-8")
        if path.suffix == ".gz":
            with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as sink:
                sink.write(data)
        else:
            path.write_bytes(data)
    for stale in existing.values():
        stale.unlink()


def first_difference(name: str, expected: str, actual: str, context: int = 3, limit: int = 40) -> str:
    """Where `actual` first departs from the golden `expected`: a unified diff, cut after `limit` lines."""
    diff = list(
        difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"golden/{name}", f"this run/{name}", n=context, lineterm=""
        )
    )
    shown = "\n".join(line[:400] for line in diff[:limit])
    more = f"\n... {len(diff) - limit} more diff lines" if len(diff) > limit else ""
    return f"{name} differs from its golden file ({len(expected):,} -> {len(actual):,} characters):\n{shown}{more}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the recorded run's input or golden outputs.")
    parser.add_argument("what", choices=("input", "outputs"), help="input: messages.jsonl.gz; outputs: golden/")
    args = parser.parse_args()
    if args.what == "input":
        generate_input()
        print(
            f"{INPUT.relative_to(ROOT)}: {INPUT.stat().st_size:,} bytes; now run: python -m tests.recorded_run outputs"
        )
        return
    with tempfile.TemporaryDirectory(prefix="recorded-") as tmp:
        workdir = Path(tmp)
        outputs = record(workdir, environment(workdir, f"sqlite:///{workdir / 'recorded.db'}", None))
    write_outputs(outputs)
    for name, text in sorted(outputs.items()):
        print(f"{name}: {len(text.encode()):,} bytes")


if __name__ == "__main__":
    main()
