"""Cases in the store: rows <-> the core's values, and the queries of the intake, the sweep and staff.

Lists are read as plain rows (SQLAlchemy Core), so 100,000 cases stay cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_
from sqlalchemy import select as columns
from sqlmodel import Session, col, select

from bot.adapters.store.retention import message_key
from bot.adapters.store.tables import CaseRow, CorrectionRow, EventRow, MessageRow, OutboxRow
from bot.core.digest import CORRECTION_DAYS, DigestFacts
from bot.core.errors import UsageError
from bot.core.followups import DUE_SOON, CaseView, FollowupPolicy
from bot.core.lifecycle import CaseState, Note
from bot.core.model import (
    OPEN_STATUSES,
    Action,
    CaseOutcome,
    CaseRecord,
    Delivery,
    Flag,
    Identity,
    Kind,
    QuarantinedMail,
    Status,
)

_CASES_TABLE: Any = CaseRow.__table__  # type: ignore[attr-defined]
_C = _CASES_TABLE.c  # plain Core columns: rows, not ORM objects
_O = OutboxRow.__table__.c  # type: ignore[attr-defined]
_RECORD_COLUMNS = (_C.ref, _C.status, _C.kinds, _C.requester, _C.language, _C.flags, _C.opened_at,
                   _C.documents_received_at, _C.due_at, _C.responded_at, _C.closed_at, _C.identity,
                   _C.identity_document, _C.outcome, _C.outcome_reason, _C.outcome_at, _C.customer_waiting_since)
FINISHED = (Status.CLOSED.value, Status.RESPONDED.value)


# -- text columns <-> values -----------------------------------------------------------------------

def kinds_text(kinds: Iterable[Kind]) -> str:
    return ",".join(k.value for k in kinds)


def parse_kinds(text: str) -> tuple[Kind, ...]:
    return tuple(Kind(k) for k in text.split(",") if k)


def flags_text(flags: Iterable[Flag]) -> str:
    return ",".join(f.value for f in flags)


def parse_flags(text: str) -> tuple[Flag, ...]:
    return tuple(Flag(f) for f in text.split(",") if f)


def record_of(row: Any) -> CaseRecord:
    """A CaseRow, or a plain row with its columns, as the core's value."""
    return CaseRecord(
        ref=row.ref, status=Status(row.status), kinds=parse_kinds(row.kinds), requester=row.requester,
        language=row.language, flags=parse_flags(row.flags), opened_at=row.opened_at,
        documents_received_at=row.documents_received_at, due_at=row.due_at, responded_at=row.responded_at,
        closed_at=row.closed_at, requester_name=getattr(row, "requester_name", ""),
        subject=getattr(row, "subject", ""), identity=Identity(row.identity) if row.identity else None,
        identity_document=row.identity_document, outcome=CaseOutcome(row.outcome) if row.outcome else None,
        outcome_reason=row.outcome_reason, outcome_at=row.outcome_at, customer_waiting_since=row.customer_waiting_since,
        sender_verified=bool(getattr(row, "sender_verified", False)),
    )


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


# -- staff views -----------------------------------------------------------------------------------

def list_cases(engine: Engine, *, status: str | None = None, kind: str | None = None,
               overdue_at: datetime | None = None, newest: int | None = None) -> tuple[list[CaseRecord], int]:
    """Cases in reference order and how many match; `newest` keeps only the last ones."""
    where = []
    if status:
        where.append(_C.status == status)
    if kind:
        where.append(_C.kinds.contains(kind))
    if overdue_at is not None:
        where.extend((_C.due_at < overdue_at, _C.responded_at.is_(None), _C.closed_at.is_(None)))
    stmt = columns(*_RECORD_COLUMNS).where(*where)
    with engine.connect() as conn:
        if newest is None:
            rows = [record_of(r) for r in conn.execute(stmt.order_by(_C.id)).all()]
            return rows, len(rows)
        rows = [record_of(r) for r in reversed(conn.execute(stmt.order_by(_C.id.desc()).limit(max(0, newest))).all())]
        total = conn.execute(columns(func.count()).select_from(_CASES_TABLE).where(*where)).scalar_one()
        return rows, int(total)


def load_case(engine: Engine, ref: str) -> tuple[CaseRecord, list[MessageRow], list[EventRow]]:
    from bot.adapters.store.engine import transaction

    with transaction(engine) as session:
        case = case_by_ref(session, ref)
        messages = list(session.exec(select(MessageRow).where(MessageRow.case_id == case.id)
                                     .order_by(col(MessageRow.id))).all())
        events = list(session.exec(select(EventRow).where(EventRow.case_id == case.id)
                                   .order_by(col(EventRow.id))).all())
        return record_of(case), messages, events


