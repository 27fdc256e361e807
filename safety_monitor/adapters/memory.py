"""Owns the in-memory unit of work: the same ports as the SQL store, for fast service-layer tests."""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from safety_monitor.adapters.memory_workspace import (
    MemoryApiTokens,
    MemoryAuditLog,
    MemorySessions,
    MemoryUsers,
    WorkspaceState,
)
from safety_monitor.domain.alerts import Alert, AlertChange, AlertStatus
from safety_monitor.domain.baselines import TestKey, test_key
from safety_monitor.domain.conditions.deadline import ClockKey, SaeClock
from safety_monitor.domain.derived_grades import AeSpan, span_of
from safety_monitor.domain.incidence import AeFact, SourcedAeFact, sourced_fact
from safety_monitor.domain.messages import AdverseEvent, Finding, SubjectEvent, TumourResponse
from safety_monitor.domain.review import ReviewAction
from safety_monitor.domain.rules import RuleHit
from safety_monitor.domain.subjects import Subject, SubjectEventFact, event_fact
from safety_monitor.service.ports import AeKey, DrawKey, HitKey, LeaseState, ResponseKey, SubjectKey
from safety_monitor.service.records import (
    AlertNotificationState,
    DeadLetter,
    InboxEntry,
    Notice,
    Notification,
    NotificationGroup,
    PendingGroup,
    Publication,
    StoredFinding,
)


@dataclass
class MemoryState:
    """Everything committed so far; a unit of work copies it on entry and swaps it in on commit."""

    inbox: dict[str, InboxEntry] = field(default_factory=dict)
    dead_letters: dict[str, tuple[DeadLetter, int]] = field(default_factory=dict)
    subjects: dict[SubjectKey, Subject] = field(default_factory=dict)
    subject_events: list[SubjectEvent] = field(default_factory=list)
    ae_current: dict[AeKey, AdverseEvent] = field(default_factory=dict)
    ae_versions: dict[str, AdverseEvent] = field(default_factory=dict)
    findings: dict[str, StoredFinding] = field(default_factory=dict)
    baselines: dict[TestKey, str] = field(default_factory=dict)
    hits: dict[tuple[str, str, str, str], RuleHit] = field(default_factory=dict)  # (rule, study, subject, occurrence)
    alerts: dict[str, Alert] = field(default_factory=dict)
    alert_changes: list[AlertChange] = field(default_factory=list)
    outbox: dict[str, Notice] = field(default_factory=dict)
    digests: dict[str, datetime] = field(default_factory=dict)
    leases: dict[str, LeaseState] = field(default_factory=dict)
    notifications: dict[str, Notification] = field(default_factory=dict)
    notification_groups: dict[str, NotificationGroup] = field(default_factory=dict)
    notification_log: dict[tuple[str, str], AlertNotificationState] = field(default_factory=dict)
    sae_clocks: dict[tuple[str, ClockKey], SaeClock] = field(default_factory=dict)
    review_actions: list[ReviewAction] = field(default_factory=list)  # append-only
    publications: dict[str, Publication] = field(default_factory=dict)
    tumour_responses: dict[str, TumourResponse] = field(default_factory=dict)  # every version, by msg_id
    workspace: WorkspaceState = field(default_factory=WorkspaceState)


class _Repo:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def s(self) -> MemoryState:
        return self._uow.working


class _Inbox(_Repo):
    async def content_hashes(self, msg_ids: Iterable[str]) -> dict[str, str]:
        return {m: self.s.inbox[m].content_hash for m in msg_ids if m in self.s.inbox}

    async def payloads(self, msg_ids: Iterable[str]) -> dict[str, str]:
        return {m: self.s.inbox[m].payload for m in msg_ids if m in self.s.inbox}

    async def add(self, entries: Sequence[InboxEntry]) -> None:
        for entry in entries:
            self.s.inbox.setdefault(entry.msg_id, entry)


