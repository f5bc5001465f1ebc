"""The staff digest: made from the database at a moment, queued once per stamp, whoever asks and
however often."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bot.adapters.store.reads import digest_facts
from bot.core.digest import LINES_PER_SECTION, Digest, build_digest
from bot.settings import Settings

if TYPE_CHECKING:  # `digest --print` reads through Core only: no ORM, no outbox
    from bot.app.notify import Notifier


def digest_at(engine: Engine, settings: Settings, as_of: datetime) -> Digest:
    """The digest as of a moment, covering the day before it."""
    since = as_of - timedelta(days=1)
    facts = digest_facts(engine, as_of=as_of, since=since, ack_target_hours=settings.policy.ack_target_hours,
                         limit=LINES_PER_SECTION)
    return build_digest(facts, as_of=as_of, since=since, zone=settings.zone, console_url=settings.web.public_url)


def queue_digest(engine: Engine, notifier: Notifier, as_of: datetime, stamp: str) -> bool:
    """Queue the digest for every recipient; False when this stamp was already queued."""
    from sqlalchemy.exc import IntegrityError

    from bot.adapters.store.engine import transaction

    with transaction(engine) as session:
        if notifier.digest_queued(session, stamp):
            return False
    digest = digest_at(engine, notifier.settings, as_of)
    try:
        with transaction(engine) as session:
            notifier.queue_digest(session, digest, stamp, as_of)
    except IntegrityError:  # another process queued it at the same moment
        return False
    return True


def daily_digest_due(settings: Settings, now: datetime) -> str:
    """The stamp (local date) of the daily digest that should exist by now: today's once its time has passed."""
    local = now.astimezone(settings.zone)
    day = local.date() if local.time() >= settings.staff.digest_time else local.date() - timedelta(days=1)
    return day.isoformat()
