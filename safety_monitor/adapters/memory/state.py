"""Owns what the in-memory store holds between units of work, and the base of its repositories."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from safety_monitor.adapters.memory.workspace import WorkspaceState
from safety_monitor.domain.alerts import Alert, AlertChange
from safety_monitor.domain.baselines import TestKey
from safety_monitor.domain.conditions.deadline import ClockKey, SaeClock
from safety_monitor.domain.messages import AdverseEvent, SubjectEvent, TumourResponse
from safety_monitor.domain.review import ReviewAction
from safety_monitor.domain.rules import RuleHit
from safety_monitor.domain.subjects import Subject
from safety_monitor.service.ports import AeKey, LeaseState, SubjectKey
from safety_monitor.service.records import (
    AlertNotificationState,
    DeadLetter,
    InboxEntry,
    Notice,
    Notification,
    NotificationGroup,
    Publication,
    StoredFinding,
)

if TYPE_CHECKING:
    from safety_monitor.adapters.memory.unit_of_work import MemoryUnitOfWork


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


class MemoryRepository:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def s(self) -> MemoryState:
        return self._uow.working
