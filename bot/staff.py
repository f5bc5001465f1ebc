"""Staff actions on cases: load, apply a lifecycle transition, persist it with an event."""

from __future__ import annotations

import getpass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.clock import Calendar
from bot.errors import UsageError
from bot.lifecycle import CaseEvent, CaseState, transition
from bot.model import Kind, Status
from bot.store import CaseRow, EventRow, MessageRow, OutboxRow, find_case_by_ref, transaction


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


def list_cases(engine: Engine, *, status: str | None, kind: str | None) -> list[CaseRow]:
    with transaction(engine) as session:
        stmt = select(CaseRow).order_by(col(CaseRow.id))
        if status:
            stmt = stmt.where(CaseRow.status == status)
        if kind:
            stmt = stmt.where(col(CaseRow.kinds).contains(kind))
        return list(session.exec(stmt).all())


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


def digest_inputs(engine: Engine) -> tuple[list[CaseRow], list[MessageRow], frozenset[str]]:
    """Every case, the quarantined mail, and the refs whose acknowledgement has been sent."""
    with transaction(engine) as session:
        cases = list(session.exec(select(CaseRow).order_by(col(CaseRow.id))).all())
        quarantined = list(session.exec(select(MessageRow).where(MessageRow.action == "quarantined")
                                        .order_by(col(MessageRow.id))).all())
        acked = session.exec(select(CaseRow.ref).join(OutboxRow, col(OutboxRow.case_id) == col(CaseRow.id))
                             .where(OutboxRow.purpose == "ack", OutboxRow.status == "sent")).all()
        return cases, quarantined, frozenset(acked)


def set_kinds(engine: Engine, ref: str, kinds: tuple[Kind, ...], *, now: datetime) -> tuple[CaseRow, str]:
    """Staff sort a needs_staff case by hand; its status follows the same rule as the bot's."""
    from bot.decide import ordered_kinds, status_for

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
