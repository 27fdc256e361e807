"""Owns the records the service layer reads and writes through its ports (inbox, dead letters, outbox)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from safety_monitor.domain.grading import GradeResult
from safety_monitor.domain.messages import Finding, SiteMessage
from safety_monitor.domain.routing import Timing


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A decoded, valid site message, as handed over by a runtime (embedded runner or Kafka worker)."""

    message: SiteMessage
    content_hash: str
    payload: str
    origin: str  # "trial.jsonl:12" or "safety.ae[3]@1042"


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """A message that could not be decoded or validated, with the reason a person can act on."""

    msg_id: str | None
    reason: str
    payload: str
    origin: str


@dataclass(frozen=True, slots=True)
class InboxEntry:
    msg_id: str
    msg_type: str
    content_hash: str
    received_at: datetime
    origin: str
    payload: str
    outcome: str  # "applied" or "stale"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message set aside with its reason and origin; identical repeats are counted, not stored twice."""

    payload_hash: str
    msg_id: str | None
    reason: str
    origin: str
    payload: str
    received_at: datetime

    def listing_order(self) -> tuple[datetime, tuple[tuple[int, str], ...]]:
        """When it came, then where: numbers in the origin compare as numbers (`trial.jsonl:594` before
        `trial.jsonl:1217`, `safety.ae[2]@90` before `safety.ae[10]@8`)."""
        parts = re.split(r"(\d+)", self.origin)
        return self.received_at, tuple((int(p), "") if p.isdigit() else (-1, p) for p in parts if p)


@dataclass(frozen=True, slots=True)
class BasisRemoved:
    """An alert whose basis the current data no longer support (a pattern no longer found)."""

    alert_key: str
    msg_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding with the grades derived for it and the baseline result they were derived against."""

    finding: Finding
    grades: tuple[GradeResult, ...]
    baseline_msg_id: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """An outbox row: one email to send after commit; `notice_id` gives the stable Message-ID."""

    notice_id: str
    alert_key: str
    kind: str
    recipients: tuple[str, ...]
    context: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    # What became of each recipient reached so far: "delivered", or the server's permanent refusal ("550 ...").
    # The recipients not in it are the ones the email still has to reach.
    recipient_outcomes: dict[str, str] = field(default_factory=dict)

    @property
    def undeliverable(self) -> dict[str, str]:
        """Recipients the server refused for good (a 5xx naming them), with its reply."""
        return {r: outcome for r, outcome in self.recipient_outcomes.items() if outcome != DELIVERED}

    @property
    def waiting_recipients(self) -> tuple[str, ...]:
        return tuple(r for r in self.recipients if r not in self.recipient_outcomes)


DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert change (or reminder) for one receiver, waiting in its group until the group is emailed.

    `state`: "pending" (waiting, or held by a silence / inhibition: `held_by` says why), "mailed" (in the
    outbox email `mail_id`), "dropped" (closed unsent: held until the alert's basis was removed).
    """

    notification_id: str
    receiver: str
    group_id: str
    alert_key: str
    kind: str  # raised, escalated, basis_removed, reinstated, repeat
    urgent: bool  # an escalation: its group is emailed at once, whatever the waits and intervals say
    context: dict[str, Any]
    created_at: datetime
    state: str = "pending"
    mail_id: str | None = None
    held_by: str | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingGroup:
    """What a group holds pending, summed up without reading the notifications: when the first of them was
    written, whether any is urgent, how many there are. A delivery pass decides from it which groups are due."""

    group_id: str
    earliest_pending: datetime
    urgent: bool
    count: int


@dataclass(frozen=True, slots=True)
class NotificationGroup:
    """A receiver's group of one route (by its group_by labels): its timing, addresses and last email."""

    group_id: str
    receiver: str
    route_id: str
    group_labels: tuple[tuple[str, str], ...]
    recipients: tuple[str, ...]
    timing: Timing
    last_flush_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertNotificationState:
    """The notification log: what one receiver was last told about one alert, and the alert's state now."""

    receiver: str
    alert_key: str
    group_id: str
    labels: dict[str, str]
    status: str  # the alert's status (open, basis_removed) as of its latest change
    grade: int
    last_notified_at: datetime | None = None
    last_mail_id: str | None = None


@dataclass(frozen=True, slots=True)
class Publication:
    """A record for an outbound topic (`stream`: "alerts" or "deadletter"), stored in the batch's transaction and
    marked `published_at` once the broker has it; `publication_id` is what consumers dedupe on."""

    publication_id: str
    stream: str
    key: str
    value: str
    created_at: datetime
    published_at: datetime | None = None


@dataclass(slots=True)
class BatchOutcome:
    """Counts for one batch, summed by the runtimes into run summaries."""

    received: int = 0
    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    conflicts: int = 0
    dead_lettered: int = 0
    hits: int = 0
    notices: int = 0
    handler_failures: int = 0
    regraded: int = 0  # stored findings graded again: a late baseline, first dose or same-draw companion
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    dead_letter_reasons: list[str] = field(default_factory=list)
    written_notices: list[Notice] = field(default_factory=list)  # for runtimes that also publish alerts
    dead_letters: list[DeadLetter] = field(default_factory=list)  # for runtimes that also publish dead letters

    def add(self, other: BatchOutcome) -> None:
        self.received += other.received
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.stale += other.stale
        self.conflicts += other.conflicts
        self.dead_lettered += other.dead_lettered
        self.hits += other.hits
        self.notices += other.notices
        self.handler_failures += other.handler_failures
        self.regraded += other.regraded
        for rule_id, count in other.alerts_by_rule.items():
            self.alerts_by_rule[rule_id] = self.alerts_by_rule.get(rule_id, 0) + count
        self.dead_letter_reasons.extend(other.dead_letter_reasons)
        self.written_notices.extend(other.written_notices)
        self.dead_letters.extend(other.dead_letters)

    def totals(self) -> BatchOutcome:
        """The counts and reasons without the notices and letters themselves: what a running total keeps, so that
        it stays small however long the run (a replay of 400,000 messages kept every notice it wrote)."""
        return replace(
            self,
            alerts_by_rule=dict(self.alerts_by_rule),
            dead_letter_reasons=list(self.dead_letter_reasons),
            written_notices=[],
            dead_letters=[],
        )
