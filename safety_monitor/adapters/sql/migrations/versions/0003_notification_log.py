"""notification routing: notifications waiting in groups, the groups, and the per-receiver notification log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("notification_id", sa.String(length=32), nullable=False),
        sa.Column("receiver", sa.String(length=200), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("alert_key", sa.String(length=600), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("mail_id", sa.String(length=32), nullable=True),
        sa.Column("held_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("notification_id", name=op.f("pk_notification")),
    )
    op.create_index(op.f("ix_notification_group_id"), "notification", ["group_id"], unique=False)
    op.create_index(op.f("ix_notification_state"), "notification", ["state"], unique=False)
    op.create_table(
        "notification_group",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("receiver", sa.String(length=200), nullable=False),
        sa.Column("route_id", sa.String(length=300), nullable=False),
        sa.Column("group_labels", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("group_wait_s", sa.Integer(), nullable=False),
        sa.Column("group_interval_s", sa.Integer(), nullable=False),
        sa.Column("repeat_interval_s", sa.Integer(), nullable=True),
        sa.Column("last_flush_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_notification_group")),
    )
    op.create_table(
        "notification_log",
        sa.Column("receiver", sa.String(length=200), nullable=False),
        sa.Column("alert_key", sa.String(length=600), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_mail_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("receiver", "alert_key", name=op.f("pk_notification_log")),
    )
    op.create_index(op.f("ix_notification_log_status"), "notification_log", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_notification_log_status"), table_name="notification_log")
    op.drop_table("notification_log")
    op.drop_table("notification_group")
    op.drop_index(op.f("ix_notification_state"), table_name="notification")
    op.drop_index(op.f("ix_notification_group_id"), table_name="notification")
    op.drop_table("notification")
