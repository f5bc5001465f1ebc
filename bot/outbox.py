"""Sending what the outbox holds: claim due rows, send them, record the outcome.

Rows are written in the same transaction as the case change that caused them, so a crash
between recording and sending loses nothing: the next flush sends what is still pending.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select

from bot.mailer import Envelope, Mailer, SendResult
from bot.store import EventRow, OutboxRow, transaction

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class FlushReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Delay before the next try after `attempts` failures: base, 2x, 4x... capped at six hours."""
    return min(timedelta(seconds=base_seconds * 2 ** max(0, attempts - 1)), MAX_BACKOFF)


def flush(engine: Engine, mailer: Mailer, now: datetime, *, limit: int = 1000) -> FlushReport:
    """Send every pending row that is due; safe to call at any time, from any process."""
    with transaction(engine) as session:
        stmt = (
            select(OutboxRow.id, OutboxRow.to_addr, OutboxRow.raw)
            .where(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.id)  # type: ignore[arg-type]
            .limit(limit)
        )
        due = [Envelope(i, to, bytes(raw)) for i, to, raw in session.exec(stmt).all() if i is not None]
    if not due:
        return FlushReport()
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    settings = mailer.settings

    def record(result: SendResult) -> None:
        outcome = _record(engine, result, now, settings.max_attempts, settings.retry_base_seconds)
        if outcome:
            counts[outcome] += 1

    asyncio.run(mailer.send_many(due, on_result=record))
    return FlushReport(counts["sent"], counts["retrying"], counts["failed"])


def _record(engine: Engine, result: SendResult, now: datetime, max_attempts: int, base: float) -> str:
    """Record one send at once (its own transaction); returns sent | retrying | failed, or ""."""
    with transaction(engine) as session:
        row = session.get(OutboxRow, result.key)
        if row is None or row.status != "pending":
            return ""
        row.attempts += 1
        if result.ok:
            row.status, row.sent_at, row.last_error = "sent", now, ""
            outcome = "sent"
            log.info("sent outbox=%s purpose=%s case=%s", row.id, row.purpose, row.case_id)
            if row.case_id is not None:
                session.add(EventRow(case_id=row.case_id, at=now, kind="sent", detail=f"{row.purpose} {row.message_id}"))
        elif result.permanent or row.attempts >= max_attempts:
            row.status, row.last_error = "failed", result.error
            outcome = "failed"
            log.error("send failed for good outbox=%s case=%s: %s", row.id, row.case_id, result.error)
            if row.case_id is not None:
                session.add(EventRow(case_id=row.case_id, at=now, kind="send_failed",
                                     detail=f"{row.purpose}: {result.error}"))
        else:
            row.last_error = result.error
            row.next_attempt_at = now + backoff(row.attempts, base)
            outcome = "retrying"
            log.warning("send will be retried outbox=%s attempt=%s: %s", row.id, row.attempts, result.error)
        session.add(row)
    return outcome
