"""Queueing the staff digest through the outbox: once per stamp, whoever asks and however often."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.settings import Settings
from bot.compose.digest import build_digest, digest_message, render_digest
from bot.staff.actions import digest_facts
from bot.adapters.store import OutboxRow, transaction


def digest_id(stamp: str, index: int, domain: str) -> str:
    return f"<digest-{stamp}.{index}@{domain}>"


def digest_now(engine: Engine, settings: Settings, as_of: datetime) -> tuple[str, str, str]:
    """(subject, text, html) of the digest as of a moment, covering the day before it."""
    since = as_of - timedelta(days=1)
    facts = digest_facts(engine, as_of=as_of, since=since, ack_target_hours=settings.policy.ack_target_hours)
    digest = build_digest(facts, as_of=as_of, since=since, zone=settings.zone)
    return render_digest(digest, settings.staff.language, Path(settings.paths.templates))


def queue_digest(engine: Engine, settings: Settings, as_of: datetime, stamp: str) -> bool:
    """Queue the digest for every recipient; False when this stamp was already queued."""
    domain = settings.smtp.from_address.rpartition("@")[2]
    with transaction(engine) as session:
        if session.exec(select(OutboxRow.id).where(OutboxRow.message_id == digest_id(stamp, 0, domain))).first():
            return False
    subject, text, html = digest_now(engine, settings, as_of)
    try:
        with transaction(engine) as session:
            for i, to in enumerate(settings.staff.digest_recipients):
                mid = digest_id(stamp, i, domain)
                raw = digest_message(subject, text, html, sender=settings.smtp.from_address,
                                     sender_name=settings.smtp.from_name, to=to, message_id=mid, date=as_of)
                session.add(OutboxRow(purpose="digest", message_id=mid, to_addr=to, automatic=False, raw=raw,
                                      next_attempt_at=as_of, created_at=as_of))
    except IntegrityError:  # another process queued it at the same moment
        return False
    return True


def daily_digest_due(settings: Settings, now: datetime) -> str:
    """The stamp (local date) of the daily digest that should exist by now: today's once its time has passed."""
    local = now.astimezone(settings.zone)
    day = local.date() if local.time() >= settings.staff.digest_time else local.date() - timedelta(days=1)
    return day.isoformat()
