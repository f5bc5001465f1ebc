"""Taking one fetched mail in: parse, sort, decide, then record it all in one transaction.

The case, the messages, the events, the outbox row and the mailbox ledger are committed
together, so the mailbox cursor never moves past a mail that was not recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from bot.core.classify import classify
from bot.compose.message import build_reply, make_message_id, serialise
from bot.settings import Settings
from bot.core.decide import Action, Decision, Known, decide
from bot.adapters.imap import Fetched
from bot.core.model import Classification, InboundEmail
from bot.core.parse import parse_message
from bot.compose.templates import Renderer
from bot.compose.context import case_context
from bot.core.classify.rules import Rules
from bot.adapters.store import (
    CaseRow,
    CursorRow,
    EventRow,
    LedgerRow,
    MessageRow,
    OutboxRow,
    count_auto_replies_since,
    find_case_by_message_ids,
    find_case_by_ref,
    inbound_seen,
    next_ref,
    transaction,
)

OTHER_SENDER = "other_sender"  # a follow-up to a case came from an address other than the requester's
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    uid: int
    action: str
    ref: str = ""
    kinds: tuple[str, ...] = ()
    reason: str = ""
    replied: bool = False
    already: bool = False  # the ledger had it: nothing was done


class Intake:
    def __init__(self, settings: Settings, engine: Engine, renderer: Renderer, rules: Rules) -> None:
        self.settings = settings
        self.engine = engine
        self.renderer = renderer
        self.rules = rules
        self.own = frozenset(
            a.lower() for a in (settings.smtp.from_address, settings.mailbox.username) if "@" in a
        )
        self.domain = settings.smtp.from_address.rpartition("@")[2] or "privacy-bot.invalid"

    def take_in(self, mailbox: str, uidvalidity: int, fetched: Fetched, now: datetime) -> Outcome:
        """Record one mail. Never raises for a bad mail; database trouble propagates (retry later)."""
        try:
            with transaction(self.engine) as session:
                if _in_ledger(session, mailbox, uidvalidity, fetched.uid):
                    return Outcome(fetched.uid, "", already=True)
                outcome, row_id = self._record(session, fetched, now)
                _advance(session, mailbox, uidvalidity, fetched.uid, row_id, outcome.action, now)
                return outcome
        except DBAPIError:
            raise
        except Exception as exc:  # a bug or an input we did not foresee: contain it, keep the mail
            reason = f"internal error while taking in: {type(exc).__name__}: {str(exc)[:200]}"
            log.exception("uid=%s quarantined after an internal error", fetched.uid)
            with transaction(self.engine) as session:
                row = MessageRow(direction="in", message_id=f"<uid-{uidvalidity}-{fetched.uid}@quarantine>",
                                 recorded_at=now, action=Action.QUARANTINED.value, reason=reason,
                                 size=fetched.size, mailbox_uid=fetched.uid)
                session.add(row)
                session.flush()
                _advance(session, mailbox, uidvalidity, fetched.uid, row.id, Action.QUARANTINED.value, now)
            return Outcome(fetched.uid, Action.QUARANTINED.value, reason=reason)

    def _record(self, session: Session, fetched: Fetched, now: datetime) -> tuple[Outcome, int | None]:
        mail = parse_message(fetched.raw, size=fetched.size, truncated=fetched.truncated)
        sorted_ = classify(mail, self.rules, own_addresses=self.own, ref_prefix=self.settings.policy.ref_prefix)
        case = None
        known = Known()
        if not mail.parse_error:
            case = find_case_by_ref(session, sorted_.ref) if sorted_.ref else None
            if case is None:
                case = find_case_by_message_ids(session, mail.thread_ids)
            known = Known(
                duplicate=inbound_seen(session, mail.message_id),
                case_ref=case.ref if case else "",
                replies_to_sender_24h=count_auto_replies_since(session, mail.reply_address, now - timedelta(hours=24)),
            )
        decision = decide(mail, sorted_, known, reply_cap=self.settings.policy.max_auto_replies_per_sender_per_day)

        if decision.action is Action.NEW_CASE:
            case = self._open_case(session, mail, sorted_, decision, now)
        elif decision.action is not Action.FOLLOW_UP:
            case = None
        message = self._message_row(mail, sorted_, decision, fetched, now, case)
        session.add(message)
        session.flush()
        replied = False
        if case is not None and case.id is not None:
            if decision.action is Action.FOLLOW_UP:
                case.updated_at = now
                session.add(case)
                session.add(EventRow(case_id=case.id, at=now, kind="customer_message",
                                     detail=f"{mail.message_id} {decision.reason}"))
                if mail.reply_address.lower() != case.requester.lower():
                    # anyone can quote a reference: staff must see that this came from someone else
                    _add_flag(case, OTHER_SENDER)
                    session.add(EventRow(case_id=case.id, at=now, kind="flagged",
                                         detail=f"{OTHER_SENDER}: {mail.reply_address[:320]}"))
            elif decision.template:
                self._queue_reply(session, case, mail, decision, now)
                replied = True
            else:
                session.add(EventRow(case_id=case.id, at=now, kind="reply_withheld", detail=decision.reason))
        outcome = Outcome(fetched.uid, decision.action.value, case.ref if case else "",
                          tuple(k.value for k in decision.kinds), decision.reason, replied)
        return outcome, message.id

    def _open_case(self, session: Session, mail: InboundEmail, sorted_: Classification,
                   decision: Decision, now: datetime) -> CaseRow:
        year = now.astimezone(self.settings.zone).year
        case = CaseRow(
            ref=next_ref(session, self.settings.policy.ref_prefix, year),
            status=decision.status.value if decision.status else "needs_staff",
            kinds=",".join(k.value for k in decision.kinds),
            requester=mail.reply_address,
            requester_name=mail.from_name[:200],
            language=sorted_.language,
            subject=mail.subject[:500],
            flags=",".join(sorted_.flags),
            opened_at=now,
            updated_at=now,
        )
        session.add(case)
        session.flush()
        assert case.id is not None
        detail = f"kinds={case.kinds} language={case.language} {decision.reason}"
        session.add(EventRow(case_id=case.id, at=now, kind="opened", detail=detail))
        for flag in sorted_.flags:
            session.add(EventRow(case_id=case.id, at=now, kind="flagged", detail=flag))
        return case

    def _queue_reply(self, session: Session, case: CaseRow, mail: InboundEmail,
                     decision: Decision, now: datetime) -> None:
        assert case.id is not None
        s = self.settings
        ctx = case_context(s, case, inquiry_subject=mail.subject)
        message_id = make_message_id(case.ref, "ack", self.domain)
        out = build_reply(
            renderer=self.renderer, template=decision.template, ctx=ctx, message_id=message_id,
            in_reply_to=mail.message_id, references=(*mail.references, mail.message_id),
            attach_form=decision.attach_form,
        )
        raw = serialise(out, from_address=s.smtp.from_address, from_name=s.smtp.from_name,
                        reply_to=s.smtp.from_address, date=now, japanese_charset=s.smtp.japanese_charset)
        session.add(OutboxRow(case_id=case.id, purpose="ack", message_id=message_id, to_addr=case.requester,
                              raw=raw, next_attempt_at=now, created_at=now))
        session.add(MessageRow(case_id=case.id, direction="out", message_id=message_id,
                               in_reply_to=mail.message_id, from_addr=s.smtp.from_address,
                               to_addr=case.requester, subject=out.subject[:500], recorded_at=now,
                               sent_at=now, kinds=case.kinds, language=case.language,
                               action="reply", reason=decision.template, size=len(raw)))
        session.add(EventRow(case_id=case.id, at=now, kind="reply_queued",
                             detail=f"{decision.template} {message_id}" + (" with form" if decision.attach_form else "")))

    def _message_row(self, mail: InboundEmail, sorted_: Classification, decision: Decision,
                     fetched: Fetched, now: datetime, case: CaseRow | None) -> MessageRow:
        keep = self.settings.database.keep_bodies
        return MessageRow(
            case_id=case.id if case else None,
            direction="in",
            message_id=mail.message_id[:998],
            in_reply_to=(mail.in_reply_to[0] if mail.in_reply_to else "")[:998],
            from_addr=mail.from_addr[:320],
            to_addr=",".join(mail.to_addrs)[:1000],
            subject=mail.subject[:500],
            sent_at=mail.date,
            recorded_at=now,
            kinds=",".join(k.value for k in decision.kinds),
            language=sorted_.language,
            rules=",".join(sorted_.rules),
            action=decision.action.value,
            reason=decision.reason[:1000],
            size=mail.size,
            attachments="\n".join(f"{a.filename} ({a.content_type}, {a.size})" for a in mail.attachments[:100]),
            defects="\n".join(mail.defect_texts[:50]),
            mailbox_uid=fetched.uid,
            body=mail.text if keep else None,
        )


def _add_flag(case: CaseRow, flag: str) -> None:
    flags = [f for f in case.flags.split(",") if f]
    if flag not in flags:
        case.flags = ",".join([*flags, flag])


def _in_ledger(session: Session, mailbox: str, uidvalidity: int, uid: int) -> bool:
    return session.exec(
        select(LedgerRow.id).where(LedgerRow.mailbox == mailbox, LedgerRow.uidvalidity == uidvalidity,
                                   LedgerRow.uid == uid)
    ).first() is not None


def _advance(session: Session, mailbox: str, uidvalidity: int, uid: int, row_id: int | None,
             outcome: str, now: datetime) -> None:
    session.add(LedgerRow(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, message_row_id=row_id,
                          outcome=outcome, processed_at=now))
    cursor = session.exec(select(CursorRow).where(CursorRow.mailbox == mailbox)).first()
    if cursor is not None and cursor.uidvalidity == uidvalidity and uid > cursor.last_uid:
        cursor.last_uid = uid
        cursor.updated_at = now
        session.add(cursor)