class _DeadLetters(_Repo):
    async def add(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            stored, count = self.s.dead_letters.get(letter.payload_hash, (letter, 0))
            self.s.dead_letters[letter.payload_hash] = (stored, count + 1)

    async def list(self, limit: int = 100) -> list[tuple[DeadLetter, int]]:
        return sorted(self.s.dead_letters.values(), key=lambda pair: pair[0].listing_order())[:limit]


class _Subjects(_Repo):
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


class _TumourResponses(_Repo):
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


class _AdverseEvents(_Repo):
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


class _Findings(_Repo):
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


class _Hits(_Repo):
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


class _Alerts(_Repo):
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


class _Outbox(_Repo):
    async def add(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            self.s.outbox.setdefault(notice.notice_id, notice)

    async def due(self, now: datetime, limit: int) -> list[Notice]:
        due = [
            n
            for n in self.s.outbox.values()
            if n.sent_at is None and (n.attempts == 0 or (n.next_attempt_at is not None and n.next_attempt_at <= now))
        ]
        return sorted(due, key=lambda n: (n.created_at, n.notice_id))[:limit]

    async def mark_sent(self, notice_id: str, at: datetime, outcomes: Mapping[str, str] | None = None) -> None:
        notice = self.s.outbox[notice_id]
        self.s.outbox[notice_id] = replace(
            notice,
            sent_at=at,
            attempts=notice.attempts + 1,
            last_error=None,
            next_attempt_at=None,
            recipient_outcomes=dict(outcomes) if outcomes is not None else notice.recipient_outcomes,
        )

    async def mark_failed(
        self, notice_id: str, error: str, next_attempt_at: datetime, outcomes: Mapping[str, str] | None = None
    ) -> None:
        notice = self.s.outbox[notice_id]
        self.s.outbox[notice_id] = replace(
            notice,
            attempts=notice.attempts + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
            recipient_outcomes=dict(outcomes) if outcomes is not None else notice.recipient_outcomes,
        )

    async def unsent_since(self, before: datetime, limit: int) -> list[Notice]:
        found = [n for n in self.s.outbox.values() if n.sent_at is None and n.created_at <= before]
        return sorted(found, key=lambda n: (n.created_at, n.notice_id))[:limit]

    async def undeliverable(self, limit: int) -> list[Notice]:
        found = [n for n in self.s.outbox.values() if n.undeliverable]
        return sorted(found, key=lambda n: n.created_at, reverse=True)[:limit]

    async def counts(self) -> dict[str, int]:
        notices = self.s.outbox.values()
        return {
            "sent": sum(1 for n in notices if n.sent_at is not None),
            "pending": sum(1 for n in notices if n.sent_at is None and (n.attempts == 0 or n.next_attempt_at)),
            "failed": sum(1 for n in notices if n.sent_at is None and n.attempts > 0 and not n.next_attempt_at),
        }


class _Digests(_Repo):
    async def last_sent(self, kind: str) -> datetime | None:
        return self.s.digests.get(kind)

    async def record_sent(self, kind: str, at: datetime, recipients: Sequence[str]) -> None:
        self.s.digests[kind] = at


class _Leases(_Repo):
    async def claim(self, job: str, slot: int, holder: str, now: datetime, held_until: datetime) -> bool:
        last = self.s.leases.get(job)
        if last is not None:
            finished_or_expired = last.done_at is not None or last.held_until < now
            retry_expired = last.slot == slot and last.done_at is None and last.held_until < now
            if not ((last.slot < slot and finished_or_expired) or retry_expired):
                return False
        self.s.leases[job] = LeaseState(job, slot, holder, held_until, None)
        return True

    async def complete(self, job: str, slot: int, holder: str, at: datetime) -> None:
        last = self.s.leases.get(job)
        if last is not None and last.slot == slot and last.holder == holder:
            self.s.leases[job] = replace(last, done_at=at)

    async def states(self) -> list[LeaseState]:
        return [self.s.leases[job] for job in sorted(self.s.leases)]

    async def release(self, job: str, holder: str, at: datetime) -> None:
        last = self.s.leases.get(job)
        if last is not None and last.holder == holder and last.done_at is None:
            self.s.leases[job] = replace(last, held_until=at - timedelta(seconds=1))


class _Notifications(_Repo):
    async def put_groups(self, groups: Sequence[NotificationGroup]) -> None:
        for group in groups:
            known = self.s.notification_groups.get(group.group_id)
            last = known.last_flush_at if known is not None else None
            self.s.notification_groups[group.group_id] = replace(group, last_flush_at=last)

    async def add(self, notifications: Sequence[Notification]) -> None:
        for notification in notifications:
            self.s.notifications.setdefault(notification.notification_id, notification)

    async def track(self, states: Sequence[AlertNotificationState]) -> None:
        for state in states:
            key = (state.receiver, state.alert_key)
            known = self.s.notification_log.get(key)
            if known is not None:
                state = replace(state, last_notified_at=known.last_notified_at, last_mail_id=known.last_mail_id)
            self.s.notification_log[key] = state

    async def pending(self, group_ids: Iterable[str] | None = None) -> list[Notification]:
        wanted = None if group_ids is None else set(group_ids)
        found = [
            n
            for n in self.s.notifications.values()
            if n.state == "pending" and (wanted is None or n.group_id in wanted)
        ]
        return sorted(found, key=lambda n: (n.created_at, n.notification_id))

    async def pending_groups(self) -> list[PendingGroup]:
        summary: dict[str, PendingGroup] = {}
        for n in self.s.notifications.values():
            if n.state != "pending":
                continue
            seen = summary.get(n.group_id)
            summary[n.group_id] = (
                PendingGroup(n.group_id, n.created_at, n.urgent, 1)
                if seen is None
                else PendingGroup(
                    n.group_id, min(seen.earliest_pending, n.created_at), seen.urgent or n.urgent, seen.count + 1
                )
            )
        return list(summary.values())

    async def groups(self, group_ids: Iterable[str]) -> dict[str, NotificationGroup]:
        return {g: self.s.notification_groups[g] for g in group_ids if g in self.s.notification_groups}

    async def log(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AlertNotificationState]:
        return {k: self.s.notification_log[k] for k in keys if k in self.s.notification_log}

    async def open_alerts(
        self, after: tuple[str, str] | None = None, limit: int | None = None
    ) -> list[AlertNotificationState]:
        entries = sorted(self.s.notification_log.items())
        found = [e for k, e in entries if e.status == "open" and (after is None or k > after)]
        return found if limit is None else found[:limit]

    async def mark_mailed(self, notification_ids: Sequence[str], mail_id: str, at: datetime) -> int:
        count = 0
        for notification_id in notification_ids:
            known = self.s.notifications.get(notification_id)
            if known is not None and known.state == "pending":
                self.s.notifications[notification_id] = replace(known, state="mailed", mail_id=mail_id, decided_at=at)
                count += 1
        return count

    async def hold(self, held: Sequence[tuple[str, str]]) -> None:
        for notification_id, reason in held:
            known = self.s.notifications[notification_id]
            if known.state == "pending":
                self.s.notifications[notification_id] = replace(known, held_by=reason)

    async def drop(self, dropped: Sequence[tuple[str, str]], at: datetime) -> None:
        for notification_id, reason in dropped:
            known = self.s.notifications[notification_id]
            if known.state == "pending":
                self.s.notifications[notification_id] = replace(known, state="dropped", held_by=reason, decided_at=at)

    async def record_email(self, group_id: str, keys: Sequence[tuple[str, str]], mail_id: str, at: datetime) -> None:
        group = self.s.notification_groups[group_id]
        self.s.notification_groups[group_id] = replace(group, last_flush_at=at)
        for key in keys:
            if key in self.s.notification_log:
                entry = self.s.notification_log[key]
                self.s.notification_log[key] = replace(entry, last_notified_at=at, last_mail_id=mail_id)

    async def list(self, limit: int = 1000) -> list[Notification]:
        return sorted(self.s.notifications.values(), key=lambda n: (n.created_at, n.notification_id))[:limit]


class _SaeClocks(_Repo):
    async def get(self, keys: Iterable[tuple[str, ClockKey]]) -> dict[tuple[str, ClockKey], SaeClock]:
        return {k: self.s.sae_clocks[k] for k in keys if k in self.s.sae_clocks}

    async def put(self, clocks: Sequence[SaeClock]) -> None:
        for clock in clocks:
            self.s.sae_clocks[(clock.rule_id, clock.key)] = clock

    async def open(self) -> list[SaeClock]:
        return [c for _, c in sorted(self.s.sae_clocks.items()) if c.is_open]

    async def for_case(self, key: ClockKey) -> list[SaeClock]:
        return [c for (_, case), c in sorted(self.s.sae_clocks.items()) if case == key]


class _ReviewActions(_Repo):
    """Append-only, like the SQL table: there is no way to change or remove an action once added."""

    async def add(self, actions: Sequence[ReviewAction]) -> None:
        self.s.review_actions.extend(actions)

    async def for_alerts(self, keys: Iterable[str]) -> dict[str, list[ReviewAction]]:
        wanted = set(keys)
        found: dict[str, list[ReviewAction]] = {}
        for action in self.s.review_actions:
            if action.alert_key in wanted:
                found.setdefault(action.alert_key, []).append(action)
        return found

    async def last_at(self, reviewer: str | None = None) -> datetime | None:
        times = [a.at for a in self.s.review_actions if reviewer is None or a.reviewer == reviewer]
        return max(times, default=None)

    async def every(self) -> list[ReviewAction]:
        return list(self.s.review_actions)


class _Publications(_Repo):
    async def add(self, publications: Sequence[Publication]) -> None:
        for publication in publications:
            self.s.publications.setdefault(publication.publication_id, publication)

    async def pending(self, created_before: datetime, limit: int) -> list[Publication]:
        waiting = [p for p in self.s.publications.values() if p.published_at is None and p.created_at < created_before]
        return sorted(waiting, key=lambda p: (p.created_at, p.publication_id))[:limit]

    async def backlog(self) -> int:
        return sum(1 for p in self.s.publications.values() if p.published_at is None)

    async def mark_published(self, publication_ids: Sequence[str], at: datetime) -> None:
        for publication_id in publication_ids:
            publication = self.s.publications.get(publication_id)
            if publication is not None and publication.published_at is None:
                self.s.publications[publication_id] = replace(publication, published_at=at)


class MemoryUnitOfWork:
    """A transaction over `MemoryState`: changes are made on a copy and published only by `commit()`."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.working = state
        self.committed = False
        self.inbox = _Inbox(self)
        self.dead_letters = _DeadLetters(self)
        self.subjects = _Subjects(self)
        self.adverse_events = _AdverseEvents(self)
        self.findings = _Findings(self)
        self.hits = _Hits(self)
        self.alerts = _Alerts(self)
        self.outbox = _Outbox(self)
        self.digests = _Digests(self)
        self.leases = _Leases(self)
        self.notifications = _Notifications(self)
        self.sae_clocks = _SaeClocks(self)
        self.review_actions = _ReviewActions(self)
        self.publications = _Publications(self)
        self.tumour_responses = _TumourResponses(self)
        self.users = MemoryUsers(self)
        self.api_tokens = MemoryApiTokens(self)
        self.sessions = MemorySessions(self)
        self.audit_log = MemoryAuditLog(self)

    @property
    def workspace(self) -> WorkspaceState:
        return self.working.workspace

    async def __aenter__(self) -> Self:
        self.working = copy.deepcopy(self.state)
        self.committed = False
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.working = self.state

    async def commit(self) -> None:
        for name in vars(self.state):
            setattr(self.state, name, getattr(self.working, name))
        self.committed = True


class MemoryStore:
    """A factory of in-memory units of work sharing one state."""

    def __init__(self) -> None:
        self.state = MemoryState()

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.state)
