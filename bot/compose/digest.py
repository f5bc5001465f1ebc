"""The staff digest: a pure summary of the cases at a moment, rendered as text and HTML (Jinja2)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from bot.core.errors import TemplateProblem
from bot.core.model import KIND_ORDER
from bot.adapters.store import MessageRow

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
class Section:
    """The first `limit` lines of a digest section (most urgent first) and how many there are in all."""

    lines: tuple[Line, ...]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.lines)

    def __iter__(self) -> Iterator[Line]:
        return iter(self.lines)


class CaseFacts(Protocol):
    """What the digest reads of a case: a CaseRow, or a row of the same columns."""

    ref: str
    kinds: str
    status: str
    requester: str
    flags: str
    opened_at: datetime
    due_at: datetime | None
    responded_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True)
class Digest:
    as_of: str
    since: str
    overdue: Section
    unacknowledged: Section  # open cases whose first acknowledgement is past its target
    due_soon: Section
    awaiting: Section
    needs_staff: Section
    new: Section
    responded: Section
    closed: Section
    quarantined: tuple[Quarantined, ...]
    counts: tuple[tuple[str, int], ...]


LINES_PER_SECTION = 50  # a digest is read by a person; `cases list` has the rest
SECTIONS = ("overdue", "unacknowledged", "due_soon", "awaiting", "needs_staff", "new", "responded", "closed")


@dataclass(frozen=True)
class DigestFacts:
    """What the database says for one digest (see bot.staff.actions.digest_facts): per section, its first
    cases in order of urgency and how many there are; the quarantined mail; open cases by kind."""

    sections: Mapping[str, tuple[Sequence[CaseFacts], int]]
    quarantined: Sequence[MessageRow]
    open_by_kinds: Mapping[str, int]  # the comma-joined kinds of open cases -> how many


def _zero(_case: CaseFacts) -> int:
    return 0


def build_digest(facts: DigestFacts, *, as_of: datetime, since: datetime, zone: ZoneInfo) -> Digest:
    def day(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d") if value else ""

    def waited(c: CaseFacts) -> int:
        return (as_of - c.opened_at).days

    days: dict[str, Callable[[CaseFacts], int]] = {
        "overdue": lambda c: (as_of - (c.due_at or as_of)).days + 1,
        "due_soon": lambda c: ((c.due_at or as_of) - as_of).days,
        "unacknowledged": waited, "awaiting": waited, "needs_staff": waited,
    }

    def section(name: str) -> Section:
        chosen, total = facts.sections.get(name, ((), 0))
        count = days.get(name, _zero)
        return Section(tuple(Line(c.ref, tuple(k for k in c.kinds.split(",") if k), c.status, c.requester,
                                  day(c.opened_at), day(c.due_at), count(c), tuple(f for f in c.flags.split(",") if f))
                             for c in chosen), total)

    counts: Counter[str] = Counter()
    for kinds, n in facts.open_by_kinds.items():
        for k in kinds.split(","):
            if k:
                counts[k] += n
    return Digest(
        as_of=as_of.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        since=since.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        overdue=section("overdue"), unacknowledged=section("unacknowledged"), due_soon=section("due_soon"),
        awaiting=section("awaiting"), needs_staff=section("needs_staff"), new=section("new"),
        responded=section("responded"), closed=section("closed"),
        quarantined=tuple(Quarantined(m.mailbox_uid, day(m.recorded_at), m.reason) for m in facts.quarantined),
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
