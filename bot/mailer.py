"""The SMTP side: one class around aiosmtplib. Sends bytes; says whether a failure is worth retrying."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiosmtplib

from bot.config import SmtpSettings
from bot.mailbox import tls_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Envelope:
    key: int  # the caller's id for this message (the outbox row)
    recipient: str
    raw: bytes


@dataclass(frozen=True)
class SendResult:
    key: int
    ok: bool
    permanent: bool = False
    error: str = ""


class Mailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username or None,
            password=s.password.get_secret_value() or None,
            use_tls=s.security == "ssl",
            start_tls=True if s.security == "starttls" else False,
            tls_context=tls_context(s.tls_verify, s.ca_file) if s.security != "none" else None,
            timeout=s.timeout_seconds,
        )

    async def send_many(self, envelopes: Sequence[Envelope],
                        on_result: Callable[[SendResult], None] | None = None) -> list[SendResult]:
        """Send over up to `connections` SMTP sessions at once; every envelope gets a result.

        `on_result` is called as soon as each message's fate is known, so the caller can record
        it at once: a crash then repeats at most the message in flight, not the whole batch.
        """
        if not envelopes:
            return []
        queue: asyncio.Queue[Envelope] = asyncio.Queue()
        for env in envelopes:
            queue.put_nowait(env)
        results = _Results(on_result)
        workers = min(self.settings.connections, len(envelopes))
        await asyncio.gather(*(self._worker(queue, results) for _ in range(workers)))
        return results.all

    async def _worker(self, queue: asyncio.Queue[Envelope], results: _Results) -> None:
        smtp: aiosmtplib.SMTP | None = None
        try:
            while not queue.empty():
                env = queue.get_nowait()
                try:
                    if smtp is None or not smtp.is_connected:
                        smtp = self._client()
                        await smtp.connect()
                    await smtp.sendmail(self.settings.from_address, [env.recipient], env.raw)
                    results.append(SendResult(env.key, True))
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    codes = [r.code for r in exc.recipients]
                    results.append(SendResult(env.key, False, all(c >= 500 for c in codes), f"recipient refused {codes}"))
                except aiosmtplib.SMTPResponseException as exc:
                    results.append(SendResult(env.key, False, exc.code >= 500, f"{exc.code} {exc.message}"[:500]))
                    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                        await _drop(smtp)
                        smtp = None
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                    results.append(SendResult(env.key, False, False, f"{type(exc).__name__}: {exc}"[:500]))
                    await _drop(smtp)
                    smtp = None
        finally:
            await _drop(smtp)


class _Results:
    def __init__(self, callback: Callable[[SendResult], None] | None) -> None:
        self.all: list[SendResult] = []
        self.callback = callback

    def append(self, result: SendResult) -> None:
        self.all.append(result)
        if self.callback is not None:
            self.callback(result)


async def _drop(smtp: aiosmtplib.SMTP | None) -> None:
    if smtp is not None and smtp.is_connected:
        try:
            await smtp.quit()
        except Exception:
            smtp.close()
