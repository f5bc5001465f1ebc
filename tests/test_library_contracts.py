"""The library internals the bot relies on, checked against real servers on loopback.

pyproject.toml caps each library's major version; when a new major version comes, these tests say
whether the bot's use of its internals still holds (bot/adapters/smtp.py's split DATA phase,
bot/adapters/imap.py's reading of imaplib's untagged responses and imapclient's IDLE answers).
"""

from __future__ import annotations

import asyncio
import time

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from imapclient import IMAPClient

from tests.factories import mail_bytes

pytestmark = pytest.mark.integration


def test_aiosmtplib_dot_stuffing_and_line_endings_are_what_the_mailer_writes() -> None:
    raw = b"Subject: x\n\n.starts with a dot\r\nok\n..two\n"
    wire = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(raw))
    assert wire == b"Subject: x\r\n\r\n..starts with a dot\r\nok\r\n...two\r\n"


def test_aiosmtplib_protocol_writes_the_body_and_the_final_dot_separately(aio: asyncio.Runner, smtp_sink) -> None:
    async def session() -> tuple[int, int]:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_sink.port, use_tls=False, start_tls=False, timeout=10)
        await smtp.connect()
        try:
            await smtp.mail("privacy@bot.test")
            await smtp.rcpt("ruth@example.com")
            started = await smtp.execute_command(b"DATA")
            protocol = smtp.protocol
            assert protocol is not None and protocol.transport is not None
            protocol.write(PERIOD_REGEX.sub(b"..", normalize_message_line_endings(b"Subject: t\r\n\r\n.body\r\n")))
            while protocol.transport.get_write_buffer_size():
                await asyncio.sleep(0.001)
            assert smtp_sink.messages() == []  # nothing is delivered before the final dot
            protocol.write(b".\r\n")
            reply = await protocol.read_response(timeout=10)
            return started.code, reply.code
        finally:
            await smtp.quit()

    assert aio.run(session()) == (354, 250)
    (mail,) = smtp_sink.messages()
    assert mail.raw.endswith(b"\r\n.body\r\n") and mail.rcpt_tos == ("ruth@example.com",)


def test_aiosmtplib_response_errors_carry_code_and_message(aio: asyncio.Runner, smtp_sink) -> None:
    smtp_sink.fail_next(1, code=550, at="rcpt")

    async def refused() -> aiosmtplib.SMTPResponseException:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_sink.port, use_tls=False, start_tls=False, timeout=10)
        await smtp.connect()
        try:
            await smtp.mail("privacy@bot.test")
            with pytest.raises(aiosmtplib.SMTPResponseException) as caught:
                await smtp.rcpt("nobody@example.com")
            return caught.value
        finally:
            await smtp.quit()

    error = aio.run(refused())
    assert error.code == 550 and "Rejected" in error.message


def test_imaplib_keeps_announcements_in_untagged_responses(mailbox) -> None:
    watcher = mailbox.client()
    watcher.select_folder("INBOX")
    store = watcher._imap.untagged_responses  # what bot/adapters/imap.py announced_mail() reads
    store.pop("EXISTS", None)
    store.pop("RECENT", None)
    mailbox.append([mail_bytes(sender="a@example.com", subject="s", body="b", message_id="<c1@x>")])
    deadline = time.monotonic() + 5
    while "EXISTS" not in store and time.monotonic() < deadline:
        watcher.search(["ALL"])  # any command's answer may carry the announcement
    assert isinstance(store, dict) and store.get("EXISTS"), store
    watcher.logout()


def test_imapclient_idle_check_reports_exists_as_a_tuple(mailbox) -> None:
    watcher: IMAPClient = mailbox.client()
    watcher.select_folder("INBOX")
    watcher.idle()
    try:
        mailbox.append([mail_bytes(sender="a@example.com", subject="s", body="b", message_id="<c2@x>")])
        responses: list = []
        deadline = time.monotonic() + 5
        while not any(len(r) > 1 and r[1] == b"EXISTS" for r in responses) and time.monotonic() < deadline:
            responses += watcher.idle_check(timeout=1)
    finally:
        watcher.idle_done()
    assert any(isinstance(r[0], int) and r[1] == b"EXISTS" for r in responses), responses
    watcher.logout()


def test_imapclient_has_the_sasl_logins_the_bot_uses() -> None:
    for name in ("login", "oauth2_login", "oauthbearer_login", "idle", "idle_check", "idle_done", "has_capability"):
        assert callable(getattr(IMAPClient, name, None)), name
