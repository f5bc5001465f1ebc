"""Mail to a customer about their case: rendered from a template, serialised, and queued through the
outbox with its place among the case's messages and a line in its history. Acknowledgements,
reminders and staff replies all come through here; each queued mail keeps the name and version of
the template it was written from (e.g. "ack_rights.ja@3f2a9c1") for the evidence pack."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.adapters.store.cases import kinds_text, record_of
from bot.adapters.store.outbox import CaseMessage, Queued, count_auto_sent, enqueue, refused
from bot.adapters.store.tables import CaseRow
from bot.compose.context import case_context
from bot.compose.message import build_reply, make_message_id, serialise
from bot.compose.templates import HTML_SUFFIX, TEXT_SUFFIX, Renderer
from bot.compose.versions import template_label
from bot.core.decide import Limits, Sent
from bot.core.model import Action, EventKind
from bot.core.wording import normalise_language
from bot.settings import Settings, load_rules, rules_path


@dataclass(frozen=True)
class CaseMail:
    """Which mail, and how it is threaded and counted."""

    template: str
    purpose: str  # unique per case: "ack", "reminder14"...
    action: Action  # how it shows among the case's messages
    event: EventKind  # its line in the history
    in_reply_to: str
    references: tuple[str, ...]
    attach_form: bool = False
    auto_submitted: str = "auto-replied"
    automatic: bool = True  # counts towards the limits on automatic mail
    inquiry_subject: str = ""
    message: str = ""  # a staff reply's text, passed to the template as data
    actor: str = "bot"  # who it is from, for the case history


class Mailing:
    def __init__(self, settings: Settings, renderer: Renderer, lenient_domains: frozenset[str] | None = None) -> None:
        self.settings = settings
        self.renderer = renderer
        self.sender = settings.sender
        self.lenient_domains = _lenient_domains(settings) if lenient_domains is None else lenient_domains

    def queue(self, session: Session, case: CaseRow, mail: CaseMail, now: datetime) -> str:
        """Render, serialise and queue `mail` to the case's requester; returns its Message-ID, or ""
        when the outbox refused the recipient (nothing queued, the reason in the case history).
        Raises TemplateProblem (nothing queued) when the template does not render."""
        assert case.id is not None
        message_id = make_message_id(self.sender.domain)
        probe = Queued(purpose=mail.purpose, message_id=message_id, to_addr=case.requester, raw=b"",
                       automatic=mail.automatic, case_id=case.id, actor=mail.actor, lenient_domains=self.lenient_domains)
        if refused(session, probe, now, from_addr=self.sender.address, own_addresses=self.settings.own_addresses):
            return ""  # checked before anything is composed; enqueue checks again
        ctx = replace(case_context(self.settings, record_of(case), inquiry_subject=mail.inquiry_subject),
                      message=mail.message)
        out = build_reply(renderer=self.renderer, template=mail.template, ctx=ctx, message_id=message_id,
                          in_reply_to=mail.in_reply_to, references=mail.references,
                          attach_form=mail.attach_form, auto_submitted=mail.auto_submitted)
        s = self.sender
        raw = serialise(out, from_address=s.address, from_name=s.name, reply_to=s.address, date=now,
                        japanese_charset=s.japanese_charset)
        reason = mail.template if mail.action is Action.REPLY else mail.purpose
        detail = f"{mail.template} {message_id}" if mail.event is EventKind.REPLY_QUEUED else f"{mail.purpose} {message_id}"
        if mail.attach_form and mail.event is EventKind.REPLY_QUEUED:
            detail += " with form"
        label = template_label(self.renderer.env, mail.template, normalise_language(case.language),
                               (TEXT_SUFFIX, HTML_SUFFIX))
        queued = enqueue(session, Queued(
            purpose=mail.purpose, message_id=message_id, to_addr=case.requester, raw=raw, automatic=mail.automatic,
            case_id=case.id, note=(mail.event, detail), actor=mail.actor, template=label,
            message=CaseMessage(subject=out.subject, in_reply_to=mail.in_reply_to, kinds=kinds_text(ctx.kinds),
                                language=case.language, action=mail.action, reason=reason),
            lenient_domains=self.lenient_domains,
        ), now, from_addr=s.address, own_addresses=self.settings.own_addresses)
        return message_id if queued else ""


def _lenient_domains(settings: Settings) -> frozenset[str]:
    """The rule file's lenient carrier domains; none when it cannot be read (the strict check then holds)."""
    try:
        return load_rules(rules_path(settings)).address.lenient_domains
    except Exception:  # the rule file is checked where it is loaded for sorting; here strict is safe
        return frozenset()


def limits_of(settings: Settings) -> Limits:
    p = settings.policy
    return Limits(per_sender_per_day=p.max_auto_replies_per_sender_per_day,
                  per_domain_per_hour=p.max_auto_replies_per_domain_per_hour, per_hour=p.max_auto_replies_per_hour)


def limit_period(limit: str, now: datetime) -> str:
    """The period a staff notice about `limit` covers: the UTC day for the daily limit, else the UTC hour."""
    return now.strftime("%Y-%m-%d") if limit.endswith("_per_day") else now.strftime("%Y-%m-%dT%H")


def sent_counts(session: Session, recipient: str, now: datetime, limits: Limits) -> Sent:
    """Automatic mail already queued: to the normalised recipient in 24 h, to its domain in an hour, in all
    in an hour; each counted only as far as its limit (all `limit_reached` needs to know)."""
    day, hour = now - timedelta(hours=24), now - timedelta(hours=1)
    return Sent(*count_auto_sent(session, recipient, day=day, hour=hour,
                                 caps=(limits.per_sender_per_day, limits.per_domain_per_hour, limits.per_hour)))
