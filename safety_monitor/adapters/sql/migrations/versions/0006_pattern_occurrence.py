"""a rule hit is identified by its occurrence: the message, or for a pattern the measurement's collection time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_hit = sa.table(
    "rule_hit",
    sa.column("rule_id", sa.String),
    sa.column("study_id", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("occurrence", sa.String),
    sa.column("msg_id", sa.String),
    sa.column("subject_ref", sa.String),
    sa.column("observed_on", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("rule_hit") as batch:
        batch.add_column(sa.Column("occurrence", sa.String(length=128), nullable=True))
    # A hit on one message is about that message; a pattern hit was anchored on a member result of the measurement
    # identifying it, and its observed_on is that measurement's collection time as sent.
    op.execute(_hit.update().where(_hit.c.subject_ref != "PATTERN").values(occurrence=_hit.c.msg_id))
    op.execute(_hit.update().where(_hit.c.subject_ref == "PATTERN").values(occurrence=_hit.c.observed_on))
    # One occurrence anchored on two members (the SBP and DBP of one reading in two batches) left two rows: keep one.
    other = _hit.alias("other")
    twin = (
        sa.select(other.c.msg_id)
        .where(
            other.c.rule_id == _hit.c.rule_id,
            other.c.study_id == _hit.c.study_id,
            other.c.subject_id == _hit.c.subject_id,
            other.c.occurrence == _hit.c.occurrence,
            other.c.msg_id < _hit.c.msg_id,
        )
        .exists()
    )
    op.execute(_hit.delete().where(_hit.c.subject_ref == "PATTERN", twin))
    with op.batch_alter_table("rule_hit") as batch:
        batch.alter_column("occurrence", existing_type=sa.String(length=128), nullable=False)
        batch.drop_constraint("pk_rule_hit", type_="primary")
        batch.create_primary_key("pk_rule_hit", ["rule_id", "study_id", "subject_id", "occurrence"])


def downgrade() -> None:
    with op.batch_alter_table("rule_hit") as batch:
        batch.drop_constraint("pk_rule_hit", type_="primary")
        batch.create_primary_key("pk_rule_hit", ["rule_id", "msg_id"])
        batch.drop_column("occurrence")
