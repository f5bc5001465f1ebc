"""The IMAP adapter against a real Dovecot: TLS checks, UID bookkeeping, big mail fetched in part."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import pytest

from bot.adapters.imap import Mailbox
from bot.core.errors import MailboxError
from bot.core.parse import parse_message
from bot.settings import MailboxSettings
from tests.factories import mail_bytes

pytestmark = pytest.mark.integration


def settings(dovecot, **kw) -> MailboxSettings:
    base = dict(host="127.0.0.1", port=dovecot.port, security="none", username=dovecot.user,
                password=dovecot.password)
    base.update(kw)
    return MailboxSettings(**base)


def test_tls_is_verified_by_default(mailbox) -> None:
    box = Mailbox(settings(mailbox, port=mailbox.imaps_port, security="ssl"))
    with pytest.raises(ssl.SSLError):
        box.connect()
    trusted = Mailbox(settings(mailbox, port=mailbox.imaps_port, security="ssl", ca_file=str(mailbox.cert_path)))
    assert trusted.connect().uidvalidity > 0
    trusted.close()
    starttls = Mailbox(settings(mailbox, security="starttls", ca_file=str(mailbox.cert_path)))
    assert starttls.connect().can_idle
    starttls.close()


def test_bad_password_is_a_clear_error(mailbox) -> None:
    with pytest.raises(MailboxError, match="login"):
        Mailbox(settings(mailbox, password="wrong")).connect()


def test_uids_after_and_marking(mailbox) -> None:
    uids = mailbox.append([mail_bytes(sender="a@example.com", subject=f"s{i}", body="x", message_id=f"<u{i}@x>")
                           for i in range(3)])
    box = Mailbox(settings(mailbox))
    box.connect()
    try:
        assert box.uids_after(0) == uids
        assert box.uids_after(uids[-1]) == []  # "n:*" quirk filtered out
        assert box.uids_after(uids[0]) == uids[1:]
        box.mark_processed(uids[:2])
        assert box.unseen_uids() == uids[2:]
        fetched = list(box.fetch(uids))
        assert [f.uid for f in fetched] == uids and not any(f.truncated for f in fetched)
        assert box.unseen_uids() == uids[2:]  # fetching does not set \Seen
    finally:
        box.close()


def test_big_mail_is_fetched_in_part(mailbox) -> None:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "big@example.com", "privacy@bot.test", "Big", "<big@x>"
    m.set_content("Please delete my personal data.")
    m.add_attachment(b"\0" * (3 * 1024 * 1024), maintype="application", subtype="octet-stream", filename="scan.bin")
    [uid] = mailbox.append([m.as_bytes()])
    box = Mailbox(settings(mailbox, max_message_bytes=1024 * 1024))
    box.connect()
    try:
        [fetched] = list(box.fetch([uid]))
    finally:
        box.close()
    assert fetched.truncated and fetched.size > 3 * 1024 * 1024 and len(fetched.raw) < 64 * 1024
    mail = parse_message(fetched.raw, size=fetched.size, truncated=True)
    assert "delete my personal data" in mail.text and mail.subject == "Big" and mail.message_id == "<big@x>"


def test_marking_fifteen_thousand_mails_at_once(mailbox) -> None:
    """One UID list of 15,000 is longer than Dovecot takes on a command line (after an outage,
    the leftovers to flag can be that many): it must go out in pieces."""
    mailbox.drop_into_maildir([b"Subject: x\r\n\r\nx\r\n"] * 15_000)
    box = Mailbox(settings(mailbox))
    box.connect()
    try:
        uids = box.unseen_uids()
        assert len(uids) == 15_000
        box.mark_processed(uids)
        assert box.unseen_uids() == []
    finally:
        box.close()
