"""Owns configuration from environment variables: defaults for the embedded runtime, all errors at once."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+$")
# Where a long-running process (Kafka `worker` or embedded `serve`) writes its pid: what `rules reload` signals.
PID_FILE = Path("var/safety-monitor-worker.pid")


def _resource(name: str) -> Path:
    """templates/ and rules/ from a source checkout (editable install) or the copies bundled in the wheel."""
    checkout = _PACKAGE.parent / name
    return checkout if checkout.is_dir() else _PACKAGE / "bundled" / name


class EnvReader:
    """Reads environment variables into `values`, collecting every problem in `problems` (none is fatal alone)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.values: dict[str, Any] = {}

    def get(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def text(self, name: str, key: str) -> None:
        if self.get(name):
            self.values[key] = self.get(name)

    def number(self, name: str, key: str, kind: type[int] | type[float], low: float, high: float | None = None) -> None:
        raw = self.get(name)
        if not raw:
            return
        try:
            value = kind(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a number")
            return
        if value < low:
            self.problems.append(f"{name}={raw!r} must be at least {low:g}")
            return
        if high is not None and value > high:
            self.problems.append(f"{name}={raw!r} must be at most {high:g}")
            return
        self.values[key] = value

    def emails(self, name: str, key: str) -> None:
        raw = self.get(name)
        if not raw:
            return
        addresses = tuple(a.strip() for a in raw.split(",") if a.strip())
        wrong = [a for a in addresses if not _EMAIL.match(a)]
        if wrong:
            self.problems.append(f"{name}: not an email address: {', '.join(wrong)} (separate addresses by commas)")
        self.values[key] = addresses


class SettingsError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite:///var/safety-monitor.db"
    database_schema: str | None = None  # PostgreSQL only: keep the tables in this schema
    rules_dir: Path = field(default_factory=lambda: _resource("rules"))
    templates_dir: Path = field(default_factory=lambda: _resource("templates"))
    mail_backend: str = "capture"  # "capture" (.eml files) or "smtp"
    mail_capture_dir: Path = Path("var/mail")
    mail_from: str = "safety-monitor@localhost"
    alert_recipients: tuple[str, ...] = ()
    digest_recipients: tuple[str, ...] = ()
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: str = "none"
    smtp_timeout: float = 30.0
    smtp_ca_file: str | None = None
    ctcae_version: str = "5.0"
    batch_size: int = 5000
    inbox_dir: Path = Path("var/inbox")  # `serve`: where sites' JSONL files are dropped (renamed into place)
    inbox_poll: float = 2.0  # `serve`: seconds between looks at the inbox directory
    # Where people reach the review workspace (`safety-monitor web`): alert emails link to PUBLIC_URL/alerts/ID.
    public_url: str = "http://127.0.0.1:8000"

    @property
    def routing_file(self) -> Path:
        """Who hears which alert: `routing.yaml` beside the rules. Without it every alert goes to
        ALERT_RECIPIENTS at once (no grouping, no repeats, no scheduled digests)."""
        return self.rules_dir / "routing.yaml"

    @property
    def mail_domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "localhost"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read every variable, collect every problem, raise them together."""
        reader = EnvReader(os.environ if environ is None else environ)
        env, problems, values = reader.env, reader.problems, reader.values
        text, number, emails = reader.text, reader.number, reader.emails

        text("DATABASE_URL", "database_url")
        text("DATABASE_SCHEMA", "database_schema")
        for name, key in (
            ("SAFETY_MONITOR_RULES_DIR", "rules_dir"),
            ("SAFETY_MONITOR_TEMPLATES_DIR", "templates_dir"),
            ("MAIL_CAPTURE_DIR", "mail_capture_dir"),
            ("SAFETY_MONITOR_INBOX_DIR", "inbox_dir"),
        ):
            if env.get(name, "").strip():
                values[key] = Path(env[name].strip())
        text("MAIL_BACKEND", "mail_backend")
        text("MAIL_FROM", "mail_from")
        emails("ALERT_RECIPIENTS", "alert_recipients")
        emails("DIGEST_RECIPIENTS", "digest_recipients")
        text("SMTP_HOST", "smtp_host")
        number("SMTP_PORT", "smtp_port", int, 1, 65535)  # a TCP port
        text("SMTP_USERNAME", "smtp_username")
        if "SMTP_PASSWORD" in env:
            values["smtp_password"] = env["SMTP_PASSWORD"]
        text("SMTP_SECURITY", "smtp_security")
        number("SMTP_TIMEOUT", "smtp_timeout", float, 1)
        text("SMTP_CA_FILE", "smtp_ca_file")
        text("CTCAE_VERSION", "ctcae_version")
        number("BATCH_SIZE", "batch_size", int, 1)
        number("SAFETY_MONITOR_INBOX_POLL", "inbox_poll", float, 0.1)
        text("PUBLIC_URL", "public_url")
        values.update(overrides)
        settings = replace(cls(), **values)
        problems.extend(settings.problems())
        if reader.get("ALERT_RECIPIENTS") and settings.routing_file.is_file():
            # Ignoring it silently would send the alerts to the routing file's receivers instead, unannounced.
            problems.append(
                f"ALERT_RECIPIENTS is set, but {settings.routing_file} decides who hears every alert: set the "
                "variables its receivers name (MEDICAL_MONITOR_EMAILS, DSMB_EMAILS, ...: `safety-monitor rules "
                "check` lists them) and unset ALERT_RECIPIENTS"
            )
        if problems:
            raise SettingsError(problems)
        return settings

    def problems(self) -> list[str]:
        found = []
        if self.mail_backend not in ("capture", "smtp"):
            found.append(f"MAIL_BACKEND={self.mail_backend!r}: use 'capture' (write .eml files) or 'smtp'")
        if self.smtp_security not in ("none", "starttls", "tls"):
            found.append(f"SMTP_SECURITY={self.smtp_security!r}: use none, starttls or tls")
        if not _EMAIL.match(self.mail_from):
            found.append(f"MAIL_FROM={self.mail_from!r} is not an email address")
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", self.database_url)
        if scheme is None or scheme.group(1).split("+")[0].lower() not in ("sqlite", "postgresql", "postgres"):
            what = f"scheme {scheme.group(1)!r}" if scheme else "has no scheme"
            found.append(
                f"DATABASE_URL {what}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB (no other database is "
                "supported)"
            )
        if self.database_schema and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.database_schema):
            found.append(f"DATABASE_SCHEMA={self.database_schema!r}: use lower-case letters, digits and _")
        if self.database_schema and self.database_url.startswith("sqlite"):
            found.append("DATABASE_SCHEMA applies to PostgreSQL only; SQLite has no schemas")
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", self.public_url):
            found.append(
                f"PUBLIC_URL={self.public_url!r}: give the workspace's address, e.g. https://safety.example.org"
            )
        if self.ctcae_version != "5.0":
            found.append(f"CTCAE_VERSION={self.ctcae_version!r}: only 5.0 criteria are installed")
        return found

    def require_recipients(self) -> None:
        """Alerts with nobody to receive them are missed alerts: refuse to run that way."""
        if not self.alert_recipients and not self.routing_file.is_file():
            raise SettingsError(
                ["ALERT_RECIPIENTS is not set: alerts would reach nobody (give comma-separated addresses)"]
            )
