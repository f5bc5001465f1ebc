"""Staff actions on cases: load, apply a lifecycle transition, persist it with an event."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, exists, func
from sqlalchemy import select as columns
from sqlmodel import col, select

from bot.core.clock import Calendar
from bot.compose.digest import LINES_PER_SECTION, CaseFacts, DigestFacts
from bot.core.errors import UsageError
from bot.core.lifecycle import CaseEvent, CaseState, transition
from bot.core.model import Kind, Status
from bot.adapters.store import CaseRow, EventRow, MessageRow, OutboxRow, find_case_by_ref, transaction
from bot.staff.views import CaseFields

_CASES_TABLE: Any = CaseRow.__table__  # type: ignore[attr-defined]
_CASES = _CASES_TABLE.c  # plain Core columns: rows, not ORM objects
_OUTBOX = OutboxRow.__table__.c  # type: ignore[attr-defined]
FINISHED = (Status.CLOSED.value, Status.RESPONDED.value)
DUE_SOON = timedelta(days=3)


def actor() -> str:
    try:
        return f"staff:{getpass.getuser()}"
    except Exception:
        return "staff"


def _state(case: CaseRow) -> CaseState:
    return CaseState(
        status=Status(case.status),
        kinds=tuple(Kind(k) for k in case.kinds.split(",") if k),
        documents_received_at=case.documents_received_at,
        due_at=case.due_at,
        responded_at=case.responded_at,
        closed_at=case.closed_at,
    )


def apply(engine: Engine, ref: str, event: CaseEvent, *, now: datetime, response_days: int,
          zone: ZoneInfo, event_kind: str, calendar: Calendar | None = None) -> tuple[CaseRow, str]:
    with transaction(engine) as session:
        case = find_case_by_ref(session, ref.strip().upper())
        if case is None:
            raise UsageError(f"no case with reference {ref}")
        new, line = transition(_state(case), event, response_days=response_days, zone=zone, calendar=calendar)
        case.status = new.status.value
        case.documents_received_at = new.documents_received_at
        case.due_at = new.due_at
        case.responded_at = new.responded_at
        case.closed_at = new.closed_at
        case.updated_at = now
        session.add(case)
        assert case.id is not None
        session.add(EventRow(case_id=case.id, at=now, actor=actor(), kind=event_kind, detail=line))
        return case, line


def list_cases(engine: Engine, *, status: str | None = None, kind: str | None = None,
               overdue_at: datetime | None = None, newest: int | None = None) -> tuple[list[CaseFields], int]:
    """Cases in reference order, as plain rows, and how many match; `newest` keeps only the last ones."""
    c = _CASES
    where = []
    if status:
        where.append(c.status == status)
    if kind:
        where.append(c.kinds.contains(kind))
    if overdue_at is not None:
        where.extend((c.due_at < overdue_at, c.responded_at.is_(None), c.closed_at.is_(None)))
    stmt = columns(c.ref, c.status, c.kinds, c.requester, c.language, c.flags, c.opened_at,
                   c.documents_received_at, c.due_at, c.responded_at, c.closed_at).where(*where)
    with engine.connect() as conn:
        if newest is None:
            rows = list(conn.execute(stmt.order_by(c.id)).all())
            return cast(list[CaseFields], rows), len(rows)  # rows carry CaseRow's attributes
        rows = list(reversed(conn.execute(stmt.order_by(c.id.desc()).limit(max(0, newest))).all()))
        total = conn.execute(columns(func.count()).select_from(_CASES_TABLE).where(*where)).scalar_one()
        return cast(list[CaseFields], rows), int(total)


def load_case(engine: Engine, ref: str) -> tuple[CaseRow, list[MessageRow], list[EventRow]]:
    with transaction(engine) as session:
        case = find_case_by_ref(session, ref.strip().upper())
        if case is None:
            raise UsageError(f"no case with reference {ref}")
        messages = list(session.exec(select(MessageRow).where(MessageRow.case_id == case.id)
                                     .order_by(col(MessageRow.id))).all())
        events = list(session.exec(select(EventRow).where(EventRow.case_id == case.id)
                                   .order_by(col(EventRow.id))).all())
        return case, messages, events




def digest_facts(engine: Engine, *, as_of: datetime, since: datetime, ack_target_hours: int,
                 limit: int = LINES_PER_SECTION) -> DigestFacts:
    """Each digest section as the database sees it: which cases belong there (most urgent first,
    at most `limit`) and how many in all. A few indexed queries, whatever the number of cases."""
    c = _CASES
    open_ = c.status.not_in(FINISHED)
    acked = exists().where(_OUTBOX.case_id == c.id, _OUTBOX.purpose == "ack", _OUTBOX.status == "sent")
    rules: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "overdue": (and_(open_, c.due_at < as_of), (c.due_at, c.id)),
        "unacknowledged": (and_(open_, c.opened_at < as_of - timedelta(hours=ack_target_hours), ~acked), (c.id,)),
        "due_soon": (and_(open_, c.due_at >= as_of, c.due_at <= as_of + DUE_SOON), (c.due_at, c.id)),
        "awaiting": (c.status == Status.AWAITING_DOCUMENTS.value, (c.opened_at, c.id)),
        "needs_staff": (c.status == Status.NEEDS_STAFF.value, (c.id,)),
        "new": (and_(c.opened_at >= since, c.opened_at < as_of), (c.id,)),
        "responded": (and_(c.responded_at >= since, c.responded_at < as_of), (c.id,)),
        "closed": (and_(c.closed_at >= since, c.closed_at < as_of), (c.id,)),
    }
    shown = (c.ref, c.kinds, c.status, c.requester, c.flags, c.opened_at, c.due_at, c.responded_at, c.closed_at)
    sections: dict[str, tuple[Sequence[CaseFacts], int]] = {}
    with engine.connect() as conn:
        for name, (where, order) in rules.items():
            rows = conn.execute(columns(*shown).where(where).order_by(*order).limit(limit)).all()
            total = len(rows) if len(rows) < limit else conn.execute(
                columns(func.count()).select_from(_CASES_TABLE).where(where)).scalar_one()
            sections[name] = (cast(list[CaseFacts], rows), int(total))  # rows carry CaseRow's attributes
        by_kinds: dict[str, int] = dict(conn.execute(columns(c.kinds, func.count()).where(open_).group_by(c.kinds)).all())
    with transaction(engine) as session:
        quarantined = list(session.exec(select(MessageRow).where(
            MessageRow.action == "quarantined", col(MessageRow.recorded_at) >= since,
            col(MessageRow.recorded_at) < as_of).order_by(col(MessageRow.id))).all())
    return DigestFacts(sections, quarantined, by_kinds)


def set_kinds(engine: Engine, ref: str, kinds: tuple[Kind, ...], *, now: datetime) -> tuple[CaseRow, str]:
    """Staff sort a needs_staff case by hand; its status follows the same rule as the bot's."""
    from bot.core.decide import ordered_kinds, status_for

    if not kinds:
        raise UsageError("give at least one kind")
    with transaction(engine) as session:
        case = find_case_by_ref(session, ref.strip().upper())
        if case is None:
            raise UsageError(f"no case with reference {ref}")
        if case.status != Status.NEEDS_STAFF.value:
            raise UsageError(f"only a needs_staff case can be re-sorted; {case.ref} is {case.status}")
        ordered = ordered_kinds(kinds)
        case.kinds = ",".join(k.value for k in ordered)
        case.status = status_for(ordered).value
        case.updated_at = now
        session.add(case)
        assert case.id is not None
        line = f"kinds set to {case.kinds}; status {case.status}"
        session.add(EventRow(case_id=case.id, at=now, actor=actor(), kind="kinds_set", detail=line))
        return case, line
