"""the outbound-topic outbox: publications written in the batch's transaction, marked when sent

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "publication",
        sa.Column("publication_id", sa.String(length=200), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("publication_id", name=op.f("pk_publication")),
    )
    op.create_index("ix_publication_pending", "publication", ["published_at", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_publication_pending", table_name="publication")
    op.drop_table("publication")
