"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "adverse_event",
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("aespid", sa.String(length=64), nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("record_version", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aeterm", sa.Text(), nullable=True),
        sa.Column("aedecod", sa.String(length=400), nullable=True),
        sa.Column("aebodsys", sa.String(length=400), nullable=True),
        sa.Column("aetoxgr", sa.Integer(), nullable=True),
        sa.Column("aeser", sa.String(length=2), nullable=True),
        sa.Column("aesdth", sa.String(length=2), nullable=True),
        sa.Column("aeslife", sa.String(length=2), nullable=True),
        sa.Column("aeshosp", sa.String(length=2), nullable=True),
        sa.Column("aestdtc", sa.String(length=32), nullable=True),
        sa.Column("aeendtc", sa.String(length=32), nullable=True),
        sa.Column("aeout", sa.String(length=64), nullable=True),
        sa.Column("aerel_anlotinib", sa.String(length=64), nullable=True),
        sa.Column("aerel_ici", sa.String(length=64), nullable=True),
        sa.Column("aeacn_anlotinib", sa.String(length=64), nullable=True),
        sa.Column("aeacn_ici", sa.String(length=64), nullable=True),
        sa.Column("aeirae", sa.String(length=2), nullable=True),
        sa.PrimaryKeyConstraint("study_id", "subject_id", "aespid", name=op.f("pk_adverse_event")),
    )
    op.create_table(
        "adverse_event_version",
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("aespid", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("record_version", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aeterm", sa.Text(), nullable=True),
        sa.Column("aedecod", sa.String(length=400), nullable=True),
        sa.Column("aebodsys", sa.String(length=400), nullable=True),
        sa.Column("aetoxgr", sa.Integer(), nullable=True),
        sa.Column("aeser", sa.String(length=2), nullable=True),
        sa.Column("aesdth", sa.String(length=2), nullable=True),
        sa.Column("aeslife", sa.String(length=2), nullable=True),
        sa.Column("aeshosp", sa.String(length=2), nullable=True),
        sa.Column("aestdtc", sa.String(length=32), nullable=True),
        sa.Column("aeendtc", sa.String(length=32), nullable=True),
        sa.Column("aeout", sa.String(length=64), nullable=True),
        sa.Column("aerel_anlotinib", sa.String(length=64), nullable=True),
        sa.Column("aerel_ici", sa.String(length=64), nullable=True),
        sa.Column("aeacn_anlotinib", sa.String(length=64), nullable=True),
        sa.Column("aeacn_ici", sa.String(length=64), nullable=True),
        sa.Column("aeirae", sa.String(length=2), nullable=True),
        sa.PrimaryKeyConstraint("msg_id", name=op.f("pk_adverse_event_version")),
    )
    with op.batch_alter_table("adverse_event_version", schema=None) as batch_op:
        batch_op.create_index(
            "ix_adverse_event_version_record",
            ["study_id", "subject_id", "aespid", "record_version"],
            unique=False,
        )

    op.create_table(
        "alert",
        sa.Column("alert_key", sa.String(length=600), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("rule_title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("subject_ref", sa.String(length=400), nullable=False),
        sa.Column("term", sa.String(length=400), nullable=False),
        sa.Column("observed_on", sa.String(length=32), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_msg_id", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("ruleset_hash", sa.String(length=64), nullable=False),
        sa.Column("ctcae_version", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("alert_key", name=op.f("pk_alert")),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_rule_id"), ["rule_id"], unique=False)

    op.create_table(
        "alert_change",
        sa.Column("notice_id", sa.String(length=32), nullable=False),
        sa.Column("alert_key", sa.String(length=600), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("previous_grade", sa.Integer(), nullable=True),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_alert_change")),
    )
    with op.batch_alter_table("alert_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_change_alert_key"), ["alert_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_change_at"), ["at"], unique=False)

    op.create_table(
        "dead_letter",
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_received", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("payload_hash", name=op.f("pk_dead_letter")),
    )
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dead_letter_msg_id"), ["msg_id"], unique=False)

    op.create_table(
        "digest_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_run")),
    )
    with op.batch_alter_table("digest_run", schema=None) as batch_op:
        batch_op.create_index("ix_digest_run_kind", ["kind", "sent_at"], unique=False)

    op.create_table(
        "finding_baseline",
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=4), nullable=False),
        sa.Column("test_code", sa.String(length=64), nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("study_id", "subject_id", "domain", "test_code", name=op.f("pk_finding_baseline")),
    )
    op.create_table(
        "finding",
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("domain", sa.String(length=4), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("test_code", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("lln", sa.Float(), nullable=True),
        sa.Column("uln", sa.Float(), nullable=True),
        sa.Column("normal_range_indicator", sa.String(length=16), nullable=True),
        sa.Column("baseline_flag", sa.String(length=1), nullable=True),
        sa.Column("collected_at", sa.String(length=32), nullable=False),
        sa.Column("visit", sa.String(length=64), nullable=True),
        sa.Column("specimen", sa.String(length=64), nullable=True),
        sa.Column("grades", sa.JSON(), nullable=False),
        sa.Column("ctcae_version", sa.String(length=16), nullable=False),
        sa.Column("baseline_msg_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("msg_id", name=op.f("pk_finding")),
    )
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index(
            "ix_finding_subject_test",
            ["study_id", "subject_id", "domain", "test_code", "collected_at"],
            unique=False,
        )

    op.create_table(
        "inbox",
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("msg_id", name=op.f("pk_inbox")),
    )
    op.create_table(
        "outbox",
        sa.Column("notice_id", sa.String(length=32), nullable=False),
        sa.Column("alert_key", sa.String(length=600), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_pending", ["sent_at", "next_attempt_at"], unique=False)

    op.create_table(
        "rule_hit",
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("alert_key", sa.String(length=600), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("subject_ref", sa.String(length=400), nullable=False),
        sa.Column("term", sa.String(length=400), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("observed_on", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("ruleset_hash", sa.String(length=64), nullable=False),
        sa.Column("ctcae_version", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "msg_id", name=op.f("pk_rule_hit")),
    )
    with op.batch_alter_table("rule_hit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rule_hit_alert_key"), ["alert_key"], unique=False)

    op.create_table(
        "subject",
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("arm", sa.String(length=400), nullable=True),
        sa.Column("enrolled_on", sa.String(length=32), nullable=True),
        sa.Column("first_dose_on", sa.String(length=32), nullable=True),
        sa.Column("discontinued_on", sa.String(length=32), nullable=True),
        sa.Column("died_on", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("study_id", "subject_id", name=op.f("pk_subject")),
    )
    op.create_table(
        "subject_event",
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("event_dtc", sa.String(length=32), nullable=False),
        sa.Column("drug", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("msg_id", name=op.f("pk_subject_event")),
    )
    with op.batch_alter_table("subject_event", schema=None) as batch_op:
        batch_op.create_index("ix_subject_event_subject", ["study_id", "subject_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("subject_event", schema=None) as batch_op:
        batch_op.drop_index("ix_subject_event_subject")

    op.drop_table("subject_event")
    op.drop_table("subject")
    with op.batch_alter_table("rule_hit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rule_hit_alert_key"))

    op.drop_table("rule_hit")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending")

    op.drop_table("outbox")
    op.drop_table("inbox")
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index("ix_finding_subject_test")

    op.drop_table("finding")
    op.drop_table("finding_baseline")
    with op.batch_alter_table("digest_run", schema=None) as batch_op:
        batch_op.drop_index("ix_digest_run_kind")

    op.drop_table("digest_run")
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letter_msg_id"))

    op.drop_table("dead_letter")
    with op.batch_alter_table("alert_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_change_at"))
        batch_op.drop_index(batch_op.f("ix_alert_change_alert_key"))

    op.drop_table("alert_change")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_rule_id"))

    op.drop_table("alert")
    with op.batch_alter_table("adverse_event_version", schema=None) as batch_op:
        batch_op.drop_index("ix_adverse_event_version_record")

    op.drop_table("adverse_event_version")
    op.drop_table("adverse_event")
