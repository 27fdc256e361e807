"""Owns turning outgoing mail into MIME and delivering it: over SMTP (aiosmtplib) or as .eml files."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import aiosmtplib

from safety_monitor.service.ports import OutgoingMail, Refusals


def to_mime(mail: OutgoingMail, *, date: datetime | None = None) -> EmailMessage:
    """multipart/alternative: the plain text first, then the HTML part; with inline images the HTML part is a
    multipart/related holding the HTML and each image under its Content-ID (RFC 2387, RFC 2392 cid: URLs)."""
    message = EmailMessage()
    message["Message-ID"] = mail.message_id
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.recipients)
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    if mail.images:
        html_part = message.get_body(preferencelist=("html",))
        assert isinstance(html_part, EmailMessage)
        for image in mail.images:
            maintype, subtype = image.mime_type.split("/", 1)
            html_part.add_related(
                image.data,
                maintype=maintype,
                subtype=subtype,
                cid=f"<{image.content_id}>",
                filename=image.filename,
                disposition="inline",
            )
    return message


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    security: str = "none"  # "none", "starttls" or "tls" (implicit TLS, usually port 465)
    timeout: float = 30.0
    ca_file: str | None = None


class SmtpMailer:
    """Sends through a real SMTP server. TLS is chosen explicitly: aiosmtplib would otherwise upgrade to
    STARTTLS whenever the server offers it, and fail on a certificate nobody configured."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, mail: OutgoingMail) -> Refusals:
        """Send; the recipients the server refused come back with its reply (all refused is no error here:
        the caller decides per recipient what is permanent and what is worth another try)."""
        s = self._settings
        context = ssl.create_default_context(cafile=s.ca_file) if s.security != "none" else None
        try:
            refused, _ = await aiosmtplib.send(
                to_mime(mail),
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.security == "tls",
                start_tls=s.security == "starttls",
                tls_context=context,
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return {r.recipient: (r.code, r.message) for r in exc.recipients}
        return {recipient: (reply.code, reply.message) for recipient, reply in refused.items()}


class CaptureMailer:
    """Writes each mail to DIR/<message-id>.eml: the demo's inbox. Re-sending the same notice overwrites the
    same file, so a retried delivery never shows as a second copy."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, mail: OutgoingMail) -> Path:
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in mail.message_id.strip("<>"))
        return self.directory / f"{safe}.eml"

    async def send(self, mail: OutgoingMail) -> Refusals:
        data = to_mime(mail).as_bytes()
        await asyncio.to_thread(self._write, self.path_for(mail), data)
        return {}

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".eml.partial")
        partial.write_bytes(data)
        partial.replace(path)


class MemoryMailer:
    """Keeps each mail in `sent`, in the order sent, checked through MIME like a real send: the inbox of
    `rules test` and of tests. A retried delivery replaces its earlier copy (same Message-ID)."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> Refusals:
        to_mime(mail)  # a mail that cannot become MIME fails here as it would over SMTP
        self.sent = [m for m in self.sent if m.message_id != mail.message_id] + [mail]
        return {}
