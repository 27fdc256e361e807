"""tumour response assessments (SDTM RS): every version, the current one being the highest record_version

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tumour_response",
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("rstestcd", sa.String(length=16), nullable=False),
        sa.Column("rsstresc", sa.String(length=16), nullable=False),
        sa.Column("rsdtc", sa.String(length=32), nullable=False),
        sa.Column("visit", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("msg_id", name=op.f("pk_tumour_response")),
    )
    op.create_index(
        "ix_tumour_response_record",
        "tumour_response",
        ["study_id", "subject_id", "rstestcd", "rsdtc", "record_version"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_tumour_response_record", table_name="tumour_response")
    op.drop_table("tumour_response")
