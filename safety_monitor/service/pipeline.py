"""Owns the runtime contract for one batch: inbox dedupe, facts, grades, rule hits, alerts and outbox rows.

Both runtimes (embedded runner, Kafka worker) call `process_batch` inside one unit of work and commit it
before acknowledging the batch (docs/architecture.md, "The runtime contract"). Nothing here sends mail or reads the
clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from safety_monitor.domain.alerts import Alert, AlertChange, on_basis_removed, on_hit
from safety_monitor.domain.grading import FindingGrader
from safety_monitor.domain.messages import AdverseEvent, Finding, SubjectEvent, TumourResponse
from safety_monitor.domain.routing import Routing, fallback_routing
from safety_monitor.domain.rules import RuleHit, Ruleset, ae_alert_key
from safety_monitor.domain.subjects import Subject, apply_event
from safety_monitor.service.evaluation import evaluate_batch
from safety_monitor.service.findings import grade_findings
from safety_monitor.service.notices import alert_context, report_context
from safety_monitor.service.notifications import plan_notifications
from safety_monitor.service.ports import AeKey, ResponseKey, SubjectKey, UnitOfWork
from safety_monitor.service.publications import outcome_publications
from safety_monitor.service.records import (
    BasisRemoved,
    BatchOutcome,
    DeadLetter,
    InboundMessage,
    InboxEntry,
    Notice,
    RejectedMessage,
)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What the handlers need besides the store: the rules in force, the grader and who hears alerts."""

    ruleset: Ruleset
    grader: FindingGrader
    alert_recipients: tuple[str, ...]
    routing: Routing | None = None  # rules/routing.yaml; None: every alert to alert_recipients at once
    # A runtime with outbound topics (the Kafka worker): store what it must publish in the batch's transaction
    # (service/publications.py), so a crash after the commit cannot lose an alert record.
    publish: bool = False

    def effective_routing(self) -> Routing:
        return self.routing if self.routing is not None else fallback_routing(self.alert_recipients)


