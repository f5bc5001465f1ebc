"""The SMTP side: one class around aiosmtplib. Sends bytes; says how each send ended.

SMTP has no exactly-once delivery: a message whose final "." reached the server may be
delivered even if the "250" never comes back. So the DATA phase is split: the body goes out
first, then the caller is asked (`commit`) to record "committing" durably, and only then is the
final "." written. A crash before that record leaves the server with an unfinished message,
which it discards, so the row is safe to send again; a crash after it leaves a row the caller
knows may have gone out, which it must not send twice. The window in which the record says
"committing" but the "." was never written is one socket write.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from bot.adapters.oauth2 import TokenSource
from bot.adapters.tls import tls_context
from bot.core.errors import OAuth2Error
from bot.settings import SmtpSettings

log = logging.getLogger(__name__)

class SendOutcome(enum.Enum):
    SENT = "sent"  # the server said 250
    RETRY = "retry"  # not delivered, worth trying again
    FAILED = "failed"  # refused for good
    UNCERTAIN = "uncertain"  # the "." was written but no answer came; it may have been delivered
    RELEASED = "released"  # `commit` said no (another worker owns the row now); nothing was delivered


def outcome_for(code: int) -> SendOutcome:
    """What an SMTP reply code means for a message: 250 sent, 5xx refused for good, else try again."""
    if code == 250:
        return SendOutcome.SENT
    return SendOutcome.FAILED if code >= 500 else SendOutcome.RETRY


@dataclass(frozen=True)
class Envelope:
    key: int  # the caller's id for this message (the outbox row)
    recipient: str
    raw: bytes


@dataclass(frozen=True)
class SendResult:
    key: int
    outcome: SendOutcome
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is SendOutcome.SENT


def _allow(_key: int) -> bool:
    return True


class SignInRefused(aiosmtplib.SMTPAuthenticationError):
    """AUTH XOAUTH2 refused even with a renewed token."""


class Mailer:
    def __init__(self, settings: SmtpSettings, *, tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self.tokens = tokens  # needed with smtp.auth = "oauth2"

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        password_auth = s.auth == "password" and bool(s.username)
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username if password_auth else None,
            password=(s.password.get_secret_value() or None) if password_auth else None,
            use_tls=s.security == "ssl",
            start_tls=s.security == "starttls",
            tls_context=tls_context(s.tls_verify, s.ca_file) if s.security != "none" else None,
            timeout=s.timeout_seconds,
        )

    async def send_many(self, envelopes: Sequence[Envelope],
                        on_result: Callable[[SendResult], None] | None = None,
                        commit: Callable[[int], bool] = _allow) -> list[SendResult]:
        """Send over up to `connections` SMTP sessions at once; every envelope gets a result.

        `commit(key)` runs just before a message's final "." and must record durably that the
        message may now be delivered; returning False abandons that message unsent.
        `on_result` is called as soon as each message's fate is known, so the caller can record it.
        """
        if not envelopes:
            return []
        queue: asyncio.Queue[Envelope] = asyncio.Queue()
        for env in envelopes:
            queue.put_nowait(env)
        results = _Results(on_result)
        workers = min(self.settings.connections, len(envelopes))
        await asyncio.gather(*(self._worker(queue, results, commit) for _ in range(workers)))
        return results.all

    async def _worker(self, queue: asyncio.Queue[Envelope], results: _Results, commit: Callable[[int], bool]) -> None:
        smtp: aiosmtplib.SMTP | None = None
        try:
            while not queue.empty():
                env = queue.get_nowait()
                if smtp is None or not smtp.is_connected:
                    smtp = self._client()
                    try:
                        await smtp.connect()  # EHLO, STARTTLS, and AUTH with a password
                        if self.settings.auth == "oauth2":
                            await self._xoauth2(smtp)
                    except (TimeoutError, aiosmtplib.SMTPException, OSError, OAuth2Error) as exc:
                        # a refused sign-in is a retry too: the mail waits for a working token
                        results.append(SendResult(env.key, SendOutcome.RETRY, _describe(exc)))
                        smtp.close()
                        smtp = None
                        continue
                result = await self._send(smtp, env, commit)
                results.append(result)
                if result.outcome in (SendOutcome.UNCERTAIN, SendOutcome.RELEASED) or not smtp.is_connected:
                    smtp.close()
                    smtp = None
        finally:
            await _drop(smtp)

    async def _xoauth2(self, smtp: aiosmtplib.SMTP) -> None:
        """AUTH XOAUTH2 after EHLO (and STARTTLS); a refused token is dropped and a new one tried once."""
        if self.tokens is None:
            raise aiosmtplib.SMTPException('smtp.auth = "oauth2" but no token source was given')
        if smtp.last_ehlo_response is None:
            await smtp.ehlo()
        if "xoauth2" not in smtp.server_auth_methods:
            raise aiosmtplib.SMTPException("the SMTP server does not offer AUTH XOAUTH2")
        user = self.settings.username
        for attempt in (1, 2):
            token = await asyncio.to_thread(self.tokens.token)
            blob = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())
            reply = await smtp.execute_command(b"AUTH", b"XOAUTH2", blob)
            if reply.code == 334:  # the error comes as a challenge first; an empty line gets the final reply
                reply = await smtp.execute_command(b"")
            if reply.code == 235:
                return
            self.tokens.invalidate(token)
            if attempt == 1:
                log.warning("SMTP AUTH XOAUTH2 as %s refused (%s); renewing the token once", user, reply.code)
                continue
            raise SignInRefused(reply.code, f"AUTH XOAUTH2 refused with a renewed token: {reply.message}")

    async def _send(self, smtp: aiosmtplib.SMTP, env: Envelope, commit: Callable[[int], bool]) -> SendResult:
        timeout = self.settings.timeout_seconds
        try:
            await smtp.mail(self.settings.from_address)
            await smtp.rcpt(env.recipient)
            started = await smtp.execute_command(b"DATA")
            if started.code != 354:
                raise aiosmtplib.SMTPDataError(started.code, started.message)
            protocol = smtp.protocol
            assert protocol is not None and protocol.transport is not None
            protocol.write(PERIOD_REGEX.sub(b"..", normalize_message_line_endings(env.raw)))
            await _written(protocol.transport)
        except aiosmtplib.SMTPResponseException as exc:
            await _reset(smtp)
            return SendResult(env.key, outcome_for(exc.code), f"{exc.code} {exc.message}"[:500])
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            return SendResult(env.key, SendOutcome.RETRY, _describe(exc))
        if not commit(env.key):
            return SendResult(env.key, SendOutcome.RELEASED, "claimed by another worker")
        try:
            protocol.write(b".\r\n")
        except (aiosmtplib.SMTPException, OSError) as exc:  # the "." never left: nothing was delivered
            return SendResult(env.key, SendOutcome.RETRY, _describe(exc))
        try:
            reply = await protocol.read_response(timeout=timeout)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            return SendResult(env.key, SendOutcome.UNCERTAIN, _describe(exc))
        outcome = outcome_for(reply.code)
        return SendResult(env.key, outcome, "" if outcome is SendOutcome.SENT else f"{reply.code} {reply.message}"[:500])


class _Results:
    def __init__(self, callback: Callable[[SendResult], None] | None) -> None:
        self.all: list[SendResult] = []
        self.callback = callback

    def append(self, result: SendResult) -> None:
        self.all.append(result)
        if self.callback is not None:
            self.callback(result)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


async def _written(transport: object) -> None:
    """Wait until the transport has handed everything to the kernel."""
    size = getattr(transport, "get_write_buffer_size", lambda: 0)
    while size():
        await asyncio.sleep(0.001)


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.rset()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        smtp.close()


async def _drop(smtp: aiosmtplib.SMTP | None) -> None:
    if smtp is not None and smtp.is_connected:
        try:
            await smtp.quit()
        except Exception:
            smtp.close()
