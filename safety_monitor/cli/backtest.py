"""Owns `safety-monitor rules backtest`: what each rule would have raised on historical data, sending nothing.

Input: wire-format JSONL files, or SDTM AE / LB / VS / EG tables as CSV or SAS transport (XPT) files (the domain
is recognised by its test-code or term columns). Everything runs through the real pipeline into a temporary
SQLite store that is thrown away; no mail is sent, no configured database is touched.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from safety_monitor.adapters.sdtm_files import SdtmFileError, read_lb_table
from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.cli.rule_tests import default_grader
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service.pipeline import PipelineConfig, process_batch
from safety_monitor.service.records import InboundMessage, RejectedMessage
from streams.decoding import decode
from streams.embedded import to_service
from streams.wire import json_schemas

# The SDTM column that tells which domain a table holds.
_DOMAIN_MARKERS = (("AEDECOD", "AE"), ("LBTESTCD", "LB"), ("VSTESTCD", "VS"), ("EGTESTCD", "EG"))
_DATE_COLUMN = {"AE": "AESTDTC", "LB": "LBDTC", "VS": "VSDTC", "EG": "EGDTC"}
_NUMBERS = {"LBSTRESN", "LBSTNRLO", "LBSTNRHI", "VSSTRESN", "EGSTRESN"}


class BacktestInputError(Exception):
    """An input file that cannot be used, naming the file."""


def _sdtm_messages(path: Path) -> Iterator[tuple[str, str]]:
    """(wire payload, "file:row") for each row of an SDTM table, keeping the columns the wire format knows."""
    try:
        header, rows = read_lb_table(path)
    except SdtmFileError as exc:
        raise BacktestInputError(str(exc)) from None
    columns = {c.upper() for c in header}
    domain = next((d for marker, d in _DOMAIN_MARKERS if marker in columns), None)
    if domain is None:
        raise BacktestInputError(f"{path}: not an SDTM AE, LB, VS or EG table (no AEDECOD/LBTESTCD/VSTESTCD/EGTESTCD)")
    known = set(json_schemas()[domain]["properties"])
    for number, row in enumerate(rows, start=2):
        record: dict[str, Any] = {}
        for name, cell in zip(header, row, strict=True):
            key = name.upper()
            if key not in known or cell.strip() == "":
                continue
            record[key] = float(cell) if key in _NUMBERS else cell.strip()
        when = str(record.get(_DATE_COLUMN[domain], ""))
        sent_at = f"{when[:10]}T00:00:00+00:00" if len(when) >= 10 else "1970-01-01T00:00:00+00:00"
        message = {
            "msg_id": f"{path.name}:{number}",
            "msg_type": domain,
            "sent_at": sent_at,
            "site_id": _site(str(record.get("USUBJID", ""))),
            "record_version": 1,
        } | record
        yield json.dumps(message), f"{path.name}:{number}"


def _site(subject_id: str) -> str:
    """The site part of a USUBJID shaped STUDY-SITE-NNNN; "000" when it is not."""
    parts = subject_id.split("-")
    return parts[-2] if len(parts) >= 3 else "000"


def _messages(paths: tuple[Path, ...]) -> list[tuple[str, str]]:
    messages: list[tuple[str, str]] = []
    for path in paths:
        if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            with path.open(encoding="utf-8", errors="surrogateescape") as handle:
                messages += [
                    (line.rstrip("\n"), f"{path.name}:{n}") for n, line in enumerate(handle, 1) if line.strip()
                ]
        elif path.suffix.lower() in (".csv", ".xpt"):
            messages += list(_sdtm_messages(path))
        else:
            raise BacktestInputError(f"{path}: expected .jsonl (wire format), or .csv / .xpt (SDTM AE, LB, VS, EG)")
    return messages


@dataclass
class BacktestReport:
    messages: int = 0
    refused: int = 0
    alerts_by_rule: Counter[str] = field(default_factory=Counter)
    hits_by_rule: Counter[str] = field(default_factory=Counter)
    by_subject: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    refusals: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "refused": self.refused,
            "rules": {
                rule: {"alerts": self.alerts_by_rule[rule], "hits": self.hits_by_rule[rule]}
                for rule in sorted(set(self.alerts_by_rule) | set(self.hits_by_rule))
            },
            "subjects": {s: dict(sorted(c.items())) for s, c in sorted(self.by_subject.items())},
            "refusals": self.refusals[:100],
        }


async def backtest(
    ruleset: Ruleset, paths: tuple[Path, ...], *, batch_size: int = 500, progress: bool = True
) -> BacktestReport:
    """Replay the files through the pipeline into a throw-away SQLite store; what each rule raised."""
    messages = _messages(paths)
    report = BacktestReport(messages=len(messages))
    config = PipelineConfig(ruleset, default_grader(), ("backtest@invalid",))
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="safety-monitor-backtest-") as directory:
        engine = create_engine(f"sqlite:///{directory}/backtest.db")
        try:
            await upgrade(engine)
            store = SqlStore(engine)
            sink = None if progress else io.StringIO()
            with click.progressbar(length=len(messages), label="backtest", file=sink) as bar:
                for start in range(0, len(messages), batch_size):
                    chunk = messages[start : start + batch_size]
                    batch: list[InboundMessage | RejectedMessage] = [to_service(decode(p, o)) for p, o in chunk]
                    async with store() as uow:
                        outcome = await process_batch(uow, batch, config, now)
                        await uow.commit()
                    report.refused += outcome.dead_lettered
                    report.refusals += outcome.dead_letter_reasons
                    bar.update(len(chunk))
            async with store() as uow:
                alerts = await uow.alerts.get(await _alert_keys(store))
            for alert in alerts.values():
                report.alerts_by_rule[alert.rule_id] += 1
                report.by_subject[alert.subject_id or f"(cohort {alert.study_id})"][alert.rule_id] += 1
            report.hits_by_rule.update(await _hit_counts(store))
        finally:
            await engine.dispose()
    return report


async def _alert_keys(store: SqlStore) -> list[str]:
    async with store.engine.connect() as connection:
        return list((await connection.execute(select(t.alert.c.alert_key))).scalars())


async def _hit_counts(store: SqlStore) -> dict[str, int]:
    async with store.engine.connect() as connection:
        rows = await connection.execute(select(t.rule_hit.c.rule_id, func.count()).group_by(t.rule_hit.c.rule_id))
        return {rule_id: int(count) for rule_id, count in rows}


def format_report(report: BacktestReport) -> str:
    lines = [f"messages: {report.messages}; refused: {report.refused}", "", f"{'rule':<44} {'alerts':>7} {'hits':>7}"]
    for rule in sorted(set(report.alerts_by_rule) | set(report.hits_by_rule)):
        lines.append(f"{rule:<44} {report.alerts_by_rule[rule]:>7} {report.hits_by_rule[rule]:>7}")
    if report.by_subject:
        lines += ["", "per subject (alerts by rule):"]
        for subject, counts in sorted(report.by_subject.items()):
            lines.append(f"  {subject}: " + ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items())))
    for reason in report.refusals[:20]:
        lines.append(f"refused: {reason}")
    return "\n".join(lines)
