"""Sending what the outbox holds: claim due rows, send them, record each outcome at once.

Rows are written in the same transaction as the case change that caused them, so a crash
between recording and sending loses nothing: the next flush sends what is still pending.
A row is claimed by one worker (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and marked
"committing" just before the final "." of its SMTP transaction (see bot/adapters/smtp.py): a row
left "claimed" by a dead worker is sent again, one left "committing" is never sent twice but marked
"uncertain" and shown to staff in the case history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from bot.adapters.locks import Presence
from bot.adapters.smtp import Envelope, Mailer, SendOutcome, SendResult
from bot.adapters.store import outbox as store
from bot.adapters.store.tables import OutboxRow
from bot.core.model import Delivery, EventKind

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)


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
    due = [Envelope(key, to, raw) for key, to, raw in store.claim(engine, worker.id, now, limit)]
    if not due:
        return FlushReport()
    counts = {Delivery.SENT: 0, Delivery.PENDING: 0, Delivery.FAILED: 0, Delivery.UNCERTAIN: 0}
    settings = mailer.settings

    def record(result: SendResult) -> None:
        if result.outcome is SendOutcome.RELEASED:
            return
        outcome = store.record(engine, result.key, _decision(result, now, settings.max_attempts,
                                                             settings.retry_base_seconds), now)
        if outcome is not None:
            counts[outcome] += 1

    try:
        asyncio.run(mailer.send_many(due, on_result=record,
                                     commit=lambda key: store.mark_committing(engine, key, worker.id)))
    finally:
        # nothing of ours may stay in flight (e.g. after an exception in the loop)
        store.release(engine, now, "flush ended before its outcome was known", holder=worker.id,
                      keys=[e.key for e in due])
    return FlushReport(counts[Delivery.SENT], counts[Delivery.PENDING], counts[Delivery.FAILED],
                       counts[Delivery.UNCERTAIN])


def recover(engine: Engine, worker: Presence, now: datetime) -> int:
    """Take back rows held by workers that are gone; returns how many rows were taken back."""
    dead = [h for h in store.in_flight_holders(engine) if not worker.is_alive(h)]
    return sum(store.release(engine, now, f"worker {holder} stopped", holder=holder) for holder in dead)


def brief(error: str) -> str:
    """A send error as the log shows it: the SMTP reply code or the exception class, never the server's
    words (a refusal quotes the recipient: "550 5.1.1 <x@example.com>: unknown user"). The whole text
    stays on the outbox row for staff."""
    head = error.split(maxsplit=1)[0] if error.strip() else "unknown"
    return head if head.isdigit() else head.split(":", 1)[0][:80]


Decide = Callable[[OutboxRow], tuple[Delivery, str, EventKind | None, str]]


def _decision(result: SendResult, now: datetime, max_attempts: int, base: float) -> Decide:
    """How to record a send's result on its row: new status, error, history line."""
    def decide(row: OutboxRow) -> tuple[Delivery, str, EventKind | None, str]:
        if result.outcome is SendOutcome.SENT:
            log.info("sent outbox=%s purpose=%s case=%s", row.id, row.purpose, row.case_id)
            return Delivery.SENT, "", EventKind.SENT, f"{row.purpose} {row.message_id}"
        if result.outcome is SendOutcome.UNCERTAIN:
            log.warning("send uncertain outbox=%s case=%s: %s", row.id, row.case_id, brief(result.error))
            return (Delivery.UNCERTAIN, result.error, EventKind.SEND_UNCERTAIN,
                    f"{row.purpose} {row.message_id}: no answer after the message was handed over "
                    f"({result.error}); not sent again, check delivery")
        if result.outcome is SendOutcome.FAILED or row.attempts >= max_attempts:
            log.error("send failed for good outbox=%s case=%s: %s", row.id, row.case_id, brief(result.error))
            return Delivery.FAILED, result.error, EventKind.SEND_FAILED, f"{row.purpose}: {result.error}"
        row.next_attempt_at = now + backoff(row.attempts, base)
        log.warning("send will be retried outbox=%s attempt=%s: %s", row.id, row.attempts, brief(result.error))
        return Delivery.PENDING, result.error, None, ""
    return decide
