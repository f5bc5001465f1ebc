"""What the console's pages show, assembled from the store and the mailbox (the handlers only render).

The case page reads each customer mail back from the mailbox (bodies are not stored by default) and
each mail the bot sent from its outbox row, exactly as sent.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import Engine

from bot.adapters.originals import Wanted
from bot.adapters.store import console as store
from bot.adapters.store.cases import load_case
from bot.adapters.store.console import Listed, QuarantineLine, StoredMail
from bot.adapters.store.tables import EventRow
from bot.compose.templates import Renderer, sample_context, template_folders, template_names
from bot.compose.versions import template_label
from bot.core.errors import BotError, MailboxError, TemplateProblem, UsageError
from bot.core.model import CaseRecord
from bot.core.parse import parse_message
from bot.core.wording import LANGUAGES
from bot.settings import Settings

Fetch = Callable[[Sequence[Wanted]], dict[str, bytes]]
QUEUE_LINES = 25  # per section; "All N" links to the rest


def queue(engine: Engine, now: datetime) -> dict[str, Listed]:
    return store.queue(engine, now, QUEUE_LINES)


@dataclass(frozen=True)
class CaseList:
    listed: Listed
    page: int
    pages: int


def case_list(engine: Engine, *, status: str, kind: str, overdue_at: datetime | None, q: str, page: int,
              size: int) -> CaseList:
    page = max(1, page)
    listed = store.search(engine, status=status, kind=kind, overdue_at=overdue_at, q=q[:200],
                          offset=(page - 1) * size, limit=size)
    pages = max(1, -(-listed.total // size))
    return CaseList(listed, page, pages)


@dataclass(frozen=True)
class Part:
    index: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ShownMail:
    """One message as the case page shows it (text only; customer text is escaped by the page)."""

    row_id: int
    direction: str
    from_addr: str
    from_name: str
    to_addr: str
    subject: str
    when: datetime
    text: str
    attachments: tuple[Part, ...] = ()
    note: str = ""  # why the text is not shown, if it is not
    template: str = ""
    delivery: str = ""
    available: bool = True  # the whole message can be downloaded


@dataclass(frozen=True)
class CasePage:
    case: CaseRecord
    mails: tuple[ShownMail, ...]
    events: tuple[EventRow, ...]
    mailbox_problem: str = ""


def _text_of(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain",))
    if body is None:
        return ""
    try:
        return str(body.get_content())
    except (LookupError, ValueError):
        payload = body.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _parts(msg: EmailMessage) -> tuple[Part, ...]:
    out = []
    for i, part in enumerate(msg.iter_attachments()):
        payload = part.get_payload(decode=True)
        out.append(Part(i, part.get_filename() or f"attachment-{i + 1}", part.get_content_type(),
                        len(payload) if isinstance(payload, bytes) else 0))
    return tuple(out)


def _parsed(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _shown(m: StoredMail, original: bytes | None, mailbox_problem: str) -> ShownMail:
    base = ShownMail(m.row_id, m.direction, m.from_addr, "", m.to_addr, m.subject, m.sent_at or m.recorded_at, "",
                     template=m.template, delivery=m.delivery)
    if m.direction == "out":
        if not m.raw:
            return replace(base, note="not kept (erased)", available=False)
        msg = _parsed(m.raw)
        return replace(base, text=_text_of(msg), attachments=_parts(msg))
    if original is None:
        why = mailbox_problem or "no longer in the mailbox"
        if m.body is not None:
            return replace(base, text=m.body, note=f"stored text shown: {why}", available=False)
        return replace(base, note=why, available=False)
    mail = parse_message(original, size=len(original))
    return replace(base, from_addr=mail.from_addr or m.from_addr, from_name=mail.from_name,
                   subject=mail.subject or m.subject, text=mail.text,
                   attachments=tuple(Part(i, a.filename, a.content_type, a.size) for i, a in enumerate(mail.attachments)))


def case_page(engine: Engine, ref: str, fetch: Fetch) -> CasePage:
    """The case with every message in time order; UsageError for an unknown reference."""
    case, _, events = load_case(engine, ref)
    mails = store.case_mail(engine, case.ref)
    wanted = [Wanted(m.message_id, m.mailbox_uid) for m in mails if m.direction == "in"]
    problem = ""
    originals: dict[str, bytes] = {}
    if wanted:
        try:
            originals = fetch(wanted)
        except MailboxError as exc:
            problem = str(exc)
    shown = tuple(_shown(m, originals.get(m.message_id), problem) for m in mails)
    return CasePage(case, shown, tuple(events), problem)


def _stored(engine: Engine, ref: str, row_id: int) -> StoredMail:
    for m in store.case_mail(engine, ref.strip().upper()):
        if m.row_id == row_id:
            return m
    raise UsageError(f"no such message in case {ref}")


def message_file(engine: Engine, ref: str, row_id: int, fetch: Fetch) -> bytes:
    """The whole message as an .eml: what the bot sent, or the customer's mail from the mailbox."""
    m = _stored(engine, ref, row_id)
    if m.direction == "out":
        if not m.raw:
            raise UsageError("this message was not kept")
        return m.raw
    raw = fetch([Wanted(m.message_id, m.mailbox_uid)]).get(m.message_id)
    if raw is None:
        raise UsageError("the mailbox no longer holds this message")
    return raw


def attachment(engine: Engine, ref: str, row_id: int, index: int) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of an attachment of a mail the bot sent (the request form PDF)."""
    m = _stored(engine, ref, row_id)
    if m.direction != "out" or not m.raw:
        raise UsageError("only attachments of mail the bot sent can be downloaded here")
    for i, part in enumerate(_parsed(m.raw).iter_attachments()):
        if i == index:
            payload = part.get_payload(decode=True)
            return (part.get_filename() or f"attachment-{i + 1}", part.get_content_type(),
                    payload if isinstance(payload, bytes) else b"")
    raise UsageError("no such attachment")


def quarantined(engine: Engine) -> tuple[list[QuarantineLine], int]:
    return store.quarantine(engine)


@dataclass(frozen=True)
class Preview:
    name: str
    language: str
    label: str
    subject: str
    text: str
    has_html: bool
    error: str = ""


def previews(settings: Settings) -> list[Preview]:
    """Every message template in ja and en, rendered with sample data and this deployment's names."""
    try:
        renderer = Renderer(*template_folders(settings.paths.templates))
    except TemplateProblem as exc:
        return [Preview("-", "-", "", "", "", False, str(exc))]
    out = []
    for name in template_names(renderer):
        for lang in LANGUAGES:
            ctx = replace(sample_context(lang), company_name=settings.policy.company_name,
                          office_name=settings.smtp.from_name, privacy_address=settings.smtp.from_address,
                          postal_address=settings.policy.postal_address, timezone=settings.policy.timezone,
                          response_days=settings.policy.response_days)
            label = template_label(renderer.env, name, lang, (".txt.j2", ".html.j2"))
            try:
                r = renderer.render(name, lang, ctx)
                out.append(Preview(name, lang, label, r.subject, r.text, bool(r.html)))
            except BotError as exc:
                out.append(Preview(name, lang, label, "", "", False, str(exc)))
    return out
