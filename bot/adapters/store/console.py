"""The staff console's queries: the queue, the case list with its filters and pages, a case's mail as
stored, the quarantine. Plain rows (SQLAlchemy Core) and indexed columns, so each page stays cheap at
100,000 cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_
from sqlalchemy import select as columns

from bot.adapters.store.reads import CASES, RECORD_COLUMNS, record_of
from bot.adapters.store.tables import MessageRow, OutboxRow
from bot.core.followups import DUE_SOON
from bot.core.model import OPEN_STATUSES, Action, CaseRecord, Kind, Status

_C = CASES.c
_MESSAGES: Any = MessageRow.__table__  # type: ignore[attr-defined]
_M = _MESSAGES.c
_O = OutboxRow.__table__.c  # type: ignore[attr-defined]

QUEUE_SECTIONS = ("overdue", "due_soon", "waiting", "needs_staff", "awaiting", "opt_outs")


@dataclass(frozen=True)
class Listed:
    """The first cases of a list, in its order, and how many there are in all."""

    cases: tuple[CaseRecord, ...]
    total: int


def queue(engine: Engine, now: datetime, limit: int) -> dict[str, Listed]:
    """The staff's morning, most urgent first in each section: overdue, due within 3 days, customers
    waiting for us, needs staff, awaiting documents (oldest first), marketing opt-outs to carry out."""
    c = _C
    open_ = c.status.in_([s.value for s in OPEN_STATUSES])  # as not_in(FINISHED), but it can use (status, due_at)
    rules: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "overdue": (and_(open_, c.due_at < now), (c.due_at, c.id)),
        "due_soon": (and_(open_, c.due_at >= now, c.due_at <= now + DUE_SOON), (c.due_at, c.id)),
        "waiting": (c.customer_waiting_since.is_not(None), (c.customer_waiting_since, c.id)),
        "needs_staff": (c.status == Status.NEEDS_STAFF.value, (c.id,)),
        "awaiting": (c.status == Status.AWAITING_DOCUMENTS.value, (c.opened_at, c.id)),
        "opt_outs": (and_(c.status == Status.IN_PROGRESS.value, c.kinds.contains(Kind.MARKETING_OPT_OUT.value),
                          c.documents_received_at.is_(None), c.outcome == ""), (c.id,)),
    }
    out: dict[str, Listed] = {}
    with engine.connect() as conn:
        for name, (where, order) in rules.items():
            rows = conn.execute(columns(*RECORD_COLUMNS).where(where).order_by(*order).limit(limit)).all()
            total = len(rows) if len(rows) < limit else conn.execute(
                columns(func.count()).select_from(CASES).where(where)).scalar_one()
            out[name] = Listed(tuple(record_of(r) for r in rows), int(total))
    return out


def search(engine: Engine, *, status: str = "", kind: str = "", overdue_at: datetime | None = None, q: str = "",
           offset: int = 0, limit: int = 50) -> Listed:
    """Cases newest first matching every filter given; q: part of the reference or the address."""
    c = _C
    where: list[Any] = []
    if status:
        where.append(c.status == status)
    if kind:
        where.append(c.kinds.contains(kind))
    if overdue_at is not None:
        where.extend((c.due_at < overdue_at, c.status.in_([s.value for s in OPEN_STATUSES])))
    with engine.connect() as conn:
        if q:
            where.append(_matching(conn, q.strip()))
        rows = conn.execute(columns(*RECORD_COLUMNS).where(*where).order_by(c.id.desc())
                            .offset(max(0, offset)).limit(limit)).all()
        if offset or len(rows) >= limit:
            total = conn.execute(columns(func.count()).select_from(CASES).where(*where)).scalar_one()
        else:  # the first page holds them all
            total = len(rows)
    return Listed(tuple(record_of(r) for r in rows), int(total))


def _matching(conn: Any, q: str) -> Any:
    """Cases whose reference or requester is `q` (indexed), else those containing it (a scan). Plain LIKE
    on both databases: references are stored upper-case and addresses lower-case, so the needle is cased
    to match (ILIKE or lower() per row cost PostgreSQL two to four times as much)."""
    c = _C
    exact = or_(c.ref == q.upper(), c.requester == q.lower())
    if conn.execute(columns(c.id).where(exact).limit(1)).first() is not None:
        return exact

    def pattern(text: str) -> str:
        return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

    return or_(c.ref.like(pattern(q.upper()), escape="\\"), c.requester.like(pattern(q.lower()), escape="\\"))


@dataclass(frozen=True)
class StoredMail:
    """One of a case's messages as the store knows it; `raw` is what the bot sent, exactly as sent."""

    row_id: int
    direction: str
    message_id: str
    from_addr: str
    to_addr: str
    subject: str
    recorded_at: datetime
    sent_at: datetime | None
    action: str
    reason: str
    attachments: str
    mailbox_uid: int | None
    body: str | None  # inbound text, only when database.keep_bodies is on
    raw: bytes | None = None  # outbound: the outbox row's bytes
    delivery: str = ""  # outbound: the outbox row's status
    template: str = ""  # outbound: name.lang@version


def case_mail(engine: Engine, ref: str) -> list[StoredMail]:
    """Every message of the case in time order, with the outbox bytes of what the bot sent."""
    m, o = _M, _O
    with engine.connect() as conn:
        case_id = conn.execute(columns(_C.id).where(_C.ref == ref)).scalar_one_or_none()
        if case_id is None:
            return []
        rows = conn.execute(columns(m.id, m.direction, m.message_id, m.from_addr, m.to_addr, m.subject,
                                    m.recorded_at, m.sent_at, m.action, m.reason, m.attachments, m.mailbox_uid,
                                    m.body).where(m.case_id == case_id).order_by(m.recorded_at, m.id)).all()
        sent = {r.message_id: r for r in conn.execute(
            columns(o.message_id, o.raw, o.status, o.template).where(o.case_id == case_id)).all()}
    out = []
    for r in rows:
        s = sent.get(r.message_id) if r.direction == "out" else None
        out.append(StoredMail(r.id, r.direction, r.message_id, r.from_addr, r.to_addr, r.subject, r.recorded_at,
                              r.sent_at, r.action, r.reason, r.attachments, r.mailbox_uid, r.body,
                              bytes(s.raw) if s is not None else None, s.status if s is not None else "",
                              s.template if s is not None else ""))
    return out


@dataclass(frozen=True)
class QuarantineLine:
    uid: int | None
    recorded_at: datetime
    from_addr: str
    subject: str
    reason: str
    size: int


def quarantine(engine: Engine, *, since: datetime | None = None, limit: int = 200) -> tuple[list[QuarantineLine], int]:
    m = _M
    where: Sequence[Any] = [m.action == Action.QUARANTINED.value]
    if since is not None:
        where = [*where, m.recorded_at >= since]
    with engine.connect() as conn:
        rows = conn.execute(columns(m.mailbox_uid, m.recorded_at, m.from_addr, m.subject, m.reason, m.size)
                            .where(*where).order_by(m.id.desc()).limit(limit)).all()
        total = conn.execute(columns(func.count()).select_from(_MESSAGES).where(*where)).scalar_one()
    return [QuarantineLine(*r) for r in rows], int(total)


def healthy(engine: Engine) -> bool:
    """The database answers."""
    with engine.connect() as conn:
        return conn.execute(columns(func.count()).select_from(CASES).where(_C.id == 0)).scalar_one() == 0
