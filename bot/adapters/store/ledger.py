"""Where the watcher is in a mailbox folder (the cursor) and every UID it took in (the ledger).

The ledger row of a mail is written in the same transaction as what the mail caused, so the cursor
never moves past a mail that was not recorded.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import CursorRow, LedgerRow

log = logging.getLogger(__name__)


def cursor(engine: Engine, mailbox: str, uidvalidity: int, uidnext: int, now: datetime) -> CursorRow:
    """The folder's cursor; a new one (starting after the mail already there) when the folder is new
    to the bot or its UIDVALIDITY changed."""
    with transaction(engine) as session:
        row = session.exec(select(CursorRow).where(CursorRow.mailbox == mailbox)).first()
        if row is None or row.uidvalidity != uidvalidity:
            if row is not None:
                log.warning("UIDVALIDITY of %s changed %s -> %s: starting over (duplicates are caught by Message-ID)",
                            mailbox, row.uidvalidity, uidvalidity)
                session.delete(row)
                session.flush()
            row = CursorRow(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=max(0, uidnext - 1), updated_at=now)
            session.add(row)
        return row


def finish_initial(engine: Engine, mailbox: str, uidvalidity: int) -> None:
    with transaction(engine) as session:
        row = session.exec(select(CursorRow).where(CursorRow.mailbox == mailbox)).first()
        if row is not None and row.uidvalidity == uidvalidity and not row.initial_done:
            row.initial_done = True
            session.add(row)


def in_ledger(session: Session, mailbox: str, uidvalidity: int, uid: int) -> bool:
    return session.exec(
        select(LedgerRow.id).where(LedgerRow.mailbox == mailbox, LedgerRow.uidvalidity == uidvalidity,
                                   LedgerRow.uid == uid)
    ).first() is not None


def advance(session: Session, mailbox: str, uidvalidity: int, uid: int, row_id: int | None,
            outcome: str, now: datetime) -> None:
    """Record the UID as taken in and move the cursor past it, in the caller's transaction."""
    session.add(LedgerRow(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, message_row_id=row_id,
                          outcome=outcome, processed_at=now))
    row = session.exec(select(CursorRow).where(CursorRow.mailbox == mailbox)).first()
    if row is not None and row.uidvalidity == uidvalidity and uid > row.last_uid:
        row.last_uid = uid
        row.updated_at = now
        session.add(row)


def mark_flagged(engine: Engine, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
    """These UIDs are now flagged (\\Seen or moved) on the server."""
    with transaction(engine) as session:
        rows = session.exec(select(LedgerRow).where(
            LedgerRow.mailbox == mailbox, LedgerRow.uidvalidity == uidvalidity, col(LedgerRow.uid).in_(uids),
        )).all()
        for row in rows:
            row.flagged = True
            session.add(row)


def unflagged(engine: Engine, mailbox: str, uidvalidity: int) -> list[tuple[int, str]]:
    """(uid, outcome) of mail recorded by an earlier run that stopped before it could flag it."""
    with transaction(engine) as session:
        rows = session.exec(select(LedgerRow.uid, LedgerRow.outcome).where(
            LedgerRow.mailbox == mailbox, LedgerRow.uidvalidity == uidvalidity,
            col(LedgerRow.flagged).is_(False))).all()
        return [(uid, outcome) for uid, outcome in rows]
