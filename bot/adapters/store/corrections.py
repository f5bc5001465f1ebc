"""Staff corrections of the sorter (`cases set-kinds`): recorded with the case, read back as training
examples (`sorter train --with-corrections`) and counted for the digest's correction rate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.adapters.store.tables import CaseRow, CorrectionRow, EventRow, MessageRow
from bot.core.classify import match_text, own_words
from bot.core.model import EventKind, Kind

MAX_TEXT = 4_000  # the sorter reads no more than this


def correction_text(session: Session, case: CaseRow) -> str | None:
    """The case's first inquiry as the sorter read it, when its body was kept (database.keep_bodies)."""
    first = session.exec(select(MessageRow).where(MessageRow.case_id == case.id, MessageRow.direction == "in",
                                                  col(MessageRow.body).is_not(None))
                         .order_by(col(MessageRow.id))).first()
    if first is None or first.body is None:
        return None
    return match_text(own_words(first.subject, first.body))[:MAX_TEXT] or None


def record_correction(session: Session, case: CaseRow, *, before: tuple[Kind, ...], after: tuple[Kind, ...],
                      actor: str, now: datetime, keep_text: bool) -> CorrectionRow:
    assert case.id is not None
    guesses = session.exec(select(EventRow.detail).where(EventRow.case_id == case.id,
                                                         EventRow.kind == EventKind.SORTER_GUESSES.value)
                           .order_by(col(EventRow.id).desc())).first() or ""
    row = CorrectionRow(case_id=case.id, at=now, actor=actor[:200], kinds_before=",".join(k.value for k in before),
                        kinds_after=",".join(k.value for k in after), guesses=guesses[:500],
                        text=correction_text(session, case) if keep_text else None)
    session.add(row)
    return row


def training_corrections(engine: Engine) -> list[tuple[str, frozenset[Kind]]]:
    """The latest correction of each case that kept its text, as (text, kinds) examples, oldest first."""
    with Session(engine) as session:
        rows = session.exec(select(CorrectionRow).where(col(CorrectionRow.text).is_not(None))
                            .order_by(col(CorrectionRow.id))).all()
    latest: dict[int, CorrectionRow] = {}
    for row in rows:
        latest[row.case_id] = row
    out = []
    for row in sorted(latest.values(), key=lambda r: r.id or 0):
        kinds = frozenset(Kind(k) for k in row.kinds_after.split(",") if k)
        if row.text and kinds:
            out.append((row.text, kinds))
    return out
