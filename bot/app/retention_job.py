"""The daily retention job under `run` (when `database.retention_days` or `mailbox.retention_days` is set):
purge the database, make the freed space unreadable, then expire processed mail in the mailbox.

It logs counts only: never a reference's requester, an address or a subject."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from bot.adapters.imap import NETWORK_ERRORS, Mailbox
from bot.adapters.mailbox_retention import MailboxRetention, expire_mail
from bot.adapters.oauth2 import TokenSource
from bot.adapters.store.engine import trouble
from bot.adapters.store.retention import PurgeReport, Wiped, processed_uids, purge, wipe
from bot.core.errors import MailboxError
from bot.settings import Settings

log = logging.getLogger(__name__)
MAILBOX_TROUBLE: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, MailboxError, DBAPIError)


@dataclass(frozen=True)
class RetentionRun:
    purged: PurgeReport | None = None
    wiped: Wiped | None = None
    mailbox: MailboxRetention | None = None


def daily_retention(settings: Settings, engine: Engine, clock: Callable[[], datetime],
                    tokens: TokenSource | None = None) -> RetentionRun:
    """One run of the job; database or mailbox trouble is logged (by class) and waits for the next day."""
    now = clock()
    purged = wiped = expired = None
    if settings.database.retention_days > 0:
        try:
            purged = purge(engine, now=now, retention_days=settings.database.retention_days, dry_run=False)
            wiped = wipe(engine) if purged.changed else None
            log.info("retention: erased personal data of %s closed case(s), %s message(s) (%s with no case), "
                     "%s sent mail(s)%s", len(purged.refs), purged.messages, purged.caseless, purged.outbox,
                     f"; {wiped.detail}" if wiped else "")
            if wiped is not None and not wiped.done:
                log.warning("retention: %s", wiped.detail)
        except DBAPIError as exc:
            log.warning("retention purge skipped: database trouble (%s)", trouble(exc))
    if settings.mailbox.retention_days > 0:
        try:
            uidvalidity, uids = processed_uids(engine, Mailbox(settings.mailbox).name)
            expired = expire_mail(settings.mailbox, now, uids, uidvalidity=uidvalidity, tokens=tokens)
            log.info("retention: %s processed mail(s) older than %s days %s", expired.moved + expired.deleted,
                     settings.mailbox.retention_days,
                     "deleted" if settings.mailbox.retention_action == "delete"
                     else f"moved to {settings.mailbox.retention_folder}")
        except MAILBOX_TROUBLE as exc:
            log.warning("mailbox retention skipped: %s", type(exc).__name__)
    return RetentionRun(purged, wiped, expired)
