"""The test servers themselves: Dovecot (IMAP, IMAPS, STARTTLS, IDLE, LMTP), the SMTP sink, PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from imapclient import IMAPClient

from tests.mailservers import Dovecot, SmtpSink, TestCert

pytestmark = pytest.mark.integration


def make_mail(subject: str, to: str = "bot@example.com", body: str = "hello\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@example.com>"
    msg.set_content(body)
    return msg


def send(aio: asyncio.Runner, sink: SmtpSink, msg: EmailMessage, **kwargs: Any) -> None:
    kwargs.setdefault("start_tls", False)
    aio.run(aiosmtplib.send(msg, hostname="127.0.0.1", port=sink.port, timeout=10, **kwargs))


# ---- Dovecot --------------------------------------------------------------------------------------------


def test_append_then_fetch(mailbox: Dovecot) -> None:
    raws = [make_mail("first").as_bytes(), make_mail("second", body="zweite\n").as_bytes()]
    uids = mailbox.append(raws)
    assert len(uids) == 2 and uids[0] < uids[1]

    c = mailbox.client()
    try:
        c.select_folder("INBOX", readonly=True)
        assert c.search(["ALL"]) == uids
        data = c.fetch(uids, ["ENVELOPE", "BODY.PEEK[]", "FLAGS"])
    finally:
        c.logout()
    assert data[uids[0]][b"ENVELOPE"].subject == b"first"
    assert data[uids[1]][b"ENVELOPE"].subject == b"second"
    assert data[uids[1]][b"BODY[]"] == raws[1].replace(b"\n", b"\r\n")
    assert set(data[uids[0]][b"FLAGS"]) <= {b"\\Recent"}  # not \Seen: fetched with PEEK
    assert mailbox.messages() == {uids[0]: data[uids[0]][b"BODY[]"], uids[1]: data[uids[1]][b"BODY[]"]}


def test_flags_keep_custom_keywords(mailbox: Dovecot) -> None:
    (uid,) = mailbox.append([make_mail("flagged").as_bytes()])
    assert mailbox.flags(uid) == ()
    c = mailbox.client()
    try:
        c.select_folder("INBOX")
        c.add_flags([uid], [b"\\Seen", b"$BotReplied"])
    finally:
        c.logout()
    assert set(mailbox.flags(uid)) == {b"\\Seen", b"$BotReplied"}


def test_capabilities_the_bot_relies_on(mailbox: Dovecot) -> None:
    c = mailbox.client()
    try:
        caps = set(c.capabilities())
    finally:
        c.logout()
    assert {b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE", b"QRESYNC", b"ENABLE", b"SPECIAL-USE"} <= caps


def test_idle_sees_exists_after_append_from_second_connection(mailbox: Dovecot) -> None:
    idler = mailbox.client()
    try:
        idler.select_folder("INBOX")
        idler.idle()
        appended = threading.Event()

        def append_later() -> None:
            time.sleep(0.2)
            mailbox.append([make_mail("wake up").as_bytes()])
            appended.set()

        worker = threading.Thread(target=append_later)
        start = time.monotonic()
        worker.start()
        seen: list[tuple[object, ...]] = []
        while time.monotonic() - start < 3 and not any(len(r) > 1 and r[1] == b"EXISTS" for r in seen):
            seen.extend(idler.idle_check(timeout=0.5))
        elapsed = time.monotonic() - start
        idler.idle_done()
        worker.join()
    finally:
        idler.logout()
    assert appended.is_set()
    assert (1, b"EXISTS") in seen, f"IDLE saw {seen} in {elapsed:.1f} s"
    assert elapsed < 3


def test_lmtp_delivery_and_detail_folder(mailbox: Dovecot) -> None:
    mailbox.deliver(make_mail("to inbox").as_bytes())
    mailbox.deliver(make_mail("to archive").as_bytes(), recipient="bot+Archive")
    inbox = list(mailbox.messages().values())
    archive = list(mailbox.messages("Archive").values())
    assert len(inbox) == 1 and b"Subject: to inbox" in inbox[0]
    assert inbox[0].startswith(b"Return-Path: <sender@example.com>")
    assert len(archive) == 1 and b"Subject: to archive" in archive[0]


def test_second_user_is_separate(mailbox: Dovecot) -> None:
    mailbox.append([make_mail("for alice").as_bytes()], user="alice")
    assert mailbox.messages() == {}
    assert len(mailbox.messages(user="alice")) == 1


def test_imaps_with_test_cert(mailbox: Dovecot) -> None:
    ctx = ssl.create_default_context(cafile=str(mailbox.cert_path))
    c = IMAPClient("127.0.0.1", port=mailbox.imaps_port, ssl=True, ssl_context=ctx, timeout=10)
    try:
        c.login(mailbox.user, mailbox.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
        sock = c.socket()
        assert isinstance(sock, ssl.SSLSocket) and sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        c.logout()
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            "127.0.0.1",
            port=mailbox.imaps_port,
            ssl=True,
            ssl_context=ssl.create_default_context(),
            timeout=10,
        )


def test_starttls(mailbox: Dovecot) -> None:
    c = IMAPClient("127.0.0.1", port=mailbox.port, ssl=False, timeout=10)
    try:
        assert b"STARTTLS" in c.capabilities()
        c.starttls(ssl.create_default_context(cafile=str(mailbox.cert_path)))
        assert isinstance(c.socket(), ssl.SSLSocket)
        c.login(mailbox.user, mailbox.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        c.logout()
    plain = IMAPClient("127.0.0.1", port=mailbox.port, ssl=False, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        plain.starttls(ssl.create_default_context())
    plain.socket().close()  # the failed handshake leaves imaplib's socket half-wrapped
    helper = mailbox.client(security="starttls")  # the helper verifies the cert too
    helper.logout()


def test_reset_empties_folders_and_deletes_extra_ones(mailbox: Dovecot) -> None:
    mailbox.append([make_mail("a").as_bytes()])
    mailbox.append([make_mail("b").as_bytes()], folder="Archive")
    c = mailbox.client()
    try:
        c.create_folder("Processed/2026")
        c.append("Processed/2026", make_mail("c").as_bytes())
    finally:
        c.logout()
    mailbox.reset()
    c = mailbox.client()
    try:
        names = sorted(name for _f, _s, name in c.list_folders())
    finally:
        c.logout()
    assert names == ["Archive", "Drafts", "INBOX", "Sent", "Trash"]
    assert mailbox.messages() == {} and mailbox.messages("Archive") == {}


def test_restart_keeps_ports_and_mail(mailbox: Dovecot) -> None:
    (uid,) = mailbox.append([make_mail("survivor").as_bytes()])
    ports = (mailbox.port, mailbox.imaps_port, mailbox.lmtp_port)
    old = mailbox.client()
    old.select_folder("INBOX")
    started = time.monotonic()
    mailbox.restart()
    took = time.monotonic() - started
    try:
        with pytest.raises((OSError, IMAPClient.AbortError)):  # the old connection is gone
            old.noop()
    finally:
        old.shutdown()
    assert (mailbox.port, mailbox.imaps_port, mailbox.lmtp_port) == ports
    assert list(mailbox.messages()) == [uid]
    assert b"survivor" in mailbox.messages()[uid]
    assert took < 8


def test_stopped_dovecot_refuses_connections(mailbox: Dovecot) -> None:
    port = mailbox.port
    mailbox.stop()
    try:
        assert not mailbox.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        mailbox.restart()
    assert mailbox.running and mailbox.port == port


# ---- SMTP sink -----------------------------------------------------------------------------------------


def test_sink_captures_plain_smtp(aio: asyncio.Runner, smtp_sink: SmtpSink) -> None:
    send(aio, smtp_sink, make_mail("reply one", to="carol@example.com"))
    (got,) = smtp_sink.wait_for(1, timeout=5)
    assert got.mail_from == "alice@example.com"
    assert got.rcpt_tos == ("carol@example.com",)
    assert got.message["Subject"] == "reply one"
    assert got.message.get_content().strip() == "hello"
    assert b"Message-ID: <reply.one@example.com>" in got.raw
    smtp_sink.clear()
    assert smtp_sink.messages() == []


def test_plain_sink_does_not_offer_starttls(aio: asyncio.Runner, smtp_sink: SmtpSink) -> None:
    async def ehlo() -> tuple[bool, bool]:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_sink.port, start_tls=False, timeout=10)
        await client.connect()
        try:
            await client.ehlo()
            return client.supports_extension("starttls"), client.supports_extension("auth")
        finally:
            await client.quit()

    assert aio.run(ehlo()) == (False, True)
    # aiosmtplib's default (start_tls=None: upgrade if offered) stays plain and works
    aio.run(aiosmtplib.send(make_mail("default"), hostname="127.0.0.1", port=smtp_sink.port, timeout=10))
    assert smtp_sink.wait_for(1)[0].message["Subject"] == "default"


def test_sink_starttls_and_auth(
    aio: asyncio.Runner, make_smtp_sink: Callable[..., SmtpSink], tls_cert: TestCert
) -> None:
    sink = make_smtp_sink(tls="starttls", username="bot", password="secret")
    send(aio, sink, make_mail("over tls"), start_tls=True, tls_context=tls_cert.client_context(),
         username="bot", password="secret")  # fmt: skip
    assert sink.wait_for(1)[0].message["Subject"] == "over tls"
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        send(aio, sink, make_mail("wrong password"), start_tls=True, tls_context=tls_cert.client_context(),
             username="bot", password="wrong")  # fmt: skip
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):  # the test cert is not trusted by default
        send(aio, sink, make_mail("untrusted"), start_tls=True)
    assert len(sink.messages()) == 1


def test_sink_smtps(aio: asyncio.Runner, make_smtp_sink: Callable[..., SmtpSink], tls_cert: TestCert) -> None:
    sink = make_smtp_sink(tls="ssl")
    send(
        aio,
        sink,
        make_mail("implicit tls"),
        start_tls=None,
        use_tls=True,
        tls_context=tls_cert.client_context(),
    )
    assert sink.wait_for(1)[0].message["Subject"] == "implicit tls"


def test_sink_fail_next_then_recovers(aio: asyncio.Runner, smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(1, 451)
    with pytest.raises(aiosmtplib.SMTPDataError) as temporary:
        send(aio, smtp_sink, make_mail("try one"))
    assert temporary.value.code == 451
    send(aio, smtp_sink, make_mail("try two"))
    assert [c.message["Subject"] for c in smtp_sink.wait_for(1)] == ["try two"]

    smtp_sink.fail_next(1, 550, "5.1.1 No such user", at="rcpt")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as permanent:
        send(aio, smtp_sink, make_mail("unknown user"))
    assert [r.code for r in permanent.value.recipients] == [550]
    assert "No such user" in permanent.value.recipients[0].message
    send(aio, smtp_sink, make_mail("try three"))
    assert [c.message["Subject"] for c in smtp_sink.wait_for(2)] == ["try two", "try three"]


def test_sink_stop_and_start_on_same_port(aio: asyncio.Runner, smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    smtp_sink.stop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        send(aio, smtp_sink, make_mail("while down"))
    smtp_sink.start()
    assert smtp_sink.port == port
    send(aio, smtp_sink, make_mail("back up"))
    assert [c.message["Subject"] for c in smtp_sink.wait_for(1)] == ["back up"]


def test_sink_wait_for_times_out(smtp_sink: SmtpSink) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="0 of 1"):
        smtp_sink.wait_for(1, timeout=0.2)
    assert time.monotonic() - started < 2


def test_sink_writes_maildir(
    aio: asyncio.Runner, make_smtp_sink: Callable[..., SmtpSink], tmp_path: Path
) -> None:
    sink = make_smtp_sink(maildir=tmp_path / "sent")
    send(
        aio,
        sink,
        make_mail("to the file", to="dave@example.com"),
        recipients=["dave@example.com", "eve@example.com"],
    )
    sink.wait_for(1)
    files = list((tmp_path / "sent" / "new").iterdir())
    assert len(files) == 1
    data = files[0].read_bytes()
    assert data.startswith(
        b"X-Sink-Mail-From: <alice@example.com>\r\nX-Sink-Rcpt-To: <dave@example.com>, <eve@example.com>\r\n"
    )
    assert data.endswith(sink.messages()[0].raw)


# ---- PostgreSQL ------------------------------------------------------------------------------------------


def test_postgres_url_connects(postgres_url: str) -> None:
    import psycopg

    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:5432/bot_test_")
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_database()").fetchone() == (name,)


def test_db_url_gives_a_fresh_database(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        import sqlite3

        path = Path(db_url.removeprefix("sqlite:///"))
        assert not path.exists() and path.parent.is_dir()
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        return
    import psycopg

    assert db_url.startswith("postgresql+psycopg://postgres@127.0.0.1:5432/bot_test_")
    with psycopg.connect(db_url.replace("+psycopg", "")) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
