"""The few figures the health endpoint and /metrics read from the store: cheap, indexed counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, text

from bot.adapters.store.cases import FINISHED
from bot.adapters.store.tables import CaseRow, OutboxRow
from bot.core.model import IN_FLIGHT, Delivery

_WAITING = [Delivery.PENDING.value, *(d.value for d in IN_FLIGHT)]


@dataclass(frozen=True)
class StoreFigures:
    outbox_waiting: int  # rows not yet sent (pending, or being sent now)
    oldest_unanswered_seconds: float  # the oldest customer mail whose reply still waits in the outbox; 0: none
    overdue_cases: int  # open cases past their due date


def database_answers(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not answering"; the reason is for the log, not the probe
        return False


def figures(engine: Engine, now: datetime) -> StoreFigures:
    o = OutboxRow.__table__.c  # type: ignore[attr-defined]
    c = CaseRow.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        waiting = conn.execute(select(func.count()).select_from(OutboxRow)
                               .where(o.status.in_(_WAITING))).scalar_one()
        oldest = conn.execute(select(func.min(o.created_at)).where(
            o.status.in_(_WAITING), o.case_id.is_not(None), o.automatic.is_(True))).scalar_one()
        overdue = conn.execute(select(func.count()).select_from(CaseRow).where(
            c.status.not_in(FINISHED), c.due_at < now)).scalar_one()
    age = 0.0
    if oldest is not None:
        if oldest.tzinfo is None:  # SQLite hands back naive UTC for an aggregate
            oldest = oldest.replace(tzinfo=UTC)
        age = max(0.0, (now - oldest).total_seconds())
    return StoreFigures(int(waiting), age, int(overdue))
