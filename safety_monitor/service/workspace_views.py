"""Owns the shapes of the review workspace's read views (one per page) and the port that queries them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from safety_monitor.domain.alerts import Alert
from safety_monitor.domain.conditions.deadline import SaeClock


@dataclass(frozen=True, slots=True)
class QueueFilters:
    rule_id: str | None = None
    site_id: str | None = None
    subject_id: str | None = None
    review_status: str | None = None  # new / acknowledged / adjudicated
    severity: str | None = None
    drug: str | None = None  # AE alerts whose AE is suspected related to this drug (anlotinib, ici)
    new_since_my_last_review: bool = False
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class QueueRow:
    alert: Alert
    site_id: str | None
    review_status: str
    changed_at: datetime  # the alert's latest change (raised, escalated, reminder, ...)


@dataclass(frozen=True, slots=True)
class QueueRows:
    rows: list[QueueRow]
    total: int  # matching the filters, before paging


@dataclass(frozen=True, slots=True)
class AeVersionView:
    msg_id: str
    record_version: int
    sent_at: datetime
    verbatim_term: str
    preferred_term: str
    system_organ_class: str
    investigator_grade: int | None
    serious: str | None
    onset: str | None
    end: str | None
    outcome: str | None
    causality: dict[str, str | None]
    derived_grade: int | None = None  # only on the current version
    derived_term: str | None = None


@dataclass(frozen=True, slots=True)
class FindingView:
    msg_id: str
    test_code: str
    collected_at: str
    value: float | None
    unit: str | None
    lln: float | None
    uln: float | None
    grades: list[str]  # "Alanine aminotransferase increased G3", "not graded: unit mg/dL ..."


@dataclass(frozen=True, slots=True)
class NotificationView:
    receiver: str
    route: str
    group_labels: str
    kind: str
    state: str  # pending / mailed / dropped
    held_by: str | None  # the silence or inhibition that holds (or held) it
    created_at: datetime
    decided_at: datetime | None
    sent_at: datetime | None  # when the email carrying it went out


@dataclass(frozen=True, slots=True)
class AlertEvidence:
    ae_versions: list[AeVersionView] = field(default_factory=list)
    findings: list[FindingView] = field(default_factory=list)
    notifications: list[NotificationView] = field(default_factory=list)
    changes: list[tuple[datetime, str, int | None, int]] = field(default_factory=list)  # at, kind, old, new grade


@dataclass(frozen=True, slots=True)
class DoseEvent:
    drug: str | None
    event: str
    on: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class SubjectData:
    study_id: str
    subject_id: str
    site_id: str
    arm: str | None
    first_dose_on: str | None
    died_on: str | None
    dose_events: list[DoseEvent]
    adverse_events: list[AeVersionView]
    findings: list[FindingView]
    alerts: list[Alert]


@dataclass(frozen=True, slots=True)
class LiverPeak:
    study_id: str
    subject_id: str
    peak_alt_x_uln: float
    peak_bili_x_uln: float


class WorkspaceReads(Protocol):
    """Queries shaped for the workspace's pages, read in one snapshot each."""

    async def queue(self, filters: QueueFilters, since: datetime | None) -> QueueRows:
        """Open alerts matching `filters` (changed after `since` when given), by severity then age, one page."""
        ...

    async def last_review_at(self, reviewer: str) -> datetime | None: ...
    async def clocks(self) -> list[tuple[SaeClock, str | None]]:
        """Every reporting clock (open and closed) with the verbatim term of its AE."""
        ...

    async def evidence(self, alert: Alert) -> AlertEvidence: ...
    async def subject(self, subject_id: str) -> SubjectData | None: ...
    async def liver_peaks(self) -> list[LiverPeak]: ...
    async def database_reachable(self) -> bool: ...
    async def subject_ids(self, subject_ids: Sequence[str]) -> set[str]: ...
