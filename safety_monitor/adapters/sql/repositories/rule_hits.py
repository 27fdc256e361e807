"""Owns the SQL rule hit repository: one row per occurrence of a rule, each naming its alert."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, chunks
from safety_monitor.domain.rules import RuleHit
from safety_monitor.service.ports import HitKey


class SqlRuleHitRepository(SqlRepository):
    _KEY = ("rule_id", "study_id", "subject_id", "occurrence")

    async def add(self, hits: Sequence[RuleHit]) -> None:
        rows = [
            {
                "rule_id": h.rule.id,
                "occurrence": h.occurrence,
                "msg_id": h.msg_id,
                "alert_key": h.alert_key,
                "study_id": h.study_id,
                "subject_id": h.subject_id,
                "subject_ref": h.subject_ref,
                "term": h.term,
                "grade": h.grade,
                "observed_on": h.observed_on,
                "detail": h.detail,
                "ruleset_hash": h.ruleset_hash,
                "ctcae_version": h.ctcae_version,
            }
            for h in hits
        ]
        # Upsert: a re-graded finding is evaluated again and its hit carries the new grade. One row per key
        # per statement (PostgreSQL refuses an upsert that touches a row twice).
        unique = {tuple(row[k] for k in self._KEY): row for row in rows}
        await self._upsert(t.rule_hit, list(unique.values()), list(self._KEY))

    async def alert_keys(self, keys: Iterable[HitKey]) -> dict[HitKey, str]:
        rows = await self._select_by_keys(t.rule_hit, self._KEY, keys)
        return {(r.rule_id, r.study_id, r.subject_id, r.occurrence): r.alert_key for r in rows}

    async def occurrences(self, alert_keys: Iterable[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        c = t.rule_hit.c
        for chunk in chunks(sorted(set(alert_keys))):
            for row in await self.conn.execute(select(c.alert_key, c.occurrence).where(c.alert_key.in_(chunk))):
                found.setdefault(row.alert_key, set()).add(row.occurrence)
        return found

    async def stamps(self, alert_keys: Iterable[str]) -> dict[str, dict[str, tuple[str, str]]]:
        found: dict[str, dict[str, tuple[str, str]]] = {}
        c = t.rule_hit.c
        statement = select(c.alert_key, c.occurrence, c.ruleset_hash, c.ctcae_version)
        for chunk in chunks(sorted(set(alert_keys))):
            for row in await self.conn.execute(statement.where(c.alert_key.in_(chunk))):
                found.setdefault(row.alert_key, {})[row.occurrence] = (row.ruleset_hash, row.ctcae_version)
        return found

    async def retain(self, occurrences: Mapping[str, Collection[str]]) -> int:
        # Read the keys (the alert-key index serves it), delete only what is stale: usually nothing.
        stale: list[dict[str, Any]] = []
        columns = [t.rule_hit.c[k] for k in self._KEY]
        for chunk in chunks(sorted(occurrences)):
            result = await self.conn.execute(
                select(t.rule_hit.c.alert_key, *columns).where(t.rule_hit.c.alert_key.in_(chunk))
            )
            stale += [
                dict(zip(self._KEY, row[1:], strict=True))
                for row in result
                if row.occurrence not in occurrences[row.alert_key]
            ]
        if stale:
            where = [c == bindparam(f"k_{c.name}") for c in columns]
            await self.conn.execute(
                t.rule_hit.delete().where(*where), [{f"k_{k}": v for k, v in row.items()} for row in stale]
            )
        return len(stale)
