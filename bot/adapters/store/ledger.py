"""Where the watcher is in a mailbox folder (the cursor) and every UID it took in (the ledger).

The ledger row of a mail is written in the same transaction as what the mail caused, so the cursor
never moves past a mail that was not recorded.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import CounterRow, CursorRow, LedgerRow, MessageRow
from bot.core.model import Action

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


# -- mail that failed ---------------------------------------------------------------------------------
# A mail whose fetching or taking in failed is tried again on the next passes; after FAILURES_ALLOWED
# failures it is quarantined with the last reason and put in the ledger, so it is never fetched again.
# The counts live in the counters table (no schema of their own): one row per failing UID, named by a
# hash of the mailbox, the UIDVALIDITY and the UID, and deleted once the mail is in the ledger.
FAILURES_ALLOWED = 3
_FAILED = "uidfail:"


def _failure_prefix(mailbox: str, uidvalidity: int) -> str:
    return f"{_FAILED}{hashlib.sha256(mailbox.encode()).hexdigest()[:16]}:{uidvalidity}:"


def count_failure(engine: Engine, mailbox: str, uidvalidity: int, uid: int) -> int:
    """One more failure of this mail; how many it has had."""
    name = f"{_failure_prefix(mailbox, uidvalidity)}{uid}"
    with transaction(engine) as session:
        row = session.exec(select(CounterRow).where(CounterRow.name == name)).first()
        row = row or CounterRow(name=name, value=0)
        row.value += 1
        session.add(row)
        return row.value


def failing(engine: Engine, mailbox: str, uidvalidity: int) -> list[int]:
    """UIDs that failed before and are not in the ledger yet (the cursor may be past them)."""
    prefix = _failure_prefix(mailbox, uidvalidity)
    with transaction(engine) as session:
        names = session.exec(select(CounterRow.name).where(col(CounterRow.name).startswith(prefix))).all()
    return sorted(int(name[len(prefix):]) for name in names if name[len(prefix):].isdigit())


def forget_failures(engine: Engine, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
    """These UIDs are in the ledger now: their failure counts go."""
    prefix = _failure_prefix(mailbox, uidvalidity)
    with transaction(engine) as session:
        for row in session.exec(select(CounterRow).where(
                col(CounterRow.name).in_([f"{prefix}{uid}" for uid in uids]))).all():
            session.delete(row)


def quarantine(engine: Engine, mailbox: str, uidvalidity: int, uid: int, size: int, reason: str,
               now: datetime) -> None:
    """Record a mail that failed too often as quarantined with the reason (staff see it), in the ledger."""
    with transaction(engine) as session:
        if not in_ledger(session, mailbox, uidvalidity, uid):
            row = MessageRow(direction="in", message_id=f"<uid-{uidvalidity}-{uid}@quarantine>", recorded_at=now,
                             action=Action.QUARANTINED.value, reason=reason[:1000], size=size, mailbox_uid=uid)
            session.add(row)
            session.flush()
            advance(session, mailbox, uidvalidity, uid, row.id, Action.QUARANTINED.value, now)
    forget_failures(engine, mailbox, uidvalidity, [uid])


def taken_in(engine: Engine, mailbox: str, uidvalidity: int, uids: list[int]) -> set[int]:
    """Which of these UIDs are in the ledger already (not to be fetched again)."""
    found: set[int] = set()
    with transaction(engine) as session:
        for start in range(0, len(uids), 1000):
            found.update(session.exec(select(LedgerRow.uid).where(
                LedgerRow.mailbox == mailbox, LedgerRow.uidvalidity == uidvalidity,
                col(LedgerRow.uid).in_(uids[start : start + 1000]))).all())
    return found
