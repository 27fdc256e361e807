"""the review audit trail: append-only review_actions (UPDATE and DELETE refused by triggers)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = [
    "CREATE TRIGGER review_actions_no_update BEFORE UPDATE ON review_actions "
    "BEGIN SELECT RAISE(ABORT, 'review_actions is append-only: UPDATE refused'); END",
    "CREATE TRIGGER review_actions_no_delete BEFORE DELETE ON review_actions "
    "BEGIN SELECT RAISE(ABORT, 'review_actions is append-only: DELETE refused'); END",
]

_POSTGRES_TRIGGERS = [
    "CREATE FUNCTION review_actions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'review_actions is append-only: % refused', TG_OP; END $$",
    "CREATE TRIGGER review_actions_no_change BEFORE UPDATE OR DELETE ON review_actions "
    "FOR EACH ROW EXECUTE FUNCTION review_actions_append_only()",
    "CREATE TRIGGER review_actions_no_truncate BEFORE TRUNCATE ON review_actions "
    "FOR EACH STATEMENT EXECUTE FUNCTION review_actions_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "review_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_key", sa.String(length=600), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drug", sa.String(length=32), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.String(length=600), nullable=True),
        sa.Column("clock_effect", sa.String(length=16), nullable=True),
        sa.Column("clock_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_actions")),
    )
    op.create_index(op.f("ix_review_actions_alert_key"), "review_actions", ["alert_key"], unique=False)
    op.create_index("ix_review_actions_reviewer", "review_actions", ["reviewer", "at"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_review_actions_reviewer", table_name="review_actions")
    op.drop_index(op.f("ix_review_actions_alert_key"), table_name="review_actions")
    op.drop_table("review_actions")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION review_actions_append_only()")
