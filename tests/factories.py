"""Small builders for test values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from bot.core.model import Classification, InboundEmail, Kind


def inbound(**overrides: Any) -> InboundEmail:
    base = InboundEmail(
        message_id="<m1@example.com>", message_id_synthetic=False, from_addr="ruth@example.com",
        from_name="Ruth", reply_to="", to_addrs=("privacy@example.com",), subject="My data",
        date=datetime(2026, 12, 1, 1, 0, tzinfo=UTC), in_reply_to=(), references=(),
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
    m["Date"] = format_datetime(date or datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    if message_id:
        m["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        m[key] = value
    if html is not None:
        m.set_content(html, subtype="html", charset=charset)
    else:
        m.set_content(body, charset=charset)
    return m.as_bytes(policy=m.policy.clone(linesep="\r\n"))


def legacy_japanese_mail(*, sender: str, subject: str, body: str, charset: str, message_id: str,
                         to: str = "privacy@bot.test", extra: dict[str, str] | None = None) -> bytes:
    """Japanese mail the way older clients write it: 7-bit ISO-2022-JP or 8-bit Shift_JIS (CP932) bytes."""
    from email.header import Header

    codec = "cp932" if charset == "shift_jis" else charset
    header_charset = "iso-2022-jp" if charset == "shift_jis" else charset  # subjects travel as ISO-2022-JP
    lines = [
        f"From: {sender}", f"To: {to}", f"Subject: {Header(subject, header_charset).encode()}",
        "Date: Tue, 01 Dec 2026 10:00:00 +0900", f"Message-ID: {message_id}", "MIME-Version: 1.0",
        f'Content-Type: text/plain; charset="{charset}"',
        f"Content-Transfer-Encoding: {'7bit' if charset == 'iso-2022-jp' else '8bit'}",
        *(f"{k}: {v}" for k, v in (extra or {}).items()),
    ]
    head = "\r\n".join(lines).encode("ascii")
    return head + b"\r\n\r\n" + body.replace("\n", "\r\n").encode(codec) + b"\r\n"
