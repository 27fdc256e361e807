"""Owns the in-memory rule hits, alerts with their changes, and the SAE reporting clocks."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from safety_monitor.adapters.memory.state import MemoryRepository
from safety_monitor.domain.alerts import Alert, AlertChange, AlertStatus
from safety_monitor.domain.conditions.deadline import ClockKey, SaeClock
from safety_monitor.domain.rules import RuleHit
from safety_monitor.service.ports import HitKey


class MemoryHits(MemoryRepository):
    async def add(self, hits: Sequence[RuleHit]) -> None:
        for hit in hits:
            self.s.hits[(hit.rule.id, hit.study_id, hit.subject_id, hit.occurrence)] = hit

    async def alert_keys(self, keys: Iterable[HitKey]) -> dict[HitKey, str]:
        return {k: self.s.hits[k].alert_key for k in keys if k in self.s.hits}

    async def occurrences(self, alert_keys: Iterable[str]) -> dict[str, set[str]]:
        wanted = set(alert_keys)
        found: dict[str, set[str]] = {}
        for key, hit in self.s.hits.items():
            if hit.alert_key in wanted:
                found.setdefault(hit.alert_key, set()).add(key[3])
        return found

    async def stamps(self, alert_keys: Iterable[str]) -> dict[str, dict[str, tuple[str, str]]]:
        wanted = set(alert_keys)
        found: dict[str, dict[str, tuple[str, str]]] = {}
        for key, hit in self.s.hits.items():
            if hit.alert_key in wanted:
                found.setdefault(hit.alert_key, {})[key[3]] = (hit.ruleset_hash, hit.ctcae_version)
        return found

    async def retain(self, occurrences: Mapping[str, Collection[str]]) -> int:
        stale = [
            k for k, h in self.s.hits.items() if h.alert_key in occurrences and k[3] not in occurrences[h.alert_key]
        ]
        for key in stale:
            del self.s.hits[key]
        return len(stale)


class MemoryAlerts(MemoryRepository):
    async def get(self, keys: Iterable[str]) -> dict[str, Alert]:
        return {k: self.s.alerts[k] for k in keys if k in self.s.alerts}

    async def by_id(self, alert_id: str) -> Alert | None:
        return next((a for a in self.s.alerts.values() if a.id == alert_id), None)

    async def put(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self.s.alerts[alert.key] = alert

    async def add_changes(self, changes: Sequence[AlertChange]) -> None:
        known = {c.notice_id for c in self.s.alert_changes}
        self.s.alert_changes.extend(c for c in changes if c.notice_id not in known)

    async def changes_since(self, since: datetime | None) -> list[AlertChange]:
        return [c for c in self.s.alert_changes if since is None or c.at > since]

    async def status_counts(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for alert in self.s.alerts.values():
            key = (alert.rule_id, alert.status.value)
            counts[key] = counts.get(key, 0) + 1
        return counts

    async def count_by_rule(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for alert in self.s.alerts.values():
            counts[alert.rule_id] = counts.get(alert.rule_id, 0) + 1
        return counts

    async def open(self) -> list[Alert]:
        found = [a for a in self.s.alerts.values() if a.status is AlertStatus.OPEN]
        return sorted(found, key=lambda a: (a.raised_at, a.key))


class MemorySaeClocks(MemoryRepository):
    async def get(self, keys: Iterable[tuple[str, ClockKey]]) -> dict[tuple[str, ClockKey], SaeClock]:
        return {k: self.s.sae_clocks[k] for k in keys if k in self.s.sae_clocks}

    async def put(self, clocks: Sequence[SaeClock]) -> None:
        for clock in clocks:
            self.s.sae_clocks[(clock.rule_id, clock.key)] = clock

    async def open(self) -> list[SaeClock]:
        return [c for _, c in sorted(self.s.sae_clocks.items()) if c.is_open]

    async def for_case(self, key: ClockKey) -> list[SaeClock]:
        return [c for (_, case), c in sorted(self.s.sae_clocks.items()) if case == key]
