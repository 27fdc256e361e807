"""Owns the SQL schema of the review workspace: user accounts, API tokens, browser sessions, the audit log."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from safety_monitor.adapters.sql.tables import _ts, metadata

app_user = Table(
    "app_user",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string ($argon2id$v=19$m=...,t=...,p=...$...)
    _ts("created_at"),
    Column("disabled", Boolean, nullable=False),
    Column("failed_logins", Integer, nullable=False),  # in a row since the last success
    _ts("locked_until", nullable=True),
    Column("site_id", String(64), nullable=True),  # the trial site of a `site` account; NULL for every other role
)

# Personal API tokens: only the SHA-256 of the token is kept (a token is 256 random bits, so a fast hash is
# enough to make a stolen table useless; a password needs argon2id because people choose guessable ones).
api_token = Table(
    "api_token",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_name", String(64), nullable=False, index=True),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
)

# Server-side sessions: the cookie carries a random id; the table keeps its SHA-256, so a copy of the table cannot
# be replayed as cookies.
web_session = Table(
    "web_session",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_name", String(64), nullable=False, index=True),
    _ts("created_at"),
    _ts("last_seen_at"),
    Column("csrf_token", String(64), nullable=False),
)

# The tamper-evident audit trail (domain/audit.py): `seq` is the position in the chain (the primary key, so two
# writers cannot both append entry n), each row holds the previous row's hash and its own. Append-only: triggers
# refuse UPDATE and DELETE (the hash chain shows it when someone goes around them).
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    _ts("at"),
    Column("actor", String(200), nullable=False),
    Column("event", String(32), nullable=False),
    Column("target", String(600), nullable=False),
    Column("detail", Text, nullable=False),  # canonical JSON, exactly as hashed
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_target", "target", "seq"),
    Index("ix_audit_log_actor", "actor", "event", "at"),
)
