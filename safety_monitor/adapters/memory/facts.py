"""Owns the in-memory clinical facts: subjects and their events, tumour responses, AEs and their versions, and
findings with their baselines."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from safety_monitor.adapters.memory.state import MemoryRepository
from safety_monitor.domain.baselines import TestKey, test_key
from safety_monitor.domain.derived_grades import AeSpan, span_of
from safety_monitor.domain.incidence import AeFact, SourcedAeFact, sourced_fact
from safety_monitor.domain.messages import AdverseEvent, Finding, SubjectEvent, TumourResponse
from safety_monitor.domain.subjects import Subject, SubjectEventFact, event_fact
from safety_monitor.service.ports import AeKey, DrawKey, ResponseKey, SubjectKey
from safety_monitor.service.records import StoredFinding


class MemorySubjects(MemoryRepository):
    async def get(self, keys: Iterable[SubjectKey]) -> dict[SubjectKey, Subject]:
        return {k: self.s.subjects[k] for k in keys if k in self.s.subjects}

    async def put(self, subjects: Sequence[Subject]) -> None:
        for subject in subjects:
            self.s.subjects[subject.key] = subject

    async def add_events(self, events: Sequence[SubjectEvent]) -> None:
        self.s.subject_events.extend(events)

    async def safety_population(self) -> dict[SubjectKey, Subject]:
        return {k: v for k, v in self.s.subjects.items() if v.in_safety_population}

    async def all(self) -> dict[SubjectKey, Subject]:
        return dict(self.s.subjects)

    async def events(self) -> list[SubjectEventFact]:
        seen: set[str] = set()
        facts = []
        for event in self.s.subject_events:
            if event.envelope.msg_id not in seen:
                seen.add(event.envelope.msg_id)
                facts.append(event_fact(event))
        return facts


class MemoryTumourResponses(MemoryRepository):
    async def latest_versions(self, keys: Iterable[ResponseKey]) -> dict[ResponseKey, int]:
        wanted = set(keys)
        found: dict[ResponseKey, int] = {}
        for response in self.s.tumour_responses.values():
            key = response.record_key
            if key in wanted:
                found[key] = max(found.get(key, 0), response.envelope.record_version)
        return found

    async def add(self, responses: Sequence[TumourResponse]) -> None:
        for response in responses:
            self.s.tumour_responses.setdefault(response.envelope.msg_id, response)

    async def current(self) -> list[TumourResponse]:
        best: dict[ResponseKey, TumourResponse] = {}
        for response in self.s.tumour_responses.values():
            held = best.get(response.record_key)
            if held is None or response.envelope.record_version > held.envelope.record_version:
                best[response.record_key] = response
        return [best[k] for k in sorted(best)]


class MemoryAdverseEvents(MemoryRepository):
    async def current(self, keys: Iterable[AeKey]) -> dict[AeKey, AdverseEvent]:
        return {k: self.s.ae_current[k] for k in keys if k in self.s.ae_current}

    async def put_current(self, events: Sequence[AdverseEvent]) -> None:
        for event in events:
            self.s.ae_current[event.record_key] = event

    async def add_versions(self, events: Sequence[AdverseEvent]) -> None:
        for event in events:
            self.s.ae_versions.setdefault(event.envelope.msg_id, event)

    async def facts(self, pts: Collection[str] | None = None) -> list[AeFact]:
        wanted = None if pts is None else {p.casefold() for p in pts}
        return [
            AeFact(k[0], k[1], e.system_organ_class, e.preferred_term, e.investigator_grade or 0, e.onset_date)
            for k, e in self.s.ae_current.items()
            if wanted is None or e.preferred_term.casefold() in wanted
        ]

    async def sourced_facts(self, pts: Collection[str], grade_at_least: int = 0) -> list[SourcedAeFact]:
        wanted = {p.casefold() for p in pts}
        return [
            sourced_fact(e)
            for e in self.s.ae_current.values()
            if e.preferred_term.casefold() in wanted and (e.investigator_grade or 0) >= grade_at_least
        ]

    async def for_subjects(
        self, subjects: Iterable[SubjectKey], pts: Collection[str] | None = None
    ) -> list[AdverseEvent]:
        keys = set(subjects)
        wanted = None if pts is None else {p.casefold() for p in pts}
        return [
            e
            for k, e in self.s.ae_current.items()
            if (k[0], k[1]) in keys and (wanted is None or e.preferred_term.casefold() in wanted)
        ]

    async def spans(self, subjects: Iterable[SubjectKey], pts: Collection[str]) -> list[AeSpan]:
        return [span_of(e) for e in await self.for_subjects(subjects, pts)]

    async def with_derived_grade(self) -> list[AdverseEvent]:
        return [e for _, e in sorted(self.s.ae_current.items()) if e.derived_grade is not None]

    async def first_serious_sent(self) -> dict[AeKey, datetime]:
        found: dict[AeKey, datetime] = {}
        for event in self.s.ae_versions.values():
            if (event.serious or "") == "Y":
                key, sent = event.record_key, event.envelope.sent_at
                found[key] = min(found.get(key, sent), sent)
        return found

    async def unknown_subject_count(self) -> int:
        return sum(1 for k in self.s.ae_current if (k[0], k[1]) not in self.s.subjects)


class MemoryFindings(MemoryRepository):
    async def add(self, findings: Sequence[StoredFinding]) -> None:
        for stored in findings:
            self.s.findings.setdefault(stored.finding.envelope.msg_id, stored)

    async def history(
        self, keys: Iterable[TestKey], *, collected_from: str | None = None, collected_before: str | None = None
    ) -> list[StoredFinding]:
        wanted = set(keys)
        return [
            f
            for f in self.s.findings.values()
            if test_key(f.finding) in wanted
            and (
                not f.finding.collected_at.is_complete  # a date without its day cannot be placed: always read
                or (
                    (collected_from is None or f.finding.collected_at.text >= collected_from)
                    and (collected_before is None or f.finding.collected_at.text < collected_before)
                )
            )
        ]

    async def for_subjects(self, subjects: Iterable[SubjectKey]) -> list[StoredFinding]:
        wanted = set(subjects)
        return [
            f
            for f in self.s.findings.values()
            if (f.finding.envelope.study_id, f.finding.envelope.subject_id) in wanted
        ]

    async def same_draw(self, wanted: Iterable[DrawKey]) -> dict[DrawKey, StoredFinding]:
        keys = set(wanted)
        found: dict[DrawKey, StoredFinding] = {}
        for stored in self.s.findings.values():
            f = stored.finding
            key = (f.envelope.study_id, f.envelope.subject_id, f.test_code, f.collected_at.text)
            if key in keys:
                found[key] = stored
        return found

    async def update_grades(self, findings: Sequence[StoredFinding]) -> None:
        for stored in findings:
            self.s.findings[stored.finding.envelope.msg_id] = stored

    async def baselines(self, keys: Iterable[TestKey]) -> dict[TestKey, Finding]:
        return {k: self.s.findings[self.s.baselines[k]].finding for k in keys if k in self.s.baselines}

    async def set_baselines(self, baselines: Sequence[Finding]) -> None:
        for finding in baselines:
            self.s.baselines[test_key(finding)] = finding.envelope.msg_id

    async def last_complete_dates(self, on_or_before: str) -> dict[SubjectKey, str]:
        latest: dict[SubjectKey, str] = {}
        for stored in self.s.findings.values():
            f = stored.finding
            day = f.collected_at.as_date()
            if day is None or day.isoformat() > on_or_before:
                continue
            key = (f.envelope.study_id, f.envelope.subject_id)
            latest[key] = max(latest.get(key, ""), day.isoformat())
        return latest