def digest_facts(engine: Engine, *, as_of: datetime, since: datetime, ack_target_hours: int,
                 limit: int) -> DigestFacts:
    """Each digest section as the database sees it: which cases belong there (most urgent first,
    at most `limit`) and how many in all. A few indexed queries, whatever the number of cases."""
    c = _C
    open_ = c.status.not_in(FINISHED)
    acked = exists().where(_O.case_id == c.id, _O.purpose == "ack", _O.status == Delivery.SENT.value)
    rules: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "overdue": (and_(open_, c.due_at < as_of), (c.due_at, c.id)),
        "unacknowledged": (and_(open_, c.opened_at < as_of - timedelta(hours=ack_target_hours), ~acked), (c.id,)),
        "due_soon": (and_(open_, c.due_at >= as_of, c.due_at <= as_of + DUE_SOON), (c.due_at, c.id)),
        "awaiting": (c.status == Status.AWAITING_DOCUMENTS.value, (c.opened_at, c.id)),
        "needs_staff": (c.status == Status.NEEDS_STAFF.value, (c.id,)),
        "waiting": (c.customer_waiting_since.is_not(None), (c.customer_waiting_since, c.id)),
        "new": (and_(c.opened_at >= since, c.opened_at < as_of), (c.id,)),
        "responded": (and_(c.responded_at >= since, c.responded_at < as_of), (c.id,)),
        "closed": (and_(c.closed_at >= since, c.closed_at < as_of), (c.id,)),
    }
    m = MessageRow.__table__.c  # type: ignore[attr-defined]
    sections: dict[str, tuple[Sequence[CaseRecord], int]] = {}
    with engine.connect() as conn:
        for name, (where, order) in rules.items():
            rows = conn.execute(columns(*_RECORD_COLUMNS).where(where).order_by(*order).limit(limit)).all()
            total = len(rows) if len(rows) < limit else conn.execute(
                columns(func.count()).select_from(_CASES_TABLE).where(where)).scalar_one()
            sections[name] = ([record_of(r) for r in rows], int(total))
        by_kinds = {parse_kinds(kinds): n for kinds, n in
                    conn.execute(columns(c.kinds, func.count()).where(open_).group_by(c.kinds)).all()}
        quarantined = [QuarantinedMail(r.mailbox_uid, r.recorded_at, r.reason) for r in conn.execute(
            columns(m.mailbox_uid, m.recorded_at, m.reason).where(
                m.action == Action.QUARANTINED.value, m.recorded_at >= since, m.recorded_at < as_of,
            ).order_by(m.id)).all()]
        corrections = correction_counts(conn, as_of)
    return DigestFacts(sections, quarantined, by_kinds, corrections)


def correction_counts(conn: Any, as_of: datetime) -> tuple[int, int]:
    """(cases whose kinds staff corrected, cases opened) among those opened in the CORRECTION_DAYS before `as_of`."""
    c = _C
    k = CorrectionRow.__table__.c  # type: ignore[attr-defined]
    recent = and_(c.opened_at >= as_of - timedelta(days=CORRECTION_DAYS), c.opened_at < as_of)
    opened = conn.execute(columns(func.count()).select_from(_CASES_TABLE).where(recent)).scalar_one()
    corrected = conn.execute(columns(func.count()).select_from(_CASES_TABLE).where(
        recent, exists().where(k.case_id == c.id, k.kinds_before != k.kinds_after))).scalar_one()
    return int(corrected), int(opened)


def followup_candidates(engine: Engine, policy: FollowupPolicy, now: datetime, local_day: str) -> list[CaseView]:
    """The open cases that could have a follow-up due: a cheap superset, chosen by indexed columns
    (the rules themselves stay in bot.core.followups)."""
    c = _C
    open_statuses = [s.value for s in OPEN_STATUSES]
    first_step = now - timedelta(days=min((*policy.reminder_days, policy.abandon_days)))
    maybe = or_(and_(c.status == Status.AWAITING_DOCUMENTS.value, c.opened_at <= first_step),
                and_(c.status.in_(open_statuses), c.due_at <= now + policy.warn_before))
    with engine.connect() as conn:
        cases = conn.execute(columns(c.id, c.ref, c.status, c.opened_at, c.due_at, c.documents_requested_at)
                             .where(maybe)).all()
        purposes = conn.execute(columns(_O.case_id, _O.purpose, _O.status).where(
            _O.case_id.in_(columns(c.id).where(maybe)))).all()
    done: dict[int, set[str]] = {}
    acknowledged: set[int] = set()
    for case_id, purpose, delivery in purposes:
        done.setdefault(case_id, set()).add(purpose)
        if purpose == "ack" and delivery == Delivery.SENT.value:
            acknowledged.add(case_id)
    # documents asked for again (found insufficient): reminders and abandonment count from then
    return [CaseView(r.ref, Status(r.status), r.documents_requested_at or r.opened_at, frozenset(done.get(r.id, ())),
                     r.due_at, local_day, acknowledged=r.id in acknowledged) for r in cases]
