"""Outgoing mail in the store: the one way in (`enqueue`), and the state of each row as workers send it.

Rows go pending -> claimed (by a worker) -> committing (final "." about to be written) -> sent; or
back to pending (retry), failed (refused for good), uncertain (may have been delivered: never sent
again, shown to staff). A claim names its worker, so a dead worker's rows can be taken back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, literal, update
from sqlalchemy import select as columns
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import CaseRow, EventRow, MessageRow, OutboxRow
from bot.core.model import IN_FLIGHT, Action, Delivery, EventKind
from bot.core.trust import address_domain, normalise_address, recipient_problem

log = logging.getLogger(__name__)
_IN_FLIGHT = [d.value for d in IN_FLIGHT]
_OUTBOX: Any = OutboxRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CaseMessage:
    """How an outgoing mail appears among the case's messages."""

    subject: str
    in_reply_to: str
    kinds: str
    language: str
    action: Action
    reason: str


@dataclass(frozen=True)
class Queued:
    """One mail to send, as serialised bytes, and what it belongs to."""

    purpose: str  # ack | reminder14 | warn-due | digest ...; part of the Message-ID
    message_id: str
    to_addr: str
    raw: bytes
    automatic: bool  # counts towards the limits on automatic mail
    case_id: int | None = None
    message: CaseMessage | None = None  # recorded among the case's messages
    note: tuple[EventKind, str] | None = None  # written to the case history
    actor: str = "bot"
    template: str = ""  # name.lang@version of the template it was written from
    internal: bool = False  # to staff (an address from the settings): special-use domains allowed
    lenient_domains: frozenset[str] = frozenset()  # old carrier addresses with RFC-violating dots, accepted


def enqueue(session: Session, mail: Queued, now: datetime, *, from_addr: str,
            own_addresses: frozenset[str] = frozenset()) -> bool:
    """The one way any outgoing mail is queued: its outbox row, and (for a case) its message and history
    line, in the caller's transaction. The Message-ID is unique, and so is a case's mail per purpose and
    recipient: queuing one twice fails at flush.

    Every recipient is checked first (`recipient_problem`: syntax, no localhost, single-label or
    special-use domain, never the bot's own address): a refused one queues nothing, writes why to the
    case history (never the address, nor in the log) and returns False."""
    if refused(session, mail, now, from_addr=from_addr, own_addresses=own_addresses):
        return False
    norm = normalise_address(mail.to_addr)
    session.add(OutboxRow(case_id=mail.case_id, purpose=mail.purpose, message_id=mail.message_id,
                          to_addr=mail.to_addr, to_norm=norm[:320], to_domain=norm.rpartition("@")[2][:255],
                          automatic=mail.automatic, raw=mail.raw, next_attempt_at=now,
                          created_at=now, template=mail.template[:120]))
    if mail.case_id is not None and mail.message is not None:
        m = mail.message
        session.add(MessageRow(case_id=mail.case_id, direction="out", message_id=mail.message_id,
                               in_reply_to=m.in_reply_to, from_addr=from_addr, to_addr=mail.to_addr,
                               subject=m.subject[:500], recorded_at=now, sent_at=now, kinds=m.kinds,
                               language=m.language, action=m.action.value, reason=m.reason, size=len(mail.raw)))
    if mail.case_id is not None and mail.note is not None:
        kind, detail = mail.note
        session.add(EventRow(case_id=mail.case_id, at=now, actor=mail.actor, kind=kind.value, detail=detail))
    session.flush()  # the unique Message-ID is checked here
    return True


def refused(session: Session, mail: Queued, now: datetime, *, from_addr: str,
            own_addresses: frozenset[str] = frozenset()) -> bool:
    """Whether `mail`'s recipient fails the check (then written to the case history, without the address).
    `enqueue` calls it; a composer may call it first, before it serialises anything."""
    problem = recipient_problem(mail.to_addr, {from_addr, *own_addresses}, internal=mail.internal,
                                lenient_domains=mail.lenient_domains)
    if not problem:
        return False
    log.warning("recipient refused, nothing queued: purpose=%s case=%s", mail.purpose, mail.case_id)
    if mail.case_id is not None:
        session.add(EventRow(case_id=mail.case_id, at=now, actor=mail.actor, kind=EventKind.RECIPIENT_REFUSED.value,
                             detail=f"{mail.purpose}: {problem}"[:1000]))
        session.flush()
    return True


def count_auto_sent(session: Session, address: str, *, day: datetime, hour: datetime,
                    caps: tuple[int, int, int]) -> tuple[int, int, int]:
    """Automatic mail queued to `address` since `day`, to its domain since `hour`, and in all since
    `hour`, in one query; each count stops at its cap (a limit only asks "this many yet?", so the
    work stays bounded by the limits, not by the size of the outbox). Counted on the normalised
    address (case folded, +tag removed): "Ruth+1@X.com" and "ruth@x.com" share one allowance."""
    norm = normalise_address(address)
    o = _OUTBOX.c
    auto = o.automatic == True  # noqa: E712 - "= true", which an index serves on PostgreSQL too (IS TRUE is not)

    def capped(cap: int, *where: Any) -> Any:
        rows = columns(literal(1)).select_from(_OUTBOX).where(auto, *where).limit(cap).subquery()
        return columns(func.count()).select_from(rows).scalar_subquery()

    per_sender, per_domain, in_all = caps
    session.flush()  # what this transaction queued counts too (a Core query does not flush for us)
    row = session.connection().execute(columns(
        capped(per_sender, o.to_norm == norm, o.created_at >= day),
        capped(per_domain, o.to_domain == address_domain(address).casefold(), o.created_at >= hour),
        capped(in_all, o.created_at >= hour),
    )).one()
    return int(row[0]), int(row[1]), int(row[2])


