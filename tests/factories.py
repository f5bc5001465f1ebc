"""Small builders for test values."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone
from typing import Any

from bot.model import Classification, InboundEmail, Kind


def inbound(**overrides: Any) -> InboundEmail:
    base = InboundEmail(
        message_id="<m1@example.com>", message_id_synthetic=False, from_addr="ruth@example.com",
        from_name="Ruth", reply_to="", to_addrs=("privacy@example.com",), subject="My data",
        date=datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc), in_reply_to=(), references=(),
        text="Please send me a copy of my personal data.", html_only=False, attachments=(),
        headers=(), content_type="text/plain", report_type="", size=100,
    )
    return replace(base, **overrides)


def sorted_as(*kinds: Kind, **overrides: Any) -> Classification:
    return replace(Classification(kinds=tuple(kinds), language="en", rules=tuple(f"r-{k.value}" for k in kinds)),
                   **overrides)


def mail_bytes(*, sender: str, subject: str, body: str, to: str = "privacy@bot.test",
               message_id: str | None = None, charset: str = "utf-8", date: datetime | None = None,
               headers: dict[str, str] | None = None, html: str | None = None) -> bytes:
    """A realistic inquiry built with the stdlib (CRLF line endings, as IMAP hands them out)."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = format_datetime(date or datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc))
    if message_id:
        m["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        m[key] = value
    if html is not None:
        m.set_content(html, subtype="html", charset=charset)
    else:
        m.set_content(body, charset=charset)
    return m.as_bytes(policy=m.policy.clone(linesep="\r\n"))
