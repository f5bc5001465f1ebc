"""Cases in the store: the ORM side (the intake, staff actions) of rows <-> the core's values.

The lists and the digest are read as plain rows through Core in `bot.adapters.store.reads`, so
100,000 cases stay cheap and the staff views need no ORM; their names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.adapters.store.reads import (
    FINISHED,
    correction_counts,
    digest_facts,
    flags_text,
    followup_candidates,
    kinds_text,
    list_cases,
    parse_flags,
    parse_kinds,
    record_of,
)
from bot.adapters.store.retention import message_key
from bot.adapters.store.tables import CaseRow, EventRow, MessageRow
from bot.core.errors import UsageError
from bot.core.lifecycle import CaseState, Note
from bot.core.model import CaseOutcome, CaseRecord, Identity, Status

__all__ = ["FINISHED", "add_notes", "case_by_ref", "correction_counts", "create_case", "digest_facts",
           "find_case_by_message_ids", "find_case_by_ref", "flags_text", "followup_candidates", "inbound_seen",
           "kinds_text", "list_cases", "load_case", "next_ref", "parse_flags", "parse_kinds", "record_of",
           "save_state", "state_of", "thread_of"]


def state_of(row: CaseRow) -> CaseState:
    return CaseState(status=Status(row.status), kinds=parse_kinds(row.kinds), flags=parse_flags(row.flags),
                     documents_received_at=row.documents_received_at, due_at=row.due_at,
                     responded_at=row.responded_at, closed_at=row.closed_at,
                     identity=Identity(row.identity) if row.identity else None,
                     identity_document=row.identity_document,
                     outcome=CaseOutcome(row.outcome) if row.outcome else None, outcome_reason=row.outcome_reason,
                     outcome_at=row.outcome_at, customer_waiting_since=row.customer_waiting_since,
                     documents_requested_at=row.documents_requested_at)


def save_state(session: Session, row: CaseRow, state: CaseState, notes: Sequence[Note], now: datetime,
               actor: str = "bot") -> None:
    """Persist a transition: the case's new state and its history lines, in the caller's transaction."""
    row.status = state.status.value
    row.kinds = kinds_text(state.kinds)
    row.flags = flags_text(state.flags)
    row.documents_received_at = state.documents_received_at
    row.due_at = state.due_at
    row.responded_at = state.responded_at
    row.closed_at = state.closed_at
    row.identity = state.identity.value if state.identity else ""
    row.identity_document = state.identity_document
    row.outcome = state.outcome.value if state.outcome else ""
    row.outcome_reason = state.outcome_reason
    row.outcome_at = state.outcome_at
    row.customer_waiting_since = state.customer_waiting_since
    row.documents_requested_at = state.documents_requested_at
    row.updated_at = now
    session.add(row)
    session.flush()
    add_notes(session, row, notes, now, actor)


def add_notes(session: Session, row: CaseRow, notes: Sequence[Note], now: datetime, actor: str = "bot") -> None:
    assert row.id is not None
    for note in notes:
        session.add(EventRow(case_id=row.id, at=now, actor=actor, kind=note.kind.value, detail=note.detail))


def create_case(session: Session, *, ref: str, state: CaseState, notes: Sequence[Note], requester: str,
                requester_name: str, language: str, subject: str, now: datetime,
                sender_verified: bool = False) -> CaseRow:
    row = CaseRow(ref=ref, status=state.status.value, kinds=kinds_text(state.kinds), requester=requester,
                  requester_name=requester_name[:200], language=language, subject=subject[:500],
                  flags=flags_text(state.flags), opened_at=now, updated_at=now, sender_verified=sender_verified)
    session.add(row)
    session.flush()
    add_notes(session, row, notes, now)
    return row


# -- lookups ---------------------------------------------------------------------------------------

def next_ref(session: Session, prefix: str, year: int) -> str:
    """The next case reference of the year, e.g. PRV-2026-00042; safe under concurrent writers."""
    from bot.adapters.store.tables import CounterRow

    name = f"ref:{prefix}:{year}"
    row = session.exec(select(CounterRow).where(CounterRow.name == name).with_for_update()).first()
    if row is None:
        row = CounterRow(name=name, value=0)
        session.add(row)
    row.value += 1
    session.flush()
    return f"{prefix}-{year}-{row.value:05d}"


def find_case_by_ref(session: Session, ref: str) -> CaseRow | None:
    return session.exec(select(CaseRow).where(CaseRow.ref == ref)).first()


def case_by_ref(session: Session, ref: str) -> CaseRow:
    """The case staff named; UsageError when there is none."""
    case = find_case_by_ref(session, ref.strip().upper())
    if case is None:
        raise UsageError(f"no case with reference {ref}")
    return case


def find_case_by_message_ids(session: Session, message_ids: tuple[str, ...]) -> CaseRow | None:
    """The case that any of these message ids (in or out) belongs to, nearest id first."""
    if not message_ids:
        return None
    rows = session.exec(
        select(MessageRow.message_id, MessageRow.case_id).where(
            col(MessageRow.message_id).in_(message_ids[:100]),
            col(MessageRow.case_id).is_not(None),
        )
    ).all()
    by_id = {mid: cid for mid, cid in rows}
    for mid in message_ids:
        case_id = by_id.get(mid)
        if case_id is not None:
            return session.get(CaseRow, case_id)
    return None


def inbound_seen(session: Session, message_id: str) -> bool:
    """Whether this mail was taken in before (a purged row keeps only the hash of its Message-ID)."""
    row = session.exec(select(MessageRow.id).where(
        col(MessageRow.message_id).in_([message_id, message_key(message_id)]), MessageRow.direction == "in")
    ).first()
    return row is not None


def thread_of(session: Session, case: CaseRow) -> list[str]:
    """The case's message ids, oldest first: what a follow-up to the customer is threaded to."""
    return list(session.exec(select(MessageRow.message_id).where(MessageRow.case_id == case.id)
                             .order_by(col(MessageRow.id))).all())


# -- staff views (the lists are in `reads`) --------------------------------------------------------

def load_case(engine: Engine, ref: str) -> tuple[CaseRecord, list[MessageRow], list[EventRow]]:
    from bot.adapters.store.engine import transaction

    with transaction(engine) as session:
        case = case_by_ref(session, ref)
        messages = list(session.exec(select(MessageRow).where(MessageRow.case_id == case.id)
                                     .order_by(col(MessageRow.id))).all())
        events = list(session.exec(select(EventRow).where(EventRow.case_id == case.id)
                                   .order_by(col(EventRow.id))).all())
        return record_of(case), messages, events