def queued(session: Session, message_id: str) -> bool:
    return session.exec(select(OutboxRow.id).where(OutboxRow.message_id == message_id)).first() is not None


# -- sending ---------------------------------------------------------------------------------------

def claim(engine: Engine, worker: str, now: datetime, limit: int) -> list[tuple[int, str, bytes]]:
    """Mark up to `limit` due rows as this worker's; rows another worker holds are skipped.
    Returns (key, recipient, raw) of each claimed row."""
    with transaction(engine) as session:
        ids = [i for i in session.exec(
            select(OutboxRow.id)
            .where(OutboxRow.status == Delivery.PENDING.value, OutboxRow.next_attempt_at <= now)
            .order_by(col(OutboxRow.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all() if i is not None]
        if not ids:
            return []
        session.exec(update(OutboxRow).where(
            col(OutboxRow.id).in_(ids), col(OutboxRow.status) == Delivery.PENDING.value,
        ).values(status=Delivery.CLAIMED.value, claimed_by=worker))
        rows = session.exec(select(OutboxRow.id, OutboxRow.to_addr, OutboxRow.raw).where(
            col(OutboxRow.id).in_(ids), OutboxRow.status == Delivery.CLAIMED.value, OutboxRow.claimed_by == worker,
        ).order_by(col(OutboxRow.id))).all()
        return [(i, to, bytes(raw)) for i, to, raw in rows if i is not None]


def mark_committing(engine: Engine, key: int, worker: str) -> bool:
    """Record durably that the row's final "." is about to be written; False if the claim was lost."""
    with transaction(engine) as session:
        moved = session.exec(update(OutboxRow).where(
            col(OutboxRow.id) == key, col(OutboxRow.status) == Delivery.CLAIMED.value,
            col(OutboxRow.claimed_by) == worker,
        ).values(status=Delivery.COMMITTING.value))
        return bool(moved.rowcount == 1)


def record(engine: Engine, key: int, decide: Callable[[OutboxRow], tuple[Delivery, str, EventKind | None, str]],
           now: datetime) -> Delivery | None:
    """Record the outcome of one send (its own transaction). `decide(row)` says the row's new status,
    its error text, and the history line to write; None when the row is no longer in flight."""
    with transaction(engine) as session:
        # not the message itself (raw, tens of KB): recording an outcome never reads it
        row = session.exec(select(OutboxRow).where(OutboxRow.id == key).options(defer(OutboxRow.raw))).first()  # type: ignore[arg-type]
        if row is None or row.status not in _IN_FLIGHT:
            return None
        row.claimed_by = ""
        row.attempts += 1
        status, error, event, detail = decide(row)
        row.status, row.last_error = status.value, error
        if status is Delivery.SENT:
            row.sent_at = now
            if row.purpose == "ack" and row.case_id is not None:  # the digest reads this, not the outbox
                session.exec(update(CaseRow).where(col(CaseRow.id) == row.case_id, col(CaseRow.acknowledged_at).is_(None))
                             .values(acknowledged_at=now))
        if event is not None:
            _event(session, row, now, event, detail)
        session.add(row)
        return status


def in_flight_holders(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return [h for h in session.exec(select(OutboxRow.claimed_by).where(
            col(OutboxRow.status).in_(_IN_FLIGHT)).distinct()).all()]


def release(engine: Engine, now: datetime, why: str, *, holder: str, keys: Sequence[int] | None = None) -> int:
    """Take back the in-flight rows of `holder` (only `keys`, if given): a claimed row is sent again;
    a committing one may have been delivered, so it becomes uncertain. Returns how many rows."""
    with transaction(engine) as session:
        query = select(OutboxRow).where(col(OutboxRow.status).in_(_IN_FLIGHT), OutboxRow.claimed_by == holder)
        if keys is not None:
            query = query.where(col(OutboxRow.id).in_(keys))
        rows = session.exec(query.with_for_update()).all()
        for row in rows:
            if row.status == Delivery.CLAIMED.value:  # its final "." was never written: safe to send again
                row.status = Delivery.PENDING.value
            else:
                row.status = Delivery.UNCERTAIN.value
                row.last_error = f"{why} after the message was handed over; it may have been delivered"
                _event(session, row, now, EventKind.SEND_UNCERTAIN,
                       f"{row.purpose} {row.message_id}: not sent again, check delivery")
                log.warning("send uncertain outbox=%s case=%s: %s", row.id, row.case_id, why)
            row.claimed_by = ""
            session.add(row)
        return len(rows)


def _event(session: Session, row: OutboxRow, now: datetime, kind: EventKind, detail: str) -> None:
    if row.case_id is not None:
        session.add(EventRow(case_id=row.case_id, at=now, kind=kind.value, detail=detail))
