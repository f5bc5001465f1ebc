"""Staff actions on cases, one function each, for the command line and the console alike: load the
case, let the lifecycle decide, persist the new state with its history lines and who acted.

`apply` carries any lifecycle event (extend, close, set kinds, identity verified, outcome, handled);
the others add what an event alone cannot: date checks (documents received, responded) or a mail to
the customer queued in the same transaction (reply, documents insufficient)."""

from __future__ import annotations

import getpass
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.adapters.store.cases import case_by_ref, record_of, save_state, state_of
from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import CaseRow, MessageRow
from bot.app.mailing import CaseMail, Mailing
from bot.compose.templates import staff_text
from bot.core.clock import date_problem
from bot.core.errors import UsageError
from bot.core.lifecycle import (
    CaseEvent,
    CasePolicy,
    DocsReceived,
    DocumentsInsufficient,
    KindsSet,
    Responded,
    StaffReplied,
    transition,
)
from bot.core.model import Action, CaseRecord, EventKind, Kind

STAFF_REPLY = "staff_reply"  # the template of a reply from the case: the staff's text is its data


def os_user() -> str:
    """Who acts on the command line when `--as` is not given."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (e.g. a container without a passwd entry)
        return "staff"


def apply(engine: Engine, ref: str, event: CaseEvent, *, now: datetime, policy: CasePolicy,
          actor: str, dated: datetime | None = None, allow_future: bool = False) -> tuple[CaseRecord, str]:
    """The event applied to the case; returns the case after it and the history line(s) written.
    UsageError for an unknown reference, or for a `dated` event on a date after today (unless
    `allow_future`) or before the case was opened; TransitionError when the event is not allowed."""
    with transaction(engine) as session:
        case = case_by_ref(session, ref)
        if dated is not None:
            _checked(_began(session, case), dated, now, policy, allow_future)
        new, notes = transition(state_of(case), event, policy)
        save_state(session, case, new, notes, now, actor)
        return record_of(case), "; ".join(n.detail for n in notes)


def set_kinds(engine: Engine, ref: str, kinds: tuple[Kind, ...], *, now: datetime, policy: CasePolicy,
              actor: str, keep_text: bool) -> tuple[CaseRecord, str]:
    """Staff sort a case: the lifecycle's KindsSet, plus the correction kept as a labelled example for
    the sorter (`sorter train --with-corrections`), with the inquiry's own words only if `keep_text`."""
    from bot.adapters.store.corrections import record_correction

    with transaction(engine) as session:
        case = case_by_ref(session, ref)
        before = state_of(case)
        new, notes = transition(before, KindsSet(kinds), policy)
        save_state(session, case, new, notes, now, actor)
        record_correction(session, case, before=before.kinds, after=new.kinds, actor=actor, now=now,
                          keep_text=keep_text)
        return record_of(case), "; ".join(n.detail for n in notes)


INQUIRY_DATE_TRUSTED = timedelta(days=90)


def _began(session: Session, case: CaseRow) -> datetime:
    """When the request began, as far as a staff date is concerned: the case's opening, or the inquiry's
    own Date when that is earlier (the mail waited in the mailbox while the bot was stopped or behind, and
    the documents may well have arrived before the case was opened), but by no more than
    INQUIRY_DATE_TRUSTED (a sender's clock may be wrong)."""
    sent = session.exec(select(func.min(MessageRow.sent_at)).where(
        MessageRow.case_id == case.id, MessageRow.direction == "in")).one()
    if sent is None or not case.opened_at - INQUIRY_DATE_TRUSTED <= sent < case.opened_at:
        return case.opened_at
    return sent


def _checked(case_opened: datetime, on: datetime, now: datetime, policy: CasePolicy, allow_future: bool) -> None:
    problem = date_problem(on, opened_at=case_opened, now=now, zone=policy.zone, allow_future=allow_future)
    if problem:
        raise UsageError(problem)


def documents_received(engine: Engine, ref: str, on: datetime, *, now: datetime, policy: CasePolicy, actor: str,
                       allow_future: bool = False) -> tuple[CaseRecord, str]:
    """The postal documents arrived on `on`: the response clock starts. A date after today (unless
    `allow_future`, for scripted replays) or before the request began (`_began`) is refused."""
    return apply(engine, ref, DocsReceived(on), now=now, policy=policy, actor=actor, dated=on,
                 allow_future=allow_future)


def responded(engine: Engine, ref: str, on: datetime, *, now: datetime, policy: CasePolicy, actor: str,
              allow_future: bool = False) -> tuple[CaseRecord, str]:
    """The written answer was sent on `on` (the same date checks as `documents_received`)."""
    return apply(engine, ref, Responded(on), now=now, policy=policy, actor=actor, dated=on,
                 allow_future=allow_future)


def _thread(session: Session, case: CaseRow) -> tuple[str, tuple[str, ...]]:
    """What a reply from the case answers: the customer's latest mail (else the latest of the case), and
    the case's message ids as References."""
    assert case.id is not None
    rows = session.exec(select(MessageRow.message_id, MessageRow.direction).where(MessageRow.case_id == case.id)
                        .order_by(col(MessageRow.recorded_at), col(MessageRow.id))).all()
    ids = tuple(mid for mid, _ in rows)
    inbound = [mid for mid, direction in rows if direction == "in"]
    return (inbound[-1] if inbound else ids[-1] if ids else ""), ids


def _queue_reply(session: Session, mailing: Mailing, case: CaseRow, text: str, now: datetime, actor: str) -> str:
    if not staff_text(text).strip():
        raise UsageError("write the message to send")
    in_reply_to, references = _thread(session, case)
    return mailing.queue(session, case, CaseMail(
        template=STAFF_REPLY, purpose=f"reply.{secrets.token_hex(6)}", action=Action.REPLY,
        event=EventKind.REPLY_QUEUED, in_reply_to=in_reply_to, references=references, automatic=False,
        inquiry_subject=case.subject, message=text, actor=actor), now)


def reply(engine: Engine, mailing: Mailing, ref: str, text: str, *, now: datetime, actor: str) -> tuple[CaseRecord, str]:
    """Staff's text to the requester, through the outbox from the privacy address: [REF] in the subject,
    threaded to the customer's latest mail, kept among the case's messages. Returns its Message-ID."""
    with transaction(engine) as session:
        case = case_by_ref(session, ref)
        new, notes = transition(state_of(case), StaffReplied(), mailing.settings.case_policy)
        message_id = _queue_reply(session, mailing, case, text, now, actor)
        save_state(session, case, new, notes, now, actor)
        return record_of(case), message_id


def documents_insufficient(engine: Engine, mailing: Mailing, ref: str, text: str, *, now: datetime,
                           actor: str) -> tuple[CaseRecord, str]:
    """The documents do not prove who the requester is: the customer is told what is missing (a reply
    from the case, `text`) and the case waits for new documents, the response clock stopped."""
    with transaction(engine) as session:
        case = case_by_ref(session, ref)
        new, notes = transition(state_of(case), DocumentsInsufficient(staff_text(text), now),
                                 mailing.settings.case_policy)
        _queue_reply(session, mailing, case, text, now, actor)
        save_state(session, case, new, notes, now, actor)
        return record_of(case), "; ".join(n.detail for n in notes)
