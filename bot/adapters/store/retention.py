"""Retention: erase the personal data of cases closed long enough ago, keeping what counts need."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import CaseRow, CorrectionRow, EventRow, MessageRow, OutboxRow
from bot.core.model import EventKind, Status

ERASED = "(erased)"


def purge(engine: Engine, *, now: datetime, retention_days: int, dry_run: bool) -> list[str]:
    """Refs of the closed cases whose personal fields were (or, with dry_run, would be) erased."""
    if retention_days <= 0:
        return []
    cutoff = now - timedelta(days=retention_days)
    with transaction(engine) as session:
        cases = session.exec(select(CaseRow).where(CaseRow.status == Status.CLOSED.value, col(CaseRow.closed_at) < cutoff,
                                                   CaseRow.requester != ERASED)).all()
        if dry_run:
            return [c.ref for c in cases]
        for case in cases:
            case.requester, case.requester_name, case.subject = ERASED, "", ""
            case.outcome_reason = ""  # may quote the customer's data
            case.updated_at = now
            session.add(case)
            for m in session.exec(select(MessageRow).where(MessageRow.case_id == case.id)).all():
                m.from_addr, m.to_addr, m.subject, m.body, m.attachments = "", "", "", None, ""
                session.add(m)
            for o in session.exec(select(OutboxRow).where(OutboxRow.case_id == case.id)).all():
                o.to_addr, o.raw = ERASED, b""
                session.add(o)
            for c in session.exec(select(CorrectionRow).where(CorrectionRow.case_id == case.id)).all():
                c.text, c.actor = None, ""  # the inquiry's words; the kinds stay for the correction rate
                session.add(c)
            assert case.id is not None
            session.add(EventRow(case_id=case.id, at=now, kind=EventKind.PURGED.value,
                                 detail=f"personal data erased after {retention_days} days of retention"))
        return [c.ref for c in cases]
