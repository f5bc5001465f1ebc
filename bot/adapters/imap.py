"""The IMAP side: one thin adapter around imapclient. It fetches bytes and sets flags; nothing else.

Messages larger than mailbox.max_message_bytes are fetched in part: the header (at most
MAX_FETCHED_HEADER bytes) and up to a few text parts (from BODYSTRUCTURE), never the attachments,
joined as the server sent them. Whole messages are fetched in groups within mailbox.fetch_batch_bytes.
A message that cannot be fetched for a reason of its own comes out as a FetchFailed, never as an
exception that would end the pass (bot.app.service counts it against the UID).
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import ssl
import time
from collections.abc import Collection, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from bot.adapters.oauth2 import TokenSource
from bot.adapters.tls import tls_context
from bot.core.errors import MailboxError, OAuth2Error
from bot.core.parse.limits import MAX_FETCHED_HEADER
from bot.settings import MailboxSettings

log = logging.getLogger(__name__)
STORE_BATCH = 1000  # UIDs per STORE or MOVE

# Network trouble after which the watcher reconnects (never a reason to stop).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError, socket.timeout, ssl.SSLError, IMAPClient.AbortError, EOFError,
)
MAX_TEXT_PARTS = 5
MAX_TEXT_PART_BYTES = 2 * 1024 * 1024
# The sender's own MIME header lines at the top of a mail fetched in part (a field name at a line start).
_SENDER_CONTENT = re.compile(rb"(?im)^(?=content-(?:type|transfer-encoding)[ \t]*:)")


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes
    size: int  # RFC822.SIZE as the server reports it
    truncated: bool


@dataclass(frozen=True)
class FetchFailed:
    """A mail the adapter could not fetch for a reason of its own (not the network's)."""

    uid: int
    size: int
    reason: str


@dataclass(frozen=True)
class Selected:
    uidvalidity: int
    uidnext: int
    can_idle: bool


class Mailbox:
    """One logged-in connection with the configured folder selected."""

    def __init__(self, settings: MailboxSettings, *, tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self.name = f"{settings.username}@{settings.host}:{settings.port}/{settings.folder}"
        self._client: IMAPClient | None = None
        self.tokens = tokens  # needed with mailbox.auth = "oauth2"
        self._signed_in_with: str | None = None  # the token this session signed in with (never logged)
        self.in_flight: tuple[int, ...] = ()  # the UIDs of a FETCH that raised (see fetch)
        self.body_fetches = 0  # FETCH commands of whole mails so far (the byte budget's test reads these)
        self.largest_fetch_bytes = 0  # the largest sum of RFC822.SIZE one of them asked for

    # -- connection ----------------------------------------------------------------------------
    def _build_client(self) -> IMAPClient:
        s = self.settings
        ctx = tls_context(s.tls_verify, s.ca_file)
        client = IMAPClient(s.host, port=s.port, ssl=s.security == "ssl", ssl_context=ctx, timeout=s.timeout_seconds)
        if s.security == "starttls":
            client.starttls(ctx)  # raises when the server does not offer it: never fall back to plain text
        return client

    def connect(self) -> Selected:
        self.close()
        client = self._build_client()
        try:
            if self.settings.auth == "oauth2":
                self._oauth2_login(client)
            else:
                client.login(self.settings.username, self.settings.password.get_secret_value())
        except IMAPClient.Error as exc:
            client.shutdown()
            raise MailboxError(f"IMAP login as {self.settings.username} refused: {exc}") from None
        except BaseException:
            client.shutdown()
            raise
        try:
            info = client.select_folder(self.settings.folder)
            if self.settings.processed_folder and not client.folder_exists(self.settings.processed_folder):
                client.create_folder(self.settings.processed_folder)
        except BaseException:  # e.g. the folder is not there: no session left open behind
            client.shutdown()
            raise
        self._client = client
        return Selected(
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info.get(b"UIDNEXT", 0)),
            can_idle=client.has_capability("IDLE"),
        )

    def _oauth2_login(self, client: IMAPClient) -> None:
        """SASL XOAUTH2 (or OAUTHBEARER when the server offers only that) with a token from [oauth2].

        A refused token is dropped and a new one tried once; then the refusal is a MailboxError, so
        the watcher backs off and says so in its log. No token ever appears in a message.
        """
        if self.tokens is None:
            raise MailboxError('mailbox.auth = "oauth2" but no token source was given')
        user = self.settings.username
        if client.has_capability("AUTH=XOAUTH2") or not client.has_capability("AUTH=OAUTHBEARER"):
            mechanism = "XOAUTH2"  # also when the server names neither: Microsoft does not always list it
        else:
            mechanism = "OAUTHBEARER"
        for attempt in (1, 2):
            try:
                token = self.tokens.token()
            except OAuth2Error as exc:
                raise MailboxError(f"IMAP sign-in as {user}: {exc}") from None
            try:
                if mechanism == "XOAUTH2":
                    client.oauth2_login(user, token)
                else:
                    client.oauthbearer_login(user, token)
                self._signed_in_with = token
                return
            except IMAPClient.Error as exc:
                self.tokens.invalidate(token)
                reason = _server_words(exc)
                if attempt == 1:
                    log.warning("IMAP %s sign-in as %s refused (%s); renewing the token once", mechanism, user, reason)
                    continue
                raise MailboxError(f"IMAP {mechanism} sign-in as {user} refused with a renewed token: {reason}") from None

    def after_trouble(self) -> None:
        """After the connection broke: if the server's last words were a BYE about the token (Microsoft's
        "Session invalidated - AccessTokenExpired", which may come in answer to any command), drop the
        token so the reconnect signs in with a new one."""
        store = getattr(getattr(self._client, "_imap", None), "untagged_responses", None)
        if not isinstance(store, dict) or self.tokens is None:
            return
        words = b" ".join(w for w in store.get("BYE", []) if isinstance(w, bytes)).decode(errors="replace")
        if _token_ended(words) and self._signed_in_with is not None:
            log.warning("IMAP server ended the session: %s", words[:200])
            self.tokens.invalidate(self._signed_in_with)  # only that token: another session may have a new one

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise MailboxError("not connected")
        return self._client

    def close(self) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        try:
            client.logout()
        except Exception:  # the connection may already be gone; nothing to save
            try:
                client.shutdown()
            except Exception:
                pass

    # -- reading -------------------------------------------------------------------------------
    def uids_after(self, last_uid: int) -> list[int]:
        # "n:*" always includes the highest UID even when it is below n, hence the filter.
        found = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)

    def unseen_uids(self) -> list[int]:
        return sorted(self.client.search(["UNSEEN"]))

    def all_uids(self) -> list[int]:
        return sorted(self.client.search(["ALL"]))

    def fetch(self, uids: Iterable[int], *, alone: Collection[int] = ()) -> Iterator[Fetched | FetchFailed]:
        """Yield messages in UID order; big ones in part; a mail that cannot be fetched as a FetchFailed.

        Whole mails are fetched in groups whose RFC822.SIZE adds up to at most mailbox.fetch_batch_bytes
        (a single mail over that budget alone), so one FETCH never holds more than the budget in memory.
        The UIDs in `alone` get FETCH commands of their own (a server that hangs up on one mail, as
        Dovecot does when it cannot read a mail, shows which one). Network trouble propagates, with the
        UIDs of the command in flight in `in_flight`; any other error is the mail's own.
        """
        ordered = sorted(uids)
        for start in range(0, len(ordered), self.settings.fetch_batch):
            chunk = ordered[start : start + self.settings.fetch_batch]
            sizes: dict[int, int] = {}
            for part in [[u for u in chunk if u not in alone], *([u] for u in chunk if u in alone)]:
                failed = yield from self._sizes(part, sizes)
                for uid in failed:
                    yield from self._sizes([uid], sizes)
            group: list[tuple[int, int]] = []
            for uid in chunk:
                if uid not in sizes:
                    continue  # expunged meanwhile, or failed above
                size = sizes[uid]
                if size > self.settings.max_message_bytes:
                    yield from self._whole(group)
                    group = []
                    yield self._in_part(uid, size)
                    continue
                if group and (uid in alone or group[-1][0] in alone
                              or sum(s for _u, s in group) + size > self.settings.fetch_batch_bytes):
                    yield from self._whole(group)
                    group = []
                group.append((uid, size))
            yield from self._whole(group)

    def _sizes(self, uids: list[int], into: dict[int, int]) -> Generator[FetchFailed, None, list[int]]:
        """RFC822.SIZE of `uids` into `into`; when that fails for a reason not the network's, the UIDs
        to ask one by one (or, for one UID, a FetchFailed)."""
        if not uids:
            return []
        try:
            got = self._command(uids, ["RFC822.SIZE"])
        except NETWORK_ERRORS:
            raise
        except Exception as exc:
            if len(uids) > 1:
                return uids
            yield FetchFailed(uids[0], 0, _reason("fetching the size", exc))
            return []
        into.update((uid, int(got[uid].get(b"RFC822.SIZE", 0))) for uid in uids if uid in got)
        return []

    def _command(self, uids: list[int], items: list[str]) -> dict[int, Any]:
        """One FETCH; the UIDs it asks for stay in `in_flight` if it raises."""
        self.in_flight = tuple(uids)
        found: dict[int, Any] = self.client.fetch(uids, items)
        self.in_flight = ()
        return found

    def _whole(self, group: list[tuple[int, int]]) -> Iterator[Fetched | FetchFailed]:
        """One FETCH of whole mails; when the server or the parsing of its answer fails, one by one."""
        if not group:
            return
        try:
            self.body_fetches += 1
            self.largest_fetch_bytes = max(self.largest_fetch_bytes, sum(size for _uid, size in group))
            whole = self._command([uid for uid, _size in group], ["BODY.PEEK[]"])
        except NETWORK_ERRORS:
            raise
        except Exception as exc:
            if len(group) == 1:
                yield FetchFailed(group[0][0], group[0][1], _reason("fetching", exc))
                return
            for one in group:
                yield from self._whole([one])
            return
        for uid, size in group:
            if uid in whole and b"BODY[]" in whole[uid]:
                yield Fetched(uid, bytes(whole[uid][b"BODY[]"]), size, False)

    def _in_part(self, uid: int, size: int) -> Fetched | FetchFailed:
        try:
            return Fetched(uid, self._fetch_in_part(uid), size, True)
        except NETWORK_ERRORS:
            raise
        except Exception as exc:  # whatever the mail holds: it is the mail's failure, not the loop's
            return FetchFailed(uid, size, _reason("fetching in part", exc))

    def _fetch_in_part(self, uid: int) -> bytes:
        """The header as it came (at most MAX_FETCHED_HEADER bytes) and up to MAX_TEXT_PARTS text parts.

        Nothing the sender wrote is parsed and written again: the bytes are joined as they came,
        and for a multipart mail a Content-Type of the bot's own (with a random boundary) holds the
        text parts, the sender's Content-Type and Content-Transfer-Encoding renamed out of the way.
        """
        header = self._header(uid)
        try:
            structure = self._command([uid], ["BODYSTRUCTURE"]).get(uid, {}).get(b"BODYSTRUCTURE")
        except NETWORK_ERRORS:
            raise
        except Exception as exc:  # e.g. a structure nested past what imapclient's parser can recurse into
            log.warning("uid=%s: BODYSTRUCTURE unreadable (%s); taking the header alone", uid, type(exc).__name__)
            structure = None
        sections = list(_text_sections(structure))[:MAX_TEXT_PARTS] if structure is not None else []
        head = header if header.endswith(b"\r\n\r\n") else header.rstrip(b"\r\n") + b"\r\n\r\n"
        if not sections:
            return head
        if structure is not None and not structure.is_multipart:
            return head + self._section(uid, "1")
        boundary = f"=_bot_partial_{uid}_{secrets.token_hex(12)}".encode()
        parts: list[bytes] = []
        for section in sections:
            mime = self._fetch_item(uid, f"BODY.PEEK[{section}.MIME]<0.{MAX_FETCHED_HEADER}>", f"BODY[{section}.MIME]")
            parts.append(mime.rstrip(b"\r\n") + b"\r\n\r\n" + self._section(uid, section))
        own = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n'
        top = _SENDER_CONTENT.sub(b"X-Original-", header.rstrip(b"\r\n")) + b"\r\n" + own + b"\r\n"
        sep = b"--" + boundary
        return top + b"".join(sep + b"\r\n" + p + b"\r\n" for p in parts) + sep + b"--\r\n"

    def _header(self, uid: int) -> bytes:
        """BODY[HEADER], cut at MAX_FETCHED_HEADER bytes (parse marks a header that long as cut)."""
        return self._fetch_item(uid, f"BODY.PEEK[HEADER]<0.{MAX_FETCHED_HEADER}>", "BODY[HEADER]")

    def _fetch_item(self, uid: int, item: str, answer: str) -> bytes:
        got = self._command([uid], [item]).get(uid, {})
        prefix = answer.encode()
        for key, value in got.items():
            if isinstance(key, bytes) and key.startswith(prefix) and isinstance(value, bytes):
                return bytes(value)
        return b""

    def _section(self, uid: int, section: str) -> bytes:
        return self._fetch_item(uid, f"BODY.PEEK[{section}]<0.{MAX_TEXT_PART_BYTES}>", f"BODY[{section}]")

    # -- marking -------------------------------------------------------------------------------
    def mark_processed(self, uids: list[int], *, seen: bool = True) -> None:
        for start in range(0, len(uids), STORE_BATCH):  # Dovecot refuses a command line past 64 KiB
            chunk = uids[start : start + STORE_BATCH]
            if seen:
                self.client.add_flags(chunk, [b"\\Seen"], silent=True)
            if self.settings.processed_folder:
                self.client.move(chunk, self.settings.processed_folder)

    # -- waiting -------------------------------------------------------------------------------
    def announced_mail(self) -> bool:
        """Did the server announce new mail (EXISTS, RECENT) in an answer to one of our commands
        since the last call? imapclient leaves such announcements in imaplib's store of untagged
        responses, and a SEARCH whose answer announces a new mail does not always include it."""
        store = getattr(getattr(self.client, "_imap", None), "untagged_responses", None)
        if not isinstance(store, dict):
            return False
        return bool(store.pop("EXISTS", None)) | bool(store.pop("RECENT", None))

    def mail_soon(self, seconds: float, step: float = 0.05) -> bool:
        """NOOP every `step` for up to `seconds`: True as soon as the server reports new mail.

        Used right after a busy pass: Dovecot answers a NOOP with new mail at once, while under
        IDLE it holds notifications back for up to half a second.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            _text, responses = self.client.noop()
            if _announces_mail(responses):
                return True
            time.sleep(step)
        return False

    def wait_for_mail(self, max_seconds: float, should_stop: Any) -> None:
        """Return when new mail may have arrived, after max_seconds, or soon after should_stop()."""
        deadline = time.monotonic() + max_seconds
        client = self.client
        if not client.has_capability("IDLE"):
            end = min(deadline, time.monotonic() + self.settings.poll_seconds)
            while time.monotonic() < end:
                if should_stop():
                    return
                time.sleep(0.2)
            client.noop()
            return
        client.idle()
        try:
            if self.announced_mail():  # sent before "+ idling": imapclient kept it, idle_check will not see it
                return
            while time.monotonic() < deadline and not should_stop():
                wait = min(1.0, max(0.05, deadline - time.monotonic()))
                started = time.monotonic()
                responses = client.idle_check(timeout=wait)
                bye = next((r for r in responses if r and r[0] == b"BYE"), None)
                if bye is not None:
                    words = b" ".join(p for p in bye[1:] if isinstance(p, bytes)).decode(errors="replace")[:200]
                    if self.tokens is not None and self._signed_in_with is not None and _token_ended(words):
                        # e.g. Microsoft's "Session invalidated - AccessTokenExpired"
                        self.tokens.invalidate(self._signed_in_with)
                    raise ConnectionError(f"IMAP server said BYE during IDLE: {words}")
                if not responses and time.monotonic() - started < wait / 2:
                    # imapclient swallows EOF: the socket was readable yet carried nothing
                    raise ConnectionError("IMAP connection closed during IDLE")
                if _announces_mail(responses):
                    return
        finally:
            client.idle_done()


def _token_ended(words: str) -> bool:
    """Whether a BYE says the session's access token ran out or was revoked."""
    lowered = words.lower()
    return "token" in lowered or "expired" in lowered