def payload_hash(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def _dead_letter(msg_id: str | None, reason: str, payload: str, origin: str, now: datetime) -> DeadLetter:
    return DeadLetter(payload_hash(payload), msg_id, reason, origin, payload, now)


def alert_notice(
    change: AlertChange,
    recipients: tuple[str, ...],
    ruleset: Ruleset | None = None,
    report: dict[str, object] | None = None,
) -> Notice:
    """The outbox row for an alert change; its context is what the mail templates may show (`report`: what the
    site's message behind the change adds, notices.report_context)."""
    alert = change.alert
    context = alert_context(alert, change.kind.value, change.previous_grade, change.msg_id, change.at)
    context |= report or {}
    rule = ruleset.by_id(alert.rule_id) if ruleset is not None else None
    if rule is not None:  # the rule's protocol action and its rendered annotations (summary, description, ...)
        context["recommendation"] = rule.recommendation.value if rule.recommendation else None
        context["annotations"] = rule.render_annotations({**context, "labels": dict(rule.labels)})
    return Notice(change.notice_id, alert.key, change.kind.value, recipients, context, change.at)


async def process_batch(
    uow: UnitOfWork,
    batch: Sequence[InboundMessage | RejectedMessage],
    config: PipelineConfig,
    now: datetime,
) -> BatchOutcome:
    """Handle one batch inside `uow` (the caller commits). Returns what happened, for summaries and metrics."""
    outcome = BatchOutcome(received=len(batch))
    letters: list[DeadLetter] = []
    fresh: list[InboundMessage] = []
    seen_in_batch: dict[str, InboundMessage] = {}

    for item in batch:
        if isinstance(item, RejectedMessage):
            letters.append(_dead_letter(item.msg_id, item.reason, item.payload, item.origin, now))
            continue
        msg_id = item.message.envelope.msg_id
        if msg_id in seen_in_batch:
            if same_content(seen_in_batch[msg_id].content_hash, seen_in_batch[msg_id].payload, item):
                outcome.duplicates += 1
            else:
                outcome.conflicts += 1
                letters.append(_conflict(item, now))
            continue
        seen_in_batch[msg_id] = item
        fresh.append(item)

    known = await uow.inbox.content_hashes(seen_in_batch)
    differing = [
        i.message.envelope.msg_id
        for i in fresh
        if known.get(i.message.envelope.msg_id, i.content_hash) != i.content_hash
    ]
    stored_payloads = await uow.inbox.payloads(differing) if differing else {}
    new: list[InboundMessage] = []
    for item in fresh:
        msg_id = item.message.envelope.msg_id
        stored_hash = known.get(msg_id)
        if stored_hash is None:
            new.append(item)
        elif same_content(stored_hash, stored_payloads.get(msg_id, ""), item):
            outcome.duplicates += 1
        else:
            outcome.conflicts += 1
            letters.append(_conflict(item, now))

    subject_events = [i.message for i in new if isinstance(i.message, SubjectEvent)]
    adverse_events = [i.message for i in new if isinstance(i.message, AdverseEvent)]
    findings = [i.message for i in new if isinstance(i.message, Finding)]
    responses = [i.message for i in new if isinstance(i.message, TumourResponse)]

    dose_changed = await _apply_subject_events(uow, subject_events)
    applied_aes, replacing, stale_ids = await _apply_adverse_events(uow, adverse_events)
    stale_ids |= await _apply_tumour_responses(uow, responses)
    outcome.stale = len(stale_ids)
    outcome.applied = len(new) - outcome.stale

    graded = await grade_findings(uow, findings, dose_changed, config.grader)
    outcome.regraded = len(graded.regraded)
    # Every rule kind (AE with derived grades, subject, finding, pattern, cohort, deadline): service/evaluation.py.
    # It reads the stored history and lays the batch's graded results over it, so they are written afterwards.
    evaluation = await evaluate_batch(
        uow,
        config.ruleset,
        config.grader.ctcae_version,
        subject_events=subject_events,
        applied=applied_aes,
        replacing=replacing,
        new_findings=graded.new,
        regraded=graded.regraded,
        baselines=graded.baselines,
    )
    await uow.findings.add(graded.new)
    await uow.findings.update_grades(graded.regraded)
    hits = evaluation.hits
    await uow.hits.add(hits)
    outcome.hits = len(hits)

    changes = await _update_alerts(uow, config.ruleset, hits, evaluation.ae_removals, now, evaluation.removed)
    by_msg_id = {i.message.envelope.msg_id: i.message for i in new}
    enrolled = await uow.subjects.get({(c.alert.study_id, c.alert.subject_id) for c in changes}) if changes else {}
    notices = [
        alert_notice(
            change,
            config.alert_recipients,
            config.ruleset,
            report_context(by_msg_id.get(change.msg_id), (change.alert.study_id, change.alert.subject_id) in enrolled),
        )
        for change in changes
    ]
    await plan_notifications(
        uow, config.effective_routing(), config.ruleset, list(zip(changes, notices, strict=True)), now
    )
    outcome.notices = len(notices)
    outcome.written_notices = notices
    for change in changes:
        if change.kind.value == "raised":
            outcome.alerts_by_rule[change.alert.rule_id] = outcome.alerts_by_rule.get(change.alert.rule_id, 0) + 1

    await uow.inbox.add(
        [
            InboxEntry(
                msg_id=i.message.envelope.msg_id,
                msg_type=i.message.envelope.msg_type.value,
                content_hash=i.content_hash,
                received_at=now,
                origin=i.origin,
                payload=i.payload,
                outcome="stale" if i.message.envelope.msg_id in stale_ids else "applied",
            )
            for i in new
        ]
    )
    if letters:
        await uow.dead_letters.add(letters)
    outcome.dead_lettered = len(letters)
    outcome.dead_letter_reasons = [letter.reason for letter in letters]
    outcome.dead_letters = letters
    if config.publish:
        await uow.publications.add(outcome_publications(outcome))
    return outcome


def same_content(stored_hash: str, stored_payload: str, item: InboundMessage) -> bool:
    """Whether a message with an already-seen msg_id is a redelivery of the same document.

    Equal hashes of the received text settle it; otherwise the two are compared as JSON documents (a site may
    re-serialise a message with other key order or spacing, and that is still the same message).
    """
    if stored_hash == item.content_hash:
        return True
    try:
        return bool(json.loads(stored_payload) == json.loads(item.payload))
    except ValueError:
        return False


def _conflict(item: InboundMessage, now: datetime) -> DeadLetter:
    msg_id = item.message.envelope.msg_id
    reason = (
        f"message {msg_id}: msg_id conflict: this msg_id was already received with different content; "
        "both versions are kept (the first in the inbox, this one here) and neither was merged"
    )
    return _dead_letter(msg_id, reason, item.payload, item.origin, now)


async def _apply_subject_events(uow: UnitOfWork, events: list[SubjectEvent]) -> set[SubjectKey]:
    """Fold SUBJECT events into subjects; returns the subjects whose first-dose date changed."""
    if not events:
        return set()
    keys: set[SubjectKey] = {(e.envelope.study_id, e.envelope.subject_id) for e in events}
    subjects: dict[SubjectKey, Subject] = await uow.subjects.get(keys)
    before = {key: subject.first_dose_on for key, subject in subjects.items()}
    for event in events:
        key = (event.envelope.study_id, event.envelope.subject_id)
        subjects[key] = apply_event(subjects.get(key), event)
    await uow.subjects.put([subjects[k] for k in sorted(keys)])
    await uow.subjects.add_events(events)
    return {key for key in keys if subjects[key].first_dose_on != before.get(key)}


async def _apply_adverse_events(
    uow: UnitOfWork, events: list[AdverseEvent]
) -> tuple[list[AdverseEvent], set[str], set[str]]:
    """Apply AE versions in arrival order: (applied, msg ids that replaced a version, stale msg ids).

    A version not above the current one is stale: kept in the history and the inbox, counted, and ignored for
    the current record (docs/clinical-decisions.md, "Follow-ups and corrections"). Arrival order (not version order)
    inside a batch makes the
    outcome independent of how messages were cut into batches.
    """
    if not events:
        return [], set(), set()
    ordered = events
    current: dict[AeKey, AdverseEvent] = await uow.adverse_events.current({e.record_key for e in ordered})
    applied: list[AdverseEvent] = []
    stale: set[str] = set()
    replacing: set[str] = set()
    changed: dict[AeKey, AdverseEvent] = {}
    for event in ordered:
        existing = current.get(event.record_key)
        if existing is not None and event.envelope.record_version <= existing.envelope.record_version:
            stale.add(event.envelope.msg_id)
            continue
        if existing is not None:
            replacing.add(event.envelope.msg_id)
        current[event.record_key] = event
        changed[event.record_key] = event
        applied.append(event)
    await uow.adverse_events.add_versions(ordered)
    await uow.adverse_events.put_current(list(changed.values()))
    return applied, replacing, stale


async def _apply_tumour_responses(uow: UnitOfWork, responses: list[TumourResponse]) -> set[str]:
    """Store every RS version; returns the msg ids of stale ones (a version not above the record's current one,
    kept in the history and ignored, as for AE follow-ups). Arrival order decides within a batch."""
    if not responses:
        return set()
    latest: dict[ResponseKey, int] = await uow.tumour_responses.latest_versions({r.record_key for r in responses})
    stale: set[str] = set()
    for response in responses:
        version = response.envelope.record_version
        if version <= latest.get(response.record_key, 0):
            stale.add(response.envelope.msg_id)
        else:
            latest[response.record_key] = version
    await uow.tumour_responses.add(responses)
    return stale


async def _update_alerts(
    uow: UnitOfWork,
    ruleset: Ruleset,
    hits: list[RuleHit],
    removals: list[AdverseEvent],
    now: datetime,
    removed: Sequence[BasisRemoved] = (),
) -> list[AlertChange]:
    # Every AE rule's alert of a follow-up's record (an earlier version may have matched a rule this one does not).
    removal_by_msg: dict[str, set[str]] = {}
    for event in removals:
        removal_by_msg.setdefault(event.envelope.msg_id, set()).update(
            ae_alert_key(rule.id, event) for rule in ruleset.ae_rules
        )
    hit_keys = {hit.alert_key for hit in hits}
    alerts: dict[str, Alert] = await uow.alerts.get(
        hit_keys | {key for keys in removal_by_msg.values() for key in keys} | {r.alert_key for r in removed}
    )
    changes: list[AlertChange] = []
    touched: dict[str, Alert] = {}
    # Hits and removals are replayed in the order the AE versions were applied, so v1 -> v2 -> v3 in one batch
    # produces the same alert history as three separate batches.
    hits_by_msg: dict[str, list[RuleHit]] = {}
    for hit in hits:
        hits_by_msg.setdefault(hit.msg_id, []).append(hit)
    ordered_msgs = list(dict.fromkeys([*[h.msg_id for h in hits], *[e.envelope.msg_id for e in removals]]))
    for msg_id in ordered_msgs:
        matched = {h.alert_key for h in hits_by_msg.get(msg_id, [])}
        for hit in hits_by_msg.get(msg_id, []):
            alert, change = on_hit(alerts.get(hit.alert_key), hit, now)
            alerts[hit.alert_key] = touched[hit.alert_key] = alert
            if change is not None:
                changes.append(change)
        for key in sorted(removal_by_msg.get(msg_id, ())):
            existing = alerts.get(key)
            if key in matched or existing is None:
                continue
            result = on_basis_removed(
                existing, msg_id, f"corrected by message {msg_id}: the AE record no longer meets the rule", now
            )
            if result is not None:
                alerts[key] = touched[key] = result[0]
                changes.append(result[1])
    # Patterns no longer found in the results as they stand (a late result broke them): an update, never a delete.
    for item in removed:
        existing = alerts.get(item.alert_key)
        if existing is None or item.alert_key in hit_keys:
            continue
        result = on_basis_removed(existing, item.msg_id, f"{item.reason} (message {item.msg_id})", now)
        if result is not None:
            alerts[item.alert_key] = touched[item.alert_key] = result[0]
            changes.append(result[1])
    await uow.alerts.put(list(touched.values()))
    await uow.alerts.add_changes(changes)
    return changes
