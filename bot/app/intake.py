"""Taking one fetched mail in: parse, sort, decide, then record it all in one transaction.

The case, the messages, the events, the outbox row and the mailbox ledger are committed
together, so the mailbox cursor never moves past a mail that was not recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot.adapters.imap import Fetched
from bot.adapters.store import ledger
from bot.adapters.store.cases import (
    add_notes,
    create_case,
    find_case_by_message_ids,
    find_case_by_ref,
    inbound_seen,
    kinds_text,
    next_ref,
    save_state,
    state_of,
)
from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import CaseRow, MessageRow
from bot.app.mailing import CaseMail, Mailing, limit_period, limits_of, sent_counts
from bot.app.notify import Notifier
from bot.core.classify import classify, guesses_text
from bot.core.classify.rules import Rules
from bot.core.classify.scorer import Model
from bot.core.decide import Decision, Known, decide
from bot.core.lifecycle import CustomerWrote, Note, Opened, transition
from bot.core.model import Action, Classification, EventKind, Flag, InboundEmail, Status
from bot.core.parse import parse_message
from bot.core.trust import recipient_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    uid: int
    action: Action | None  # None: the ledger had it already
    ref: str = ""
    kinds: tuple[str, ...] = ()
    reason: str = ""
    replied: bool = False

    @property
    def already(self) -> bool:
        return self.action is None


class Intake:
    def __init__(self, mailing: Mailing, engine: Engine, rules: Rules, model: Model | None = None,
                 notifier: Notifier | None = None) -> None:
        self.settings = mailing.settings
        self.mailing = mailing
        self.engine = engine
        self.rules = rules
        self.model = model  # None: the rule file alone sorts
        self.notifier = notifier or Notifier(self.settings)  # staff are told once when a limit is reached
        self.own = self.settings.own_addresses
        self.limits = limits_of(self.settings)

    def take_in(self, mailbox: str, uidvalidity: int, fetched: Fetched, now: datetime) -> Outcome:
        """Record one mail. Never raises for a bad mail; database trouble propagates (retry later)."""
        try:
            with transaction(self.engine) as session:
                if ledger.in_ledger(session, mailbox, uidvalidity, fetched.uid):
                    return Outcome(fetched.uid, None)
                outcome, row_id = self._record(session, fetched, now)
                ledger.advance(session, mailbox, uidvalidity, fetched.uid, row_id, outcome.action or "", now)
                return outcome
        except DBAPIError:
            raise
        except Exception as exc:  # a bug or an input we did not foresee: contain it, keep the mail, send nothing
            reason = f"internal error while taking in: {type(exc).__name__}: {str(exc)[:200]}"
            log.error("uid=%s quarantined after an internal error (%s)", fetched.uid, type(exc).__name__)
            with transaction(self.engine) as session:
                row = MessageRow(direction="in", message_id=f"<uid-{uidvalidity}-{fetched.uid}@quarantine>",
                                 recorded_at=now, action=Action.QUARANTINED.value, reason=reason,
                                 size=fetched.size, mailbox_uid=fetched.uid)
                session.add(row)
                session.flush()
                ledger.advance(session, mailbox, uidvalidity, fetched.uid, row.id, Action.QUARANTINED, now)
            return Outcome(fetched.uid, Action.QUARANTINED, reason=reason)

    def _record(self, session: Session, fetched: Fetched, now: datetime) -> tuple[Outcome, int | None]:
        mail = parse_message(fetched.raw, size=fetched.size, truncated=fetched.truncated)
        policy = self.settings.policy
        sorted_ = classify(mail, self.rules, own_addresses=self.own, ref_prefix=policy.ref_prefix, model=self.model,
                           trusted_authserv_ids=self.settings.mailbox.trusted_authserv_ids)
        case = None
        known = Known()
        if not mail.parse_error and not sorted_.error:
            case = find_case_by_ref(session, sorted_.ref) if sorted_.ref else None
            if case is None:
                case = find_case_by_message_ids(session, mail.thread_ids)
            sent = sent_counts(session, sorted_.recipient, now, self.limits)
            known = Known(
                duplicate=inbound_seen(session, mail.message_id),
                case_ref=case.ref if case else "",
                case_requester=case.requester if case else "",
                replies_to_sender_24h=sent.to_sender_24h, replies_to_domain_1h=sent.to_domain_1h,
                replies_1h=sent.all_1h,
            )
        decision = decide(mail, sorted_, known, reply_cap=policy.max_auto_replies_per_sender_per_day,
                          limits=self.limits)
        if decision.template and (problem := recipient_problem(sorted_.recipient, self.own,
                                                               lenient_domains=self.mailing.lenient_domains)):
            # the outbox would refuse it (and would, whatever this says): the case waits for staff
            decision = replace(decision, reason=f"{decision.reason}; no acknowledgement: {problem}", template="",
                               attach_form=False, status=Status.NEEDS_STAFF, for_staff=True,
                               flags=(*decision.flags, Flag.RECIPIENT_REFUSED))

        if decision.action is Action.NEW_CASE:
            case = self._open_case(session, mail, sorted_, decision, now)
        elif decision.action is not Action.FOLLOW_UP:
            case = None
        message = self._message_row(mail, sorted_, decision, fetched, now, case)
        session.add(message)
        session.flush()
        replied = False
        if case is not None:
            if decision.action is Action.FOLLOW_UP:
                event = CustomerWrote(mail.message_id, decision.reason, decision.from_requester, sorted_.recipient,
                                      at=now)
                new, notes = transition(state_of(case), event, self.settings.case_policy)
                save_state(session, case, new, notes, now)
            elif decision.template:
                replied = bool(self.mailing.queue(session, case, CaseMail(
                    template=decision.template, purpose="ack", action=Action.REPLY, event=EventKind.REPLY_QUEUED,
                    in_reply_to=mail.message_id, references=(*mail.references, mail.message_id),
                    attach_form=decision.attach_form, inquiry_subject=mail.subject), now))
            else:
                add_notes(session, case, (Note(EventKind.REPLY_WITHHELD, decision.reason),), now)
                if decision.limit:
                    self.notifier.queue_limit_notice(session, decision.limit, limit_period(decision.limit, now),
                                                     case.ref, now)
        outcome = Outcome(fetched.uid, decision.action, case.ref if case else "",
                          tuple(k.value for k in decision.kinds), decision.reason, replied)
        return outcome, message.id

    def _open_case(self, session: Session, mail: InboundEmail, sorted_: Classification,
                   decision: Decision, now: datetime) -> CaseRow:
        year = now.astimezone(self.settings.zone).year
        detail = f"kinds={kinds_text(decision.kinds)} language={sorted_.language} {decision.reason}"
        guesses = guesses_text(sorted_.scores) if sorted_.unsure else ""
        opened = Opened(decision.kinds, decision.flags, detail, guesses, for_staff=decision.for_staff)
        state, notes = transition(None, opened, self.settings.case_policy)
        return create_case(session, ref=next_ref(session, self.settings.policy.ref_prefix, year), state=state,
                           notes=notes, requester=sorted_.recipient, requester_name=mail.from_name,
                           language=sorted_.language, subject=mail.subject, now=now,
                           sender_verified=sorted_.authenticated)

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
            kinds=kinds_text(decision.kinds),
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
