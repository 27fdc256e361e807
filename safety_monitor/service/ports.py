"""Owns the ports the service layer needs: the unit of work and its repositories, the mailer, the renderer.

A unit of work is one database transaction. The runtimes call `commit()` and only then acknowledge the batch
(commit Kafka offsets, advance a file position): if commit raises, nothing of the batch is kept and the batch
is delivered again, which the inbox makes harmless.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from safety_monitor.domain.alerts import Alert, AlertChange
from safety_monitor.domain.baselines import TestKey
from safety_monitor.domain.conditions.deadline import ClockKey, SaeClock
from safety_monitor.domain.derived_grades import AeSpan
from safety_monitor.domain.incidence import AeFact, SourcedAeFact
from safety_monitor.domain.messages import AdverseEvent, Finding, SubjectEvent, TumourResponse
from safety_monitor.domain.review import ReviewAction
from safety_monitor.domain.rules import RuleHit
from safety_monitor.domain.subjects import Subject, SubjectEventFact
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
from safety_monitor.service.workspace_ports import (
    ApiTokenRepository,
    AuditLogRepository,
    SessionRepository,
    UserRepository,
)

SubjectKey = tuple[str, str]
AeKey = tuple[str, str, str]
ResponseKey = tuple[str, str, str, str]  # study_id, subject_id, RSTESTCD, RSDTC as sent
HitKey = tuple[str, str, str, str]  # rule_id, study_id, subject_id, occurrence
DrawKey = tuple[str, str, str, str]  # study_id, subject_id, test code, collection date-time as sent


class InboxRepository(Protocol):
    async def content_hashes(self, msg_ids: Iterable[str]) -> dict[str, str]: ...
    async def payloads(self, msg_ids: Iterable[str]) -> dict[str, str]: ...
    async def add(self, entries: Sequence[InboxEntry]) -> None: ...


class DeadLetterRepository(Protocol):
    async def add(self, letters: Sequence[DeadLetter]) -> None:
        """Store letters; a payload already dead-lettered only has its count raised."""
        ...

    async def list(self, limit: int = 100) -> list[tuple[DeadLetter, int]]: ...


class SubjectRepository(Protocol):
    async def get(self, keys: Iterable[SubjectKey]) -> dict[SubjectKey, Subject]: ...
    async def put(self, subjects: Sequence[Subject]) -> None: ...
    async def add_events(self, events: Sequence[SubjectEvent]) -> None: ...
    async def safety_population(self) -> dict[SubjectKey, Subject]: ...

    async def all(self) -> dict[SubjectKey, Subject]:
        """Every subject known, dosed or not (the report's population section)."""
        ...

    async def events(self) -> list[SubjectEventFact]:
        """Every SUBJECT event stored (dosing, randomisation, progression, survival follow-up, death)."""
        ...


class AdverseEventRepository(Protocol):
    async def current(self, keys: Iterable[AeKey]) -> dict[AeKey, AdverseEvent]: ...
    async def put_current(self, events: Sequence[AdverseEvent]) -> None: ...
    async def add_versions(self, events: Sequence[AdverseEvent]) -> None:
        """Keep every version ever received (history); the current table holds the highest version."""
        ...

    async def facts(self, pts: Collection[str] | None = None) -> list[AeFact]:
        """Incidence facts of every current AE, or only of AEs whose PT (case-folded) is in `pts`."""
        ...

    async def sourced_facts(self, pts: Collection[str], grade_at_least: int = 0) -> list[SourcedAeFact]:
        """The facts of the current AEs whose PT (case-folded) is in `pts` and whose grade (0 when missing) is at
        least `grade_at_least`, each with its key and source."""
        ...

    async def unknown_subject_count(self) -> int: ...

    async def first_serious_sent(self) -> dict[AeKey, datetime]:
        """Per AE record, when its first version marked serious (AESER = Y) was sent (new SAEs of a report)."""
        ...

    async def for_subjects(
        self, subjects: Iterable[SubjectKey], pts: Collection[str] | None = None
    ) -> list[AdverseEvent]:
        """Current AE records of these subjects (only those whose case-folded PT is in `pts`, when given)."""
        ...

    async def spans(self, subjects: Iterable[SubjectKey], pts: Collection[str]) -> list[AeSpan]:
        """The span and derived grade of each current AE of these subjects whose case-folded PT is in `pts`."""
        ...

    async def with_derived_grade(self) -> list[AdverseEvent]:
        """Current AE records that carry a value-derived grade (to show where it disagrees with AETOXGR)."""
        ...


class FindingRepository(Protocol):
    async def add(self, findings: Sequence[StoredFinding]) -> None: ...

    async def history(
        self, keys: Iterable[TestKey], *, collected_from: str | None = None, collected_before: str | None = None
    ) -> list[StoredFinding]:
        """Every stored result for these (study, subject, domain, test) keys; optionally only those collected in
        [collected_from, collected_before), compared as ISO 8601 text (a partial date sorts before its days)."""
        ...

    async def for_subjects(self, subjects: Iterable[SubjectKey]) -> list[StoredFinding]: ...

    async def same_draw(self, wanted: Iterable[DrawKey]) -> dict[DrawKey, StoredFinding]:
        """Results by (study, subject, test, collection time as sent), for tests graded with a companion."""
        ...

    async def update_grades(self, findings: Sequence[StoredFinding]) -> None:
        """Replace the grades (and baseline used) of stored results: a late baseline or companion re-grades."""
        ...

    async def baselines(self, keys: Iterable[TestKey]) -> dict[TestKey, Finding]: ...
    async def set_baselines(self, baselines: Sequence[Finding]) -> None: ...

    async def last_complete_dates(self, on_or_before: str) -> dict[SubjectKey, str]:
        """Per subject, the latest complete collection date (YYYY-MM-DD) of any LB, VS or EG result on or
        before `on_or_before` (YYYY-MM-DD): the findings' part of "last known alive"."""
        ...


class TumourResponseRepository(Protocol):
    """Tumour response assessments (SDTM RS): every version kept; the current one is the highest version."""

    async def latest_versions(self, keys: Iterable[ResponseKey]) -> dict[ResponseKey, int]: ...

    async def add(self, responses: Sequence[TumourResponse]) -> None:
        """Store versions; a msg_id already stored is left as it is (redelivery)."""
        ...

    async def current(self) -> list[TumourResponse]:
        """The current (highest-version) assessment of every record."""
        ...


class RuleHitRepository(Protocol):
    async def add(self, hits: Sequence[RuleHit]) -> None:
        """Insert hits, or update them in place: a hit is identified by rule, study, subject and occurrence."""
        ...

    async def alert_keys(self, keys: Iterable[HitKey]) -> dict[HitKey, str]:
        """The alert key of each stored hit among `keys` (rule, study, subject, occurrence); absent ones left out."""
        ...

    async def occurrences(self, alert_keys: Iterable[str]) -> dict[str, set[str]]:
        """Each alert's stored hit occurrences (the evidence it rests on); alerts without hits are left out."""
        ...

    async def stamps(self, alert_keys: Iterable[str]) -> dict[str, dict[str, tuple[str, str]]]:
        """Each alert's stored hit occurrences, each with the (ruleset hash, CTCAE version) it was found under;
        alerts without hits are left out."""
        ...

    async def retain(self, occurrences: Mapping[str, Collection[str]]) -> int:
        """For each pattern alert key, remove its hits whose occurrence is not listed (the occurrences the
        results as they stand no longer show: a late result broke a run or excluded a Hy's law case); the
        number removed. What was notified stays in the alert's history."""
        ...


class AlertRepository(Protocol):
    async def get(self, keys: Iterable[str]) -> dict[str, Alert]: ...

    async def by_id(self, alert_id: str) -> Alert | None:
        """The alert whose short id (`Alert.id`, the workspace's URLs) is `alert_id`."""
        ...

    async def put(self, alerts: Sequence[Alert]) -> None: ...
    async def add_changes(self, changes: Sequence[AlertChange]) -> None: ...
    async def changes_since(self, since: datetime | None) -> list[AlertChange]: ...
    async def count_by_rule(self) -> dict[str, int]: ...

    async def status_counts(self) -> dict[tuple[str, str], int]:
        """Alerts per (rule id, status)."""
        ...

    async def open(self) -> list[Alert]:
        """Every alert whose status is open, oldest raised first (the review queue reads these)."""
        ...


class OutboxRepository(Protocol):
    async def add(self, notices: Sequence[Notice]) -> None:
        """Insert notices; a notice id already present is left as it is (redelivery of a batch)."""
        ...

    async def due(self, now: datetime, limit: int) -> list[Notice]: ...
    async def mark_sent(self, notice_id: str, at: datetime, outcomes: Mapping[str, str] | None = None) -> None:
        """Done: every recipient reached or refused for good (`outcomes`, per recipient, when known)."""
        ...

    async def mark_failed(
        self, notice_id: str, error: str, next_attempt_at: datetime, outcomes: Mapping[str, str] | None = None
    ) -> None:
        """Not done: tried again at `next_attempt_at` for the recipients not in `outcomes` (never given up)."""
        ...

    async def counts(self) -> dict[str, int]: ...

    async def unsent_since(self, before: datetime, limit: int) -> list[Notice]:
        """Emails created before `before` and still not sent (the overdue ones), oldest first."""
        ...

    async def undeliverable(self, limit: int) -> list[Notice]:
        """Emails with a recipient the server refused for good, newest first."""
        ...


class NotificationRepository(Protocol):
    """Routed notifications waiting in their groups, the groups, and the notification log (per receiver and
    alert: what was last sent and when). The log drives dedupe and repeats, so a restart neither re-sends nor
    forgets. Every write is idempotent or conditional, so a retried or concurrent flush cannot send twice."""

    async def put_groups(self, groups: Sequence[NotificationGroup]) -> None:
        """Create groups, or refresh their route, addresses and timing (never their last email time)."""
        ...

    async def add(self, notifications: Sequence[Notification]) -> None:
        """Insert; a notification id already present is left as it is (a redelivered batch, a re-run job)."""
        ...

    async def track(self, states: Sequence[AlertNotificationState]) -> None:
        """Record each alert's latest status, grade, labels and group per receiver; keeps what was sent."""
        ...

    async def pending(self, group_ids: Iterable[str] | None = None) -> list[Notification]:
        """Pending notifications (of `group_ids` only, when given), oldest first."""
        ...

    async def pending_groups(self) -> list[PendingGroup]:
        """Every group with a pending notification, summed up (one aggregate query; no notification is read)."""
        ...

    async def groups(self, group_ids: Iterable[str]) -> dict[str, NotificationGroup]: ...
    async def log(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AlertNotificationState]: ...

    async def open_alerts(
        self, after: tuple[str, str] | None = None, limit: int | None = None
    ) -> list[AlertNotificationState]:
        """Log entries of alerts that are open (for repeats and as inhibition sources), by (receiver, alert key):
        the first `limit` after the entry `after` (a page), or all of them."""
        ...

    async def mark_mailed(self, notification_ids: Sequence[str], mail_id: str, at: datetime) -> int:
        """Move still-pending notifications into email `mail_id`; returns how many were still pending."""
        ...

    async def hold(self, held: Sequence[tuple[str, str]]) -> None:
        """Record why each (notification id, reason) still pending is held back; it stays pending."""
        ...

    async def drop(self, dropped: Sequence[tuple[str, str]], at: datetime) -> None:
        """Close each (notification id, reason) still pending unsent, keeping the reason."""
        ...

    async def record_email(self, group_id: str, keys: Sequence[tuple[str, str]], mail_id: str, at: datetime) -> None:
        """The group was emailed at `at`; each (receiver, alert key) in it was notified by `mail_id`."""
        ...

    async def list(self, limit: int = 1000) -> list[Notification]:
        """Every notification, newest last (for tests, health and audits)."""
        ...


class SaeClockRepository(Protocol):
    """Expedited-reporting clocks, one per (deadline rule, case); closed clocks are kept."""

    async def get(self, keys: Iterable[tuple[str, ClockKey]]) -> dict[tuple[str, ClockKey], SaeClock]: ...
    async def put(self, clocks: Sequence[SaeClock]) -> None: ...

    async def open(self) -> list[SaeClock]:
        """Every clock not yet closed (the deadline job walks these)."""
        ...

    async def for_case(self, key: ClockKey) -> list[SaeClock]: ...


class ReviewActionRepository(Protocol):
    """The review audit trail: append-only. Rows are added, never updated or deleted (the SQL table refuses both)."""

    async def add(self, actions: Sequence[ReviewAction]) -> None: ...

    async def for_alerts(self, keys: Iterable[str]) -> dict[str, list[ReviewAction]]:
        """Each alert's actions in the order they were recorded; alerts never reviewed are absent."""
        ...

    async def last_at(self, reviewer: str | None = None) -> datetime | None:
        """When `reviewer` (anyone, if None) last recorded an action: "new since last review" starts there."""
        ...

    async def every(self) -> list[ReviewAction]:
        """Every action in the order recorded (`audit verify` compares them with the audit log)."""
        ...


class PublicationRepository(Protocol):
    """The outbound-topic outbox: what a publishing runtime must still send (see service/publications.py)."""

    async def add(self, publications: Sequence[Publication]) -> None:
        """Store new publications; one already stored under the same id is left as it is."""
        ...

    async def pending(self, created_before: datetime, limit: int) -> list[Publication]:
        """Unpublished publications created before `created_before`, oldest first."""
        ...

    async def mark_published(self, publication_ids: Sequence[str], at: datetime) -> None: ...

    async def backlog(self) -> int:
        """How many publications are not marked published yet (health)."""
        ...


class DigestLog(Protocol):
    async def last_sent(self, kind: str) -> datetime | None: ...
    async def record_sent(self, kind: str, at: datetime, recipients: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The last run of a scheduled job: which slot, who holds (or held) it, until when, and when it finished."""

    job: str
    slot: int
    holder: str
    held_until: datetime
    done_at: datetime | None


class LeaseRepository(Protocol):
    """Who runs a scheduled job for one slot of its schedule, so N workers run it exactly once per slot."""

    async def claim(self, job: str, slot: int, holder: str, now: datetime, held_until: datetime) -> bool:
        """Take the run of `job` for `slot`; True if this holder got it (commit the unit of work first).

        Granted when the job has not run for `slot` yet and no earlier run is still held, or when its run for
        `slot` was never completed and the lease has expired (the holder died): then the job runs again, so
        scheduled jobs must be idempotent. A job never runs twice at once across workers.
        """
        ...

    async def complete(self, job: str, slot: int, holder: str, at: datetime) -> None: ...
    async def states(self) -> list[LeaseState]: ...

    async def release(self, job: str, holder: str, at: datetime) -> None:
        """End `holder`'s unfinished lease of `job` now (its process is known dead): the slot is claimable."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository. Leaving the block without `commit()` rolls everything back."""

    @property
    def inbox(self) -> InboxRepository: ...

    @property
    def dead_letters(self) -> DeadLetterRepository: ...

    @property
    def subjects(self) -> SubjectRepository: ...

    @property
    def adverse_events(self) -> AdverseEventRepository: ...

    @property
    def findings(self) -> FindingRepository: ...

    @property
    def hits(self) -> RuleHitRepository: ...

    @property
    def alerts(self) -> AlertRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def digests(self) -> DigestLog: ...

    @property
    def leases(self) -> LeaseRepository: ...

    @property
    def sae_clocks(self) -> SaeClockRepository: ...

    @property
    def notifications(self) -> NotificationRepository: ...

    @property
    def review_actions(self) -> ReviewActionRepository: ...

    @property
    def publications(self) -> PublicationRepository: ...

    @property
    def tumour_responses(self) -> TumourResponseRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def api_tokens(self) -> ApiTokenRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def audit_log(self) -> AuditLogRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image the HTML part shows by `cid:` reference (a chart of the DSMB report), attached as a related part."""

    content_id: str  # without angle brackets: the HTML says src="cid:<content_id>"
    mime_type: str  # "image/png"
    data: bytes
    filename: str


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    message_id: str  # "<notice-id@domain>", stable across retries so receivers can drop repeats
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str
    images: tuple[InlineImage, ...] = ()


Refusals = Mapping[str, tuple[int, str]]  # recipient -> the server's reply code and text


class Mailer(Protocol):
    async def send(self, mail: OutgoingMail) -> Refusals | None:
        """Deliver or raise; returns the recipients the server refused (none: every one accepted). A raise
        leaves the outbox row unsent and schedules a retry."""
        ...


@dataclass(frozen=True, slots=True)
class KaplanMeier:
    """A Kaplan-Meier estimate: steps (t_days, survival, at_risk, events, censored) at each distinct time, the
    median with its 95 % interval (None where not reached), events and censored counts."""

    steps: tuple[tuple[float, float, int, int, int], ...]
    median: float | None
    median_ci: tuple[float | None, float | None]
    events: int
    censored: int


class Statistics(Protocol):
    """Exact intervals and survival estimates, computed by a numerical library at the edge."""

    def poisson_interval(self, events: int, confidence: float = 0.95) -> tuple[float, float]:
        """Exact (chi-square form) interval for a Poisson count."""
        ...

    def clopper_pearson(self, successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]: ...

    def kaplan_meier(self, durations: Sequence[float], observed: Sequence[bool]) -> KaplanMeier: ...


class Renderer(Protocol):
    def alert_mail(self, context: Mapping[str, object]) -> tuple[str, str, str]:
        """(subject, text, html) for an alert notice; the HTML part is autoescaped."""
        ...

    def digest(self, context: Mapping[str, object]) -> tuple[str, str, str]: ...

    def render(self, name: str, context: Mapping[str, object]) -> tuple[str, str, str]:
        """(subject, text, html) from the template set `name` (`name_subject.txt.j2`, `.txt.j2`, `.html.j2`)."""
        ...

    def render_with_images(
        self, name: str, context: Mapping[str, object]
    ) -> tuple[str, str, str, tuple[InlineImage, ...]]:
        """As `render`, plus the images the HTML references by cid: (the charts of a context with a `report`)."""
        ...
