"""Retention: erase the personal data of cases closed long enough ago, and of mail that never became a
case, from every table; then make the freed space unreadable (`wipe`).

What stays is what the bot needs to count and to not answer twice: the mailbox ledger (folder, UIDs,
outcomes, dates), the cases' references, statuses, kinds and dates, and each message's kinds, action
and size. Addresses, names, subjects, bodies, reasons, history details and the bytes of sent mail go;
Message-IDs are replaced by their SHA-256 (`message_key`), so a row can still be matched to a mail
that comes again but no longer says who wrote it.

`TABLES` says for every table what the purge does with it; tests/test_retention.py fails when a table
is added without a line there.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import DBAPIError

from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import CaseRow, CorrectionRow, CursorRow, EventRow, LedgerRow, MessageRow, OutboxRow
from bot.core.model import Action, Delivery, EventKind, Status

ERASED = "(erased)"
HASHED = "sha256:"
DONE = [Delivery.SENT.value, Delivery.FAILED.value, Delivery.UNCERTAIN.value]  # never touched while in flight

TABLES = {
    "cases": "closed past retention: requester, name, subject, outcome reason, identity document erased",
    "messages": "of those cases, and mail with no case recorded before the cutoff (ignored, duplicate, "
                "quarantined): addresses, subject, body, reason, attachments, defects erased; Message-ID hashed; "
                "the UID that would let the console or an evidence pack read the mail back dropped",
    "events": "of those cases: details erased (kind, actor and time stay)",
    "outbox": "of those cases, and staff mail (digests, notices) queued before the cutoff: recipient (and its "
              "normalised form and domain), bytes, last error erased; Message-ID hashed",
    "sorter_corrections": "of those cases: the inquiry's text and the actor erased (kinds stay for the rate)",
    "mailbox_ledger": "kept: folder, UIDVALIDITY, UIDs, outcomes and dates (no personal data)",
    "mailbox_cursor": "kept: folder names and UIDs (no personal data)",
    "counters": "kept: reference counters (no personal data)",
    "accounts": "kept: the staff console's own accounts, not requesters' data",
}

_CASES: Any = CaseRow.__table__  # type: ignore[attr-defined]
_MESSAGES: Any = MessageRow.__table__  # type: ignore[attr-defined]
_EVENTS: Any = EventRow.__table__  # type: ignore[attr-defined]
_OUTBOX: Any = OutboxRow.__table__  # type: ignore[attr-defined]
_CORRECTIONS: Any = CorrectionRow.__table__  # type: ignore[attr-defined]
_CHUNK = 500


def message_key(message_id: str) -> str:
    """What a Message-ID becomes when its row is erased."""
    return HASHED + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Wiped:
    """How the freed space was made unreadable (or why it could not be)."""

    done: bool
    detail: str


@dataclass(frozen=True)
class PurgeReport:
    refs: list[str] = field(default_factory=list)  # closed cases whose personal data was (would be) erased now
    messages: int = 0  # message rows erased (the cases' and those with no case)
    caseless: int = 0  # of which mail that never became a case
    outbox: int = 0  # outbox rows erased (the cases' and staff mail)
    events: int = 0  # history lines whose detail was erased

    @property
    def changed(self) -> bool:
        return bool(self.refs or self.messages or self.outbox or self.events)


def purge(engine: Engine, *, now: datetime, retention_days: int, dry_run: bool) -> PurgeReport:
    """Erase (or, with dry_run, count) the personal data past retention in every table; one transaction."""
    if retention_days <= 0:
        return PurgeReport()
    cutoff = now - timedelta(days=retention_days)
    c, m, e, o, k = _CASES.c, _MESSAGES.c, _EVENTS.c, _OUTBOX.c, _CORRECTIONS.c
    old_cases = select(c.id).where(c.status == Status.CLOSED.value, c.closed_at < cutoff).scalar_subquery()
    messages_where = and_(~m.message_id.startswith(HASHED),
                          or_(m.case_id.in_(old_cases), and_(m.case_id.is_(None), m.recorded_at < cutoff)))
    outbox_where = and_(~o.message_id.startswith(HASHED), o.status.in_(DONE),
                        or_(o.case_id.in_(old_cases), and_(o.case_id.is_(None), o.created_at < cutoff)))
    events_where = and_(e.case_id.in_(old_cases), e.detail != "", e.kind != EventKind.PURGED.value)
    with transaction(engine) as session:
        conn = session.connection()
        new = conn.execute(select(c.id, c.ref).where(c.id.in_(old_cases), c.requester != ERASED)
                           .order_by(c.id)).all()
        caseless = conn.execute(select(func.count()).select_from(_MESSAGES)
                                .where(messages_where, m.case_id.is_(None))).scalar_one()
        n_events = conn.execute(select(func.count()).select_from(_EVENTS).where(events_where)).scalar_one()
        if dry_run:
            return PurgeReport([r.ref for r in new],
                               conn.execute(select(func.count()).select_from(_MESSAGES).where(messages_where))
                               .scalar_one(), caseless,
                               conn.execute(select(func.count()).select_from(_OUTBOX).where(outbox_where))
                               .scalar_one(), n_events)
        conn.execute(update(_CASES).where(c.id.in_(old_cases), or_(
            c.requester != ERASED, c.requester_name != "", c.subject != "", c.outcome_reason != "",
            c.identity_document != "")).values(requester=ERASED, requester_name="", subject="", outcome_reason="",
                                               identity_document="", updated_at=now))
        n_messages = _rehash(conn, _MESSAGES, messages_where, from_addr="", to_addr="", subject="", body=None,
                             attachments="", in_reply_to="", reason="", defects="", mailbox_uid=None)
        n_outbox = _rehash(conn, _OUTBOX, outbox_where, ("to_norm",), to_addr=ERASED, to_domain="", raw=b"",
                           last_error="")
        conn.execute(update(_EVENTS).where(events_where).values(detail=""))
        conn.execute(update(_CORRECTIONS).where(k.case_id.in_(old_cases), or_(k.text.is_not(None), k.actor != ""))
                     .values(text=None, actor=""))
        for row in new:
            session.add(EventRow(case_id=row.id, at=now, kind=EventKind.PURGED.value,
                                 detail=f"personal data erased after {retention_days} days of retention"))
        return PurgeReport([r.ref for r in new], n_messages, caseless, n_outbox, n_events)


def _rehash(conn: Any, table: Any, where: Any, keyed: tuple[str, ...] = (), **values: Any) -> int:
    """Erase `values` in the rows matching `where` and replace their Message-ID by its hash (and the
    `keyed` columns too: a unique index over them must stay unique once the address is gone)."""
    rows = conn.execute(select(table.c.id, table.c.message_id).where(where)).all()
    keys: dict[str, Any] = {name: bindparam("key") for name in ("message_id", *keyed)}
    stmt = update(table).where(table.c.id == bindparam("row_id")).values(**keys, **values)
    for start in range(0, len(rows), _CHUNK):
        conn.execute(stmt, [{"row_id": r.id, "key": message_key(r.message_id)} for r in rows[start:start + _CHUNK]])
    return len(rows)


# -- making the freed space unreadable ------------------------------------------------------------

PG_PROMISE = ("PostgreSQL VACUUM marks the erased rows' space as reusable; it does not overwrite it, and "
              "the server's WAL, archives, replicas and backups keep the old rows until they rotate")


def wipe(engine: Engine, *, attempts: int = 6, first_wait: float = 0.5,
         sleep: Callable[[float], None] = time.sleep) -> Wiped:
    """After a purge: SQLite checkpoints and truncates its WAL, VACUUMs (rewriting the file without the
    erased rows' old pages) and truncates the WAL again, retrying with back-off while another process is
    busy; PostgreSQL VACUUMs the tables the purge touched (see PG_PROMISE)."""
    if engine.dialect.name == "postgresql":
        return _vacuum_postgres(engine)
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return Wiped(True, "nothing on disk to wipe")
    wait, last = first_wait, ""
    for attempt in range(1, attempts + 1):
        try:
            _vacuum_sqlite(database)
            return Wiped(True, "SQLite: WAL checkpointed and truncated, VACUUM done (secure_delete on)")
        except sqlite3.OperationalError as exc:  # "database is locked" / busy: another process is writing
            last = type(exc).__name__
            if attempt < attempts:
                sleep(wait)
                wait *= 2
    return Wiped(False, f"SQLite: VACUUM could not run, the database stayed busy ({last}, {attempts} tries); "
                        "the erased data may remain in free pages or the WAL until `cases purge` runs again "
                        "(best with the bot stopped)")


def _vacuum_sqlite(database: str) -> None:
    conn = sqlite3.connect(database, timeout=5, isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA temp_store=MEMORY")  # VACUUM's copy of the database never touches a temp file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy is not None and busy[0]:
            raise sqlite3.OperationalError("database is locked: a reader kept the WAL from being truncated")
    finally:
        conn.close()


def _vacuum_postgres(engine: Engine) -> Wiped:
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # VACUUM: no transaction
            for table in ("cases", "messages", "events", "outbox", "sorter_corrections"):
                conn.exec_driver_sql(f"VACUUM {table}")
    except DBAPIError as exc:
        return Wiped(False, f"PostgreSQL: VACUUM failed ({type(exc.orig).__name__}); {PG_PROMISE}")
    return Wiped(True, f"PostgreSQL: VACUUM done; {PG_PROMISE}")


def processed_uids(engine: Engine, mailbox: str) -> tuple[int | None, list[int]]:
    """(UIDVALIDITY, UIDs) of the mail the ledger says was taken in from this folder, quarantined mail
    left out; (None, []) for a folder the bot has not watched."""
    cur, led = CursorRow.__table__.c, LedgerRow.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        uidvalidity = conn.execute(select(cur.uidvalidity).where(cur.mailbox == mailbox)).scalar_one_or_none()
        if uidvalidity is None:
            return None, []
        uids = conn.execute(select(led.uid).where(led.mailbox == mailbox, led.uidvalidity == uidvalidity,
                                                  led.outcome != Action.QUARANTINED.value)).scalars().all()
    return int(uidvalidity), sorted(int(u) for u in uids)
