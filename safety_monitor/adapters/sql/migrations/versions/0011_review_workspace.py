"""the review workspace: users, API tokens, sessions, the hash-chained audit_log (append-only), alert ids

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import hashlib
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
]

_POSTGRES_TRIGGERS = [
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP; END $$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        _ts("locked_until", nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_app_user")),
    )
    op.create_table(
        "api_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_token")),
    )
    op.create_index(op.f("ix_api_token_user_name"), "api_token", ["user_name"], unique=False)
    op.create_table(
        "web_session",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("last_seen_at"),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_web_session")),
    )
    op.create_index(op.f("ix_web_session_user_name"), "web_session", ["user_name"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _ts("at"),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=600), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_target", "audit_log", ["target", "seq"], unique=False)
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "event", "at"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("alert_id", sa.String(length=16), nullable=True))
        batch.create_unique_constraint(op.f("uq_alert_alert_id"), ["alert_id"])
    op.create_index("ix_alert_queue", "alert", ["status", "severity", "raised_at"], unique=False)
    op.create_index("ix_alert_subject", "alert", ["study_id", "subject_id"], unique=False)
    # Alerts raised before this revision get their id (the same function as domain/alerts.alert_id).
    alert = sa.table("alert", sa.column("alert_key", sa.String()), sa.column("alert_id", sa.String()))
    connection = op.get_bind()
    for (key,) in connection.execute(sa.select(alert.c.alert_key)).all():
        short = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        connection.execute(sa.update(alert).where(alert.c.alert_key == key).values(alert_id=short))


def downgrade() -> None:
    op.drop_index("ix_alert_subject", table_name="alert")
    op.drop_index("ix_alert_queue", table_name="alert")
    with op.batch_alter_table("alert") as batch:
        batch.drop_constraint(op.f("uq_alert_alert_id"), type_="unique")
        batch.drop_column("alert_id")
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_table("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index(op.f("ix_web_session_user_name"), table_name="web_session")
    op.drop_table("web_session")
    op.drop_index(op.f("ix_api_token_user_name"), table_name="api_token")
    op.drop_table("api_token")
    op.drop_table("app_user")
