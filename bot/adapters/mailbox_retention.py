"""Mailbox retention (off by default): processed mail older than `mailbox.retention_days` leaves the
mailbox, moved to `mailbox.retention_folder` or deleted (`retention_action`), once a day under `run`.

"Processed" is what the bot took in (the UIDs its ledger holds for the folder) and, when mail is moved
to `mailbox.processed_folder`, everything there. Age is the server's arrival date (IMAP SEARCH BEFORE).
Quarantined mail is left alone: staff have to look at it. One connection of the bot's own `Mailbox`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from imapclient import IMAPClient

from bot.adapters.imap import STORE_BATCH, Mailbox
from bot.adapters.oauth2 import TokenSource
from bot.core.errors import MailboxError
from bot.settings import MailboxSettings


@dataclass(frozen=True)
class MailboxRetention:
    moved: int = 0
    deleted: int = 0


def expire_mail(settings: MailboxSettings, now: datetime, processed: Iterable[int] | None = None, *,
                uidvalidity: int | None = None, tokens: TokenSource | None = None) -> MailboxRetention:
    """Move or delete processed mail that arrived before `retention_days` days ago.

    `processed`: the UIDs of `settings.folder` the bot took in (not quarantined) under `uidvalidity`;
    a folder whose UIDVALIDITY changed since is left alone."""
    if settings.retention_days <= 0:
        return MailboxRetention()
    before = (now - timedelta(days=settings.retention_days)).date()
    mailbox = Mailbox(settings, tokens=tokens)
    try:
        selected = mailbox.connect()
        client = mailbox.client
        done = 0
        into_itself = settings.retention_action == "move" and settings.retention_folder == settings.folder
        if processed is not None and not into_itself and uidvalidity in (None, selected.uidvalidity):
            wanted = set(processed)
            done += _expire(client, settings, [u for u in _older(client, before) if u in wanted])
        folder = settings.processed_folder
        if folder and folder != settings.retention_folder and client.folder_exists(folder):
            client.select_folder(folder)
            done += _expire(client, settings, _older(client, before))
    except IMAPClient.Error as exc:  # a folder refused, a MOVE refused: tried again tomorrow
        raise MailboxError(f"mailbox retention: the server refused ({type(exc).__name__})") from None
    finally:
        mailbox.close()
    return MailboxRetention(moved=done) if settings.retention_action == "move" else MailboxRetention(deleted=done)


def _older(client: IMAPClient, before: date) -> list[int]:
    return sorted(int(u) for u in client.search(["BEFORE", before]))


def _expire(client: IMAPClient, settings: MailboxSettings, uids: list[int]) -> int:
    if not uids:
        return 0
    move = settings.retention_action == "move"
    if move and not client.folder_exists(settings.retention_folder):
        client.create_folder(settings.retention_folder)
    for start in range(0, len(uids), STORE_BATCH):  # Dovecot refuses a command line past 64 KiB
        chunk = uids[start:start + STORE_BATCH]
        if move:
            client.move(chunk, settings.retention_folder)
        else:
            if not client.has_capability("UIDPLUS"):  # a plain EXPUNGE would remove staff's \Deleted mail too
                raise MailboxError('mailbox.retention_action = "delete" needs a server with UIDPLUS (UID EXPUNGE)')
            client.add_flags(chunk, [b"\\Deleted"], silent=True)
            client.uid_expunge(chunk)
    return len(uids)
