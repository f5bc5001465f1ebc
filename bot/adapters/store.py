"""The case store: tables, engine and the few queries the shell needs.

Every datetime goes in and comes out aware (UTC); SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, LargeBinary, Text, UniqueConstraint, event, func
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, Session, SQLModel, create_engine, select


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True, index=True, max_length=40)
    status: str = Field(index=True, max_length=32)
    kinds: str = ""  # comma-separated Kind values in KIND_ORDER
    requester: str = Field(index=True, max_length=320)
    requester_name: str = ""
    language: str = "en"
    subject: str = ""
    flags: str = ""  # comma-separated warnings for staff, e.g. dmarc_fail
    opened_at: datetime = _when(index=True)
    documents_received_at: datetime | None = _when(default=None)
    due_at: datetime | None = _when(default=None, index=True)
    responded_at: datetime | None = _when(default=None, index=True)
    closed_at: datetime | None = _when(default=None, index=True)
    updated_at: datetime = _when()


class MessageRow(SQLModel, table=True):
    """One mail in or out. Whole bodies are kept only when database.keep_bodies is on."""

    __tablename__ = "messages"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    direction: str = Field(max_length=3)  # "in" | "out"
    message_id: str = Field(index=True, max_length=998)
    in_reply_to: str = ""
    from_addr: str = ""
    to_addr: str = ""
    subject: str = ""
    sent_at: datetime | None = _when(default=None)  # the mail's Date header
    recorded_at: datetime = _when(index=True)
    kinds: str = ""
    language: str = ""
    rules: str = ""
    action: str = ""  # new_case | follow_up | ignored | duplicate | quarantined | reply
    reason: str = ""  # why (suppression evidence, quarantine reason, ...)
    size: int = 0
    attachments: str = ""  # "name (type, bytes)" lines; names and sizes only
    defects: str = ""
    mailbox_uid: int | None = None
    body: str | None = Field(default=None, sa_type=Text)


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    at: datetime = _when()
    actor: str = "bot"
    kind: str = Field(max_length=64)
    detail: str = ""


class CursorRow(SQLModel, table=True):
    """Where the watcher is in one mailbox folder."""

    __tablename__ = "mailbox_cursor"
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(unique=True, max_length=500)
    uidvalidity: int
    last_uid: int = 0
    initial_done: bool = False  # the first-start catch-up (mailbox.first_start) has finished
    updated_at: datetime = _when()


class LedgerRow(SQLModel, table=True):
    """Every UID the bot has taken in, with what it did; written with the case in one transaction."""

    __tablename__ = "mailbox_ledger"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=500)
    uidvalidity: int
    uid: int
    message_row_id: int | None = Field(default=None, foreign_key="messages.id")
    outcome: str = ""
    processed_at: datetime = _when()
    flagged: bool = Field(default=False, index=True)  # \Seen (or moved) on the server yet


class OutboxRow(SQLModel, table=True):
    """A message waiting to be sent, written in the same transaction as what caused it."""

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    purpose: str = Field(max_length=64)  # ack | reminder ... | digest
    message_id: str = Field(unique=True, max_length=998)
    to_addr: str = Field(index=True, max_length=320)
    automatic: bool = True  # counts towards the per-sender cap
    raw: bytes = Field(sa_type=LargeBinary)
    # pending -> claimed (by a worker) -> committing (final "." about to be written) -> sent;
    # or back to pending (retry), failed (refused for good), uncertain (may have been delivered)
    status: str = Field(default="pending", index=True, max_length=16)
    claimed_by: str = Field(default="", max_length=300)
    attempts: int = 0
    next_attempt_at: datetime = _when(index=True)
    last_error: str = ""
    created_at: datetime = _when(index=True)
    sent_at: datetime | None = _when(default=None)


class CounterRow(SQLModel, table=True):
    __tablename__ = "counters"
    name: str = Field(primary_key=True, max_length=64)
    value: int = 0


def make_engine(url: str) -> Engine:
    """An engine with the tables created. SQLite files get their folder made and WAL turned on."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    SQLModel.metadata.create_all(engine)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def next_ref(session: Session, prefix: str, year: int) -> str:
    """The next case reference of the year, e.g. PRV-2026-00042; safe under concurrent writers."""
    name = f"ref:{prefix}:{year}"
    row = session.exec(select(CounterRow).where(CounterRow.name == name).with_for_update()).first()
    if row is None:
        row = CounterRow(name=name, value=0)
        session.add(row)
    row.value += 1
    session.flush()
    return f"{prefix}-{year}-{row.value:05d}"


def count_auto_replies_since(session: Session, address: str, since: datetime) -> int:
    stmt = (
        select(func.count())
        .select_from(OutboxRow)
        .where(OutboxRow.to_addr == address, OutboxRow.automatic == True, OutboxRow.created_at >= since)
    )
    return int(session.exec(stmt).one())


def find_case_by_ref(session: Session, ref: str) -> CaseRow | None:
    return session.exec(select(CaseRow).where(CaseRow.ref == ref)).first()


def find_case_by_message_ids(session: Session, message_ids: tuple[str, ...]) -> CaseRow | None:
    """The case that any of these message ids (in or out) belongs to, nearest id first."""
    if not message_ids:
        return None
    rows = session.exec(
        select(MessageRow.message_id, MessageRow.case_id).where(
            MessageRow.message_id.in_(message_ids[:100]),  # type: ignore[attr-defined]
            MessageRow.case_id != None,
        )
    ).all()
    by_id = {mid: cid for mid, cid in rows}
    for mid in message_ids:
        case_id = by_id.get(mid)
        if case_id is not None:
            return session.get(CaseRow, case_id)
    return None


def inbound_seen(session: Session, message_id: str) -> bool:
    row = session.exec(
        select(MessageRow.id).where(MessageRow.message_id == message_id, MessageRow.direction == "in")
    ).first()
    return row is not None