def _reason(doing: str, exc: BaseException) -> str:
    """Why a mail failed, for the quarantine: the exception class and its first words, printable only."""
    words = "".join(c if c.isprintable() else " " for c in str(exc)[:120])
    return f"{doing}: {type(exc).__name__}: {' '.join(words.split())}"[:200]


def _server_words(exc: BaseException) -> str:
    """What the server answered, short (imaplib's error text; no token: that is never echoed)."""
    return " ".join(str(exc).split())[:200]


def _announces_mail(responses: list[Any]) -> bool:
    """Whether untagged responses such as (4, b"EXISTS") say that new mail arrived."""
    return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)


def _text_sections(structure: Any, prefix: str = "") -> Iterator[str]:
    """IMAP section numbers of the text/plain and text/html parts, outside attached messages."""
    if structure.is_multipart:
        for i, part in enumerate(structure[0], 1):
            yield from _text_sections(part, f"{prefix}.{i}" if prefix else str(i))
        return
    maintype = bytes(structure[0] or b"").lower()
    subtype = bytes(structure[1] or b"").lower()
    if maintype == b"text" and subtype in (b"plain", b"html"):
        yield prefix or "1"


__all__ = ["NETWORK_ERRORS", "FetchFailed", "Fetched", "IMAPClientError", "Mailbox", "MailboxError", "Selected"]
