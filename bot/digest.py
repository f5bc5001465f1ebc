"""The staff digest: a pure summary of the cases at a moment, rendered as text and HTML (Jinja2)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from bot.clock import ack_due
from bot.errors import TemplateProblem
from bot.model import KIND_ORDER, Status
from bot.store import CaseRow, MessageRow

DUE_SOON = timedelta(days=3)


@dataclass(frozen=True)
class Line:
    ref: str
    kinds: tuple[str, ...]
    status: str
    requester: str
    opened: str
    due: str
    days: int  # days waiting (awaiting documents) or days overdue / left, depending on the section
    flags: tuple[str, ...] = ()  # warnings for staff, e.g. dmarc_fail (the sender may be forged)


@dataclass(frozen=True)
class Quarantined:
    uid: int | None
    recorded: str
    reason: str


@dataclass(frozen=True)
class Digest:
    as_of: str
    since: str
    overdue: tuple[Line, ...]
    unacknowledged: tuple[Line, ...]  # open cases whose first acknowledgement is past its target
    due_soon: tuple[Line, ...]
    awaiting: tuple[Line, ...]
    needs_staff: tuple[Line, ...]
    new: tuple[Line, ...]
    responded: tuple[Line, ...]
    closed: tuple[Line, ...]
    quarantined: tuple[Quarantined, ...]
    counts: tuple[tuple[str, int], ...]


def build_digest(cases: Sequence[CaseRow], quarantined: Sequence[MessageRow], *, as_of: datetime,
                 since: datetime, zone: ZoneInfo, acknowledged: frozenset[str] | None = None,
                 ack_target_hours: int = 1) -> Digest:
    def day(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d") if value else ""

    def line(c: CaseRow, days: int) -> Line:
        return Line(c.ref, tuple(k for k in c.kinds.split(",") if k), c.status, c.requester,
                    day(c.opened_at), day(c.due_at), days, tuple(f for f in c.flags.split(",") if f))

    open_ = [c for c in cases if c.status not in (Status.CLOSED.value, Status.RESPONDED.value)]
    running = [c for c in open_ if c.due_at is not None]
    overdue = sorted((c for c in running if c.due_at and c.due_at < as_of), key=lambda c: c.due_at or as_of)
    soon = sorted((c for c in running if c.due_at and as_of <= c.due_at <= as_of + DUE_SOON),
                  key=lambda c: c.due_at or as_of)
    awaiting = sorted((c for c in open_ if c.status == Status.AWAITING_DOCUMENTS.value), key=lambda c: c.opened_at)
    counts = Counter(k for c in open_ for k in c.kinds.split(",") if k)
    return Digest(
        as_of=as_of.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        since=since.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        overdue=tuple(line(c, (as_of - c.due_at).days + 1) for c in overdue if c.due_at),
        unacknowledged=tuple(line(c, (as_of - c.opened_at).days) for c in open_
                             if acknowledged is not None and c.ref not in acknowledged
                             and ack_due(c.opened_at, ack_target_hours) < as_of),
        due_soon=tuple(line(c, (c.due_at - as_of).days) for c in soon if c.due_at),
        awaiting=tuple(line(c, (as_of - c.opened_at).days) for c in awaiting),
        needs_staff=tuple(line(c, (as_of - c.opened_at).days) for c in open_ if c.status == Status.NEEDS_STAFF.value),
        new=tuple(line(c, 0) for c in cases if since <= c.opened_at < as_of),
        responded=tuple(line(c, 0) for c in cases if c.responded_at and since <= c.responded_at < as_of),
        closed=tuple(line(c, 0) for c in cases if c.closed_at and since <= c.closed_at < as_of),
        quarantined=tuple(Quarantined(m.mailbox_uid, day(m.recorded_at), m.reason) for m in quarantined
                          if since <= m.recorded_at < as_of),
        counts=tuple((k.value, counts[k.value]) for k in KIND_ORDER if counts[k.value]),
    )


def staff_environment(templates: Path) -> Environment:
    """Jinja2 for the staff templates (templates/staff): HTML autoescaped, text not."""
    return Environment(loader=FileSystemLoader(str(templates / "staff")), undefined=StrictUndefined,
                       autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_digest(digest: Digest, language: str, templates: Path) -> tuple[str, str, str]:
    """(subject, text, html) in the staff language."""
    env = staff_environment(templates)
    lang = language if language in ("en", "ja") else "en"
    try:
        text = env.get_template(f"digest.{lang}.txt.j2").render(d=digest)
        html = env.get_template(f"digest.{lang}.html.j2").render(d=digest)
    except TemplateError as exc:
        raise TemplateProblem(f"digest template in {templates / 'staff'} ({lang}): {exc}") from None
    subject, _, body = text.partition("\n\n")
    return subject.removeprefix("Subject: ").strip(), body, html


def digest_message(subject: str, text: str, html: str, *, sender: str, sender_name: str, to: str,
                   message_id: str, date: datetime) -> bytes:
    """The digest as a multipart/alternative mail (stdlib email package)."""
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime

    msg = EmailMessage(policy=SMTP)
    local, _, domain = sender.partition("@")
    msg["From"] = Address(sender_name, local, domain)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()
