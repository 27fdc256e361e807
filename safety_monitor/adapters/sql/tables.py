"""Owns the SQL schema of the system of record (SQLAlchemy Core tables; Alembic migrations follow it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both databases (SQLite hands back naive values: re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: the store keeps UTC instants")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, UtcDateTime(), nullable=nullable)


inbox = Table(
    "inbox",
    metadata,
    Column("msg_id", String(128), primary_key=True),
    Column("msg_type", String(16), nullable=False),
    Column("content_hash", String(64), nullable=False),
    _ts("received_at"),
    Column("origin", String(300), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("payload", Text, nullable=False),
)

dead_letter = Table(
    "dead_letter",
    metadata,
    Column("payload_hash", String(64), primary_key=True),
    Column("msg_id", String(128), nullable=True, index=True),
    Column("reason", Text, nullable=False),
    Column("origin", String(300), nullable=False),
    Column("payload", Text, nullable=False),
    _ts("first_received_at"),
    Column("times_received", Integer, nullable=False),
)

subject = Table(
    "subject",
    metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("arm", String(400)),
    Column("enrolled_on", String(32)),
    Column("first_dose_on", String(32)),
    Column("discontinued_on", String(32)),
    Column("died_on", String(32)),
)

subject_event = Table(
    "subject_event",
    metadata,
    Column("msg_id", String(128), primary_key=True),
    Column("study_id", String(64), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("event_dtc", String(32), nullable=False),
    Column("drug", String(32)),
    Column("reason", Text),
    Index("ix_subject_event_subject", "study_id", "subject_id"),
)

_AE_COLUMNS = (
    ("site_id", String(64)),
    ("record_version", Integer),
    ("sent_at", UtcDateTime()),
    ("aeterm", Text),
    ("aedecod", String(400)),
    ("aebodsys", String(400)),
    ("aetoxgr", Integer),
    ("aeser", String(2)),
    ("aesdth", String(2)),
    ("aeslife", String(2)),
    ("aeshosp", String(2)),
    ("aestdtc", String(32)),
    ("aeendtc", String(32)),
    ("aeout", String(64)),
    ("aerel_anlotinib", String(64)),
    ("aerel_ici", String(64)),
    ("aeacn_anlotinib", String(64)),
    ("aeacn_ici", String(64)),
    ("aeirae", String(2)),
)

adverse_event = Table(
    "adverse_event",
    metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("aespid", String(64), primary_key=True),
    Column("msg_id", String(128), nullable=False),
    *(Column(name, type_) for name, type_ in _AE_COLUMNS),
    # Derived, not sent: the worst value-derived CTCAE grade of the PT's term in the AE's span (issue 3), kept
    # beside the investigator's AETOXGR so a disagreement is visible (`safety-monitor grades disagreements`).
    Column("derived_grade", Integer),
    Column("derived_term", String(200)),
)
# The cohort rules read the current AEs of their terms (PTs compared case-folded) whenever a batch touches the
# cohort: through this index, not a scan of every AE of the trial.
Index("ix_adverse_event_pt_folded", func.lower(adverse_event.c.aedecod))

adverse_event_version = Table(
    "adverse_event_version",
    metadata,
    Column("msg_id", String(128), primary_key=True),
    Column("study_id", String(64), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("aespid", String(64), nullable=False),
    *(Column(name, type_) for name, type_ in _AE_COLUMNS),
    Index("ix_adverse_event_version_record", "study_id", "subject_id", "aespid", "record_version"),
)

finding = Table(
    "finding",
    metadata,
    Column("msg_id", String(128), primary_key=True),
    Column("domain", String(4), nullable=False),
    Column("study_id", String(64), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("site_id", String(64), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=False),
    Column("record_version", Integer, nullable=False),
    Column("test_code", String(64), nullable=False),
    Column("value", Float),
    Column("unit", String(64)),
    Column("lln", Float),
    Column("uln", Float),
    Column("normal_range_indicator", String(16)),
    Column("baseline_flag", String(1)),
    Column("collected_at", String(32), nullable=False),
    Column("visit", String(64)),
    Column("specimen", String(64)),
    Column("result_text", String(64)),  # LBSTRESC: a character result (urine dipstick "2+")
    Column("grades", JSON, nullable=False),  # [{"term","grade","provisional","note"[,"caution"]} | {"term","reason"}]
    Column("ctcae_version", String(16), nullable=False),
    Column("baseline_msg_id", String(128)),  # the baseline result the grades were derived against
    Index("ix_finding_subject_test", "study_id", "subject_id", "domain", "test_code", "collected_at"),
)

finding_baseline = Table(
    "finding_baseline",
    metadata,
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("domain", String(4), primary_key=True),
    Column("test_code", String(64), primary_key=True),
    Column("msg_id", String(128), nullable=False),  # the finding chosen as baseline
)

# A hit is identified by rule, subject and occurrence: the message for a hit on one message, the collection
# date/time of the measurement for a pattern occurrence (domain/conditions/pattern.py), so the SBP and DBP of one
# reading arriving in two batches update one row. `msg_id` names a message the hit rests on.
rule_hit = Table(
    "rule_hit",
    metadata,
    Column("rule_id", String(128), primary_key=True),
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("occurrence", String(128), primary_key=True),
    Column("msg_id", String(128), nullable=False),
    Column("alert_key", String(600), nullable=False, index=True),
    Column("subject_ref", String(400), nullable=False),
    Column("term", String(400), nullable=False),
    Column("grade", Integer, nullable=False),
    Column("observed_on", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("ruleset_hash", String(64), nullable=False),
    Column("ctcae_version", String(16), nullable=False),
)

alert = Table(
    "alert",
    metadata,
    Column("alert_key", String(600), primary_key=True),
    # The short id the workspace's URLs and API use (domain/alerts.alert_id: a hash of the key, so it is stable
    # and carries no '|' or '/'); nullable only because rows written before migration 0011 are filled by the migration.
    Column("alert_id", String(16), unique=True),
    Column("rule_id", String(128), nullable=False, index=True),
    Column("rule_title", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("action", Text, nullable=False),
    Column("study_id", String(64), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("subject_ref", String(400), nullable=False),
    Column("term", String(400), nullable=False),
    Column("observed_on", String(32), nullable=False),
    Column("grade", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    _ts("raised_at"),
    _ts("updated_at"),
    Column("last_msg_id", String(128), nullable=False),
    Column("detail", Text, nullable=False),
    Column("ruleset_hash", String(64), nullable=False),
    Column("ctcae_version", String(16), nullable=False),
    # The review queue: open alerts counted and paged per severity, in raised order; a subject's alerts.
    Index("ix_alert_queue", "status", "severity", "raised_at"),
    Index("ix_alert_subject", "study_id", "subject_id"),
)

alert_change = Table(
    "alert_change",
    metadata,
    Column("notice_id", String(32), primary_key=True),
    Column("alert_key", String(600), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("previous_grade", Integer),
    Column("grade", Integer, nullable=False),
    Column("msg_id", String(128), nullable=False),
    Column("at", UtcDateTime(), nullable=False, index=True),
    Column("snapshot", JSON, nullable=False),  # the alert as it was after this change
)

outbox = Table(
    "outbox",
    metadata,
    Column("notice_id", String(32), primary_key=True),
    Column("alert_key", String(600), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("context", JSON, nullable=False),
    _ts("created_at"),
    Column("attempts", Integer, nullable=False),
    _ts("next_attempt_at", nullable=True),
    _ts("sent_at", nullable=True),
    Column("last_error", Text),
    # per recipient: "delivered" or the server's permanent refusal; those not in it are still to be reached
    Column("recipient_outcomes", JSON, nullable=True),
    Index("ix_outbox_pending", "sent_at", "next_attempt_at"),
)

digest_run = Table(
    "digest_run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    _ts("sent_at"),
    Column("recipients", JSON, nullable=False),
    Index("ix_digest_run_kind", "kind", "sent_at"),
)

job_lease = Table(
    "job_lease",
    metadata,
    Column("job", String(128), primary_key=True),
    Column("slot", BigInteger, nullable=False),  # which run of the schedule (e.g. epoch seconds // interval)
    Column("holder", String(200), nullable=False),
    _ts("held_until"),
    _ts("done_at", nullable=True),
)

# Routing (docs/architecture.md, "Rules and routing"): notifications wait in their receiver's group until the group
# is emailed (an
# outbox row); the log keeps, per receiver and alert, what was last sent, so repeats and dedupe survive restarts.
notification = Table(
    "notification",
    metadata,
    Column("notification_id", String(32), primary_key=True),
    Column("receiver", String(200), nullable=False),
    Column("group_id", String(32), nullable=False, index=True),
    Column("alert_key", String(600), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("context", JSON, nullable=False),
    _ts("created_at"),
    Column("state", String(16), nullable=False, index=True),  # pending, mailed, dropped
    Column("mail_id", String(32)),  # the outbox email that carried it
    Column("held_by", Text),  # the silence or inhibition holding it back (kept as history)
    _ts("decided_at", nullable=True),
)

notification_group = Table(
    "notification_group",
    metadata,
    Column("group_id", String(32), primary_key=True),
    Column("receiver", String(200), nullable=False),
    Column("route_id", String(300), nullable=False),
    Column("group_labels", JSON, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("group_wait_s", Integer, nullable=False),
    Column("group_interval_s", Integer, nullable=False),
    Column("repeat_interval_s", Integer),  # null: never repeated
    _ts("last_flush_at", nullable=True),
)

notification_log = Table(
    "notification_log",
    metadata,
    Column("receiver", String(200), primary_key=True),
    Column("alert_key", String(600), primary_key=True),
    Column("group_id", String(32), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("grade", Integer, nullable=False),
    _ts("last_notified_at", nullable=True),
    Column("last_mail_id", String(32)),
    # A delivery pass reads the log of the alerts it has notifications for, whatever their receivers.
    Index("ix_notification_log_alert_key", "alert_key"),
)

# The expedited-reporting clock of each potential SUSAR (one per deadline rule and case); closed clocks stay.
sae_clock = Table(
    "sae_clock",
    metadata,
    Column("rule_id", String(128), primary_key=True),
    Column("study_id", String(64), primary_key=True),
    Column("subject_id", String(64), primary_key=True),
    Column("aespid", String(64), primary_key=True),
    _ts("started_at"),  # day 0: receipt of the first serious, suspected-related report
    Column("start_msg_id", String(128), nullable=False),
    _ts("short_known_at", nullable=True),  # receipt of the first fatal / life-threatening version
    Column("reminders_sent", Integer, nullable=False),
    Column("overdue_sent", Boolean, nullable=False),
    _ts("closed_at", nullable=True),
    Column("closed_reason", Text),
    Index("ix_sae_clock_open", "closed_at"),
)

# The review audit trail (docs/architecture.md): append-only. The migration adds triggers that refuse UPDATE and
# DELETE on both databases, so "who, when, old -> new, why" can only ever grow.
review_actions = Table(
    "review_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the order actions were recorded in
    Column("alert_key", String(600), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    _ts("at"),
    Column("drug", String(32)),  # causality: which study drug
    Column("old_value", Text),
    Column("new_value", Text),
    Column("duplicate_of", String(600)),  # adjudicated a duplicate of this alert
    Column("clock_effect", String(16)),  # closed / reopened the case's expedited-reporting clock
    Column("clock_reason", Text),
    Index("ix_review_actions_reviewer", "reviewer", "at"),
)

# What a runtime must publish to its outbound topics (safety.alerts, safety.deadletter), written in the batch's
# own transaction so that a crash between the commit and the send cannot lose a publication: anything still
# unpublished is sent again by the next worker (at least once; `publication_id` lets consumers drop repeats).
publication = Table(
    "publication",
    metadata,
    Column("publication_id", String(200), primary_key=True),
    Column("stream", String(16), nullable=False),  # "alerts" or "deadletter"
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),  # the JSON record, as sent
    _ts("created_at"),
    _ts("published_at", nullable=True),
    Index("ix_publication_pending", "published_at", "created_at"),
)

# Tumour response assessments (SDTM RS, RECIST 1.1 overall response): every version received, one row per
# message; the current assessment of a record (subject, test, RSDTC) is its highest record_version.
tumour_response = Table(
    "tumour_response",
    metadata,
    Column("msg_id", String(128), primary_key=True),
    Column("study_id", String(64), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("site_id", String(64), nullable=False),
    _ts("sent_at"),
    Column("record_version", Integer, nullable=False),
    Column("rstestcd", String(16), nullable=False),
    Column("rsstresc", String(16), nullable=False),
    Column("rsdtc", String(32), nullable=False),
    Column("visit", String(64)),
    Index("ix_tumour_response_record", "study_id", "subject_id", "rstestcd", "rsdtc", "record_version"),
)


# The review workspace's tables (users, tokens, sessions, audit log) are declared in their own module on the same
# metadata; importing it here keeps `metadata` complete for whoever imports this module.
