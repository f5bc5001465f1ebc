"""Sending what the outbox holds: claim due rows, send them, record each outcome at once.

Rows are written in the same transaction as the case change that caused them, so a crash
between recording and sending loses nothing: the next flush sends what is still pending.
A row is claimed by one worker (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and marked
"committing" just before the final "." of its SMTP transaction (see bot/mailer.py): a row left
"claimed" by a dead worker is sent again, one left "committing" is never sent twice but marked
"uncertain" and shown to staff in the case history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.adapters.smtp import Envelope, Mailer, SendResult
from bot.adapters.store import EventRow, OutboxRow, transaction
from bot.adapters.locks import Presence

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
IN_FLIGHT = ("claimed", "committing")


@dataclass(frozen=True)
class FlushReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    uncertain: int = 0


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Delay before the next try after `attempts` failures: base, 2x, 4x... capped at six hours."""
    return min(timedelta(seconds=base_seconds * 2 ** max(0, attempts - 1)), MAX_BACKOFF)


def flush(engine: Engine, mailer: Mailer, worker: Presence, now: datetime, *, limit: int = 1000) -> FlushReport:
    """Send every pending row that is due; safe to call at any time, from any number of processes."""
    recover(engine, worker, now)
    due = claim(engine, worker.id, now, limit)
    if not due:
        return FlushReport()
    counts = {"sent": 0, "retrying": 0, "failed": 0, "uncertain": 0}
    settings = mailer.settings

    def commit(key: int) -> bool:
        with transaction(engine) as session:
            moved = session.exec(update(OutboxRow).where(
                col(OutboxRow.id) == key, col(OutboxRow.status) == "claimed", col(OutboxRow.claimed_by) == worker.id,
            ).values(status="committing"))
            return bool(moved.rowcount == 1)

    def record(result: SendResult) -> None:
        outcome = _record(engine, result, now, settings.max_attempts, settings.retry_base_seconds)
        if outcome:
            counts[outcome] += 1

    try:
        asyncio.run(mailer.send_many(due, on_result=record, commit=commit))
    finally:
        _settle(engine, worker.id, [e.key for e in due], now)
    return FlushReport(counts["sent"], counts["retrying"], counts["failed"], counts["uncertain"])


def claim(engine: Engine, worker: str, now: datetime, limit: int) -> list[Envelope]:
    """Mark up to `limit` due rows as this worker's; rows another worker holds are skipped."""
    with transaction(engine) as session:
        ids = [i for i in session.exec(
            select(OutboxRow.id)
            .where(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now)
            .order_by(col(OutboxRow.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all() if i is not None]
        if not ids:
            return []
        session.exec(update(OutboxRow).where(
            col(OutboxRow.id).in_(ids), col(OutboxRow.status) == "pending",
        ).values(status="claimed", claimed_by=worker))
        rows = session.exec(select(OutboxRow.id, OutboxRow.to_addr, OutboxRow.raw).where(
            col(OutboxRow.id).in_(ids), OutboxRow.status == "claimed", OutboxRow.claimed_by == worker,
        ).order_by(col(OutboxRow.id))).all()
        return [Envelope(i, to, bytes(raw)) for i, to, raw in rows if i is not None]


def recover(engine: Engine, worker: Presence, now: datetime) -> int:
    """Take back rows held by workers that are gone; returns how many rows were taken back."""
    with transaction(engine) as session:
        holders = session.exec(select(OutboxRow.claimed_by).where(
            col(OutboxRow.status).in_(IN_FLIGHT)).distinct()).all()
    dead = [h for h in holders if not worker.is_alive(h)]
    taken = 0
    for holder in dead:
        with transaction(engine) as session:
            rows = session.exec(select(OutboxRow).where(
                col(OutboxRow.status).in_(IN_FLIGHT), OutboxRow.claimed_by == holder).with_for_update()).all()
            _release(session, rows, now, f"worker {holder} stopped")
            taken += len(rows)
    return taken


def _settle(engine: Engine, worker: str, keys: Sequence[int], now: datetime) -> None:
    """After a flush, nothing of ours may stay in flight (e.g. after an exception in the loop)."""
    with transaction(engine) as session:
        rows = session.exec(select(OutboxRow).where(
            col(OutboxRow.id).in_(keys), col(OutboxRow.status).in_(IN_FLIGHT), OutboxRow.claimed_by == worker)).all()
        _release(session, rows, now, "flush ended before its outcome was known")


def _release(session: Session, rows: Sequence[OutboxRow], now: datetime, why: str) -> None:
    for row in rows:
        if row.status == "claimed":  # its final "." was never written: safe to send again
            row.status = "pending"
        else:
            row.status, row.last_error = "uncertain", f"{why} after the message was handed over; it may have been delivered"
            _event(session, row, now, "send_uncertain", f"{row.purpose} {row.message_id}: not sent again, check delivery")
            log.warning("send uncertain outbox=%s case=%s: %s", row.id, row.case_id, why)
        row.claimed_by = ""
        session.add(row)


def _event(session: Session, row: OutboxRow, now: datetime, kind: str, detail: str) -> None:
    if row.case_id is not None:
        session.add(EventRow(case_id=row.case_id, at=now, kind=kind, detail=detail))


def _record(engine: Engine, result: SendResult, now: datetime, max_attempts: int, base: float) -> str:
    """Record one send (its own transaction); returns sent | retrying | failed | uncertain, or ""."""
    with transaction(engine) as session:
        row = session.get(OutboxRow, result.key)
        if row is None or row.status not in IN_FLIGHT:
            return ""
        if result.outcome == "released":
            return ""
        row.claimed_by = ""
        row.attempts += 1
        if result.outcome == "sent":
            row.status, row.sent_at, row.last_error = "sent", now, ""
            outcome = "sent"
            log.info("sent outbox=%s purpose=%s case=%s", row.id, row.purpose, row.case_id)
            _event(session, row, now, "sent", f"{row.purpose} {row.message_id}")
        elif result.outcome == "uncertain":
            row.status, row.last_error = "uncertain", result.error
            outcome = "uncertain"
            log.warning("send uncertain outbox=%s case=%s: %s", row.id, row.case_id, result.error)
            _event(session, row, now, "send_uncertain",
                   f"{row.purpose} {row.message_id}: no answer after the message was handed over ({result.error}); "
                   "not sent again, check delivery")
        elif result.outcome == "failed" or row.attempts >= max_attempts:
            row.status, row.last_error = "failed", result.error
            outcome = "failed"
            log.error("send failed for good outbox=%s case=%s: %s", row.id, row.case_id, result.error)
            _event(session, row, now, "send_failed", f"{row.purpose}: {result.error}")
        else:
            row.status, row.last_error = "pending", result.error
            row.next_attempt_at = now + backoff(row.attempts, base)
            outcome = "retrying"
            log.warning("send will be retried outbox=%s attempt=%s: %s", row.id, row.attempts, result.error)
        session.add(row)
    return outcome
