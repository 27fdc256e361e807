"""derived AE grade beside AETOXGR, and the expedited-reporting clock of each potential SUSAR

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("adverse_event") as batch:
        batch.add_column(sa.Column("derived_grade", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("derived_term", sa.String(length=200), nullable=True))
    op.create_table(
        "sae_clock",
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("aespid", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_msg_id", sa.String(length=128), nullable=False),
        sa.Column("short_known_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("overdue_sent", sa.Boolean(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("rule_id", "study_id", "subject_id", "aespid", name=op.f("pk_sae_clock")),
    )
    op.create_index("ix_sae_clock_open", "sae_clock", ["closed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sae_clock_open", table_name="sae_clock")
    op.drop_table("sae_clock")
    with op.batch_alter_table("adverse_event") as batch:
        batch.drop_column("derived_term")
        batch.drop_column("derived_grade")
