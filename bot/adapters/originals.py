"""Customer mail read back from the mailbox, whole and unchanged, for the console and the evidence pack.

Bodies are not stored by default (database.keep_bodies), so a case page or an evidence pack fetches
each inbound mail by the UID it was taken in with (BODY.PEEK[]: nothing is marked \\Seen, the folder is
opened read-only). A mail moved to mailbox.processed_folder, or a folder whose UIDs were renumbered,
is found again by its Message-ID; a mail whose Message-ID does not match is never handed out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from imapclient import IMAPClient

from bot.adapters.imap import NETWORK_ERRORS, Mailbox
from bot.core.errors import MailboxError
from bot.settings import MailboxSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wanted:
    message_id: str
    uid: int | None


def _message_id(raw: bytes) -> str:
    head = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
    return " ".join(str(head.get("Message-ID", "")).split())


def _matches(raw: bytes, message_id: str) -> bool:
    found = _message_id(raw)
    # mail without a Message-ID got a synthetic one at intake: the UID alone identifies it
    return found == message_id or (not found and message_id.startswith("<synthetic-"))


def fetch_originals(settings: MailboxSettings, wanted: Sequence[Wanted], *, timeout: float = 15.0) -> dict[str, bytes]:
    """The raw bytes of each wanted mail that the mailbox still holds, by Message-ID.
    Raises MailboxError when the mailbox cannot be reached (with the reason, never a password)."""
    if not wanted:
        return {}
    box = Mailbox(settings.model_copy(update={"timeout_seconds": min(settings.timeout_seconds, timeout)}))
    found: dict[str, bytes] = {}
    try:
        box.connect()
        client = box.client
        folders = [settings.folder] + ([settings.processed_folder] if settings.processed_folder else [])
        for index, folder in enumerate(folders):
            client.select_folder(folder, readonly=True)
            missing = [w for w in wanted if w.message_id not in found]
            if not missing:
                break
            if index == 0:  # by UID first: one FETCH for all
                uids = sorted({w.uid for w in missing if w.uid})
                data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
                for w in missing:
                    raw = data.get(w.uid, {}).get(b"BODY[]") if w.uid else None
                    if raw is not None and _matches(bytes(raw), w.message_id):
                        found[w.message_id] = bytes(raw)
                missing = [w for w in missing if w.message_id not in found]
            for w in missing:
                if w.message_id.startswith("<synthetic-"):
                    continue
                hits = client.search(["HEADER", "Message-ID", w.message_id.strip("<>")])
                if hits:
                    data = client.fetch(hits[:5], ["BODY.PEEK[]"])
                    for uid in sorted(data):
                        raw = bytes(data[uid].get(b"BODY[]", b""))
                        if raw and _matches(raw, w.message_id):
                            found[w.message_id] = raw
                            break
    except (*NETWORK_ERRORS, MailboxError, IMAPClient.Error) as exc:
        log.warning("mailbox unreachable for reading mail back: %s", type(exc).__name__)
        raise MailboxError(f"the mailbox could not be read ({type(exc).__name__}: {exc})") from None
    finally:
        box.close()
    return found
