"""The demo's embedded servers (pymap IMAP + aiosmtpd SMTP) and its sample mail."""

from __future__ import annotations

import asyncio
import email
import email.policy
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message

import aiosmtplib
import pytest
from imapclient import IMAPClient

from bot.core.model import Kind, Suppress
from bot.demo.sample_mail import PRIVACY_ADDRESS, samples
from bot.demo.servers import DemoServers, ReceivedMail

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def servers() -> Iterator[DemoServers]:
    with DemoServers() as running:
        yield running


def imap(servers: DemoServers) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=servers.imap_port, ssl=False, timeout=10)
    client.login(servers.user, servers.password)
    return client


def smtp_send(
    aio: asyncio.Runner, servers: DemoServers, msg: EmailMessage, recipients: list[str] | None = None
) -> None:
    aio.run(
        aiosmtplib.send(msg, hostname="127.0.0.1", port=servers.smtp_port, recipients=recipients, timeout=10)
    )


def reply(to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Privacy Office <privacy@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content("Thank you for your inquiry.\n")
    return msg


# ---- the servers ------------------------------------------------------------------------------------


def test_start_gives_loopback_ports_and_stop_closes_them(aio: asyncio.Runner) -> None:
    servers = DemoServers()
    servers.start()
    ports = (servers.imap_port, servers.smtp_port)
    assert all(p > 0 for p in ports) and ports[0] != ports[1]
    client = imap(servers)
    assert b"IDLE" in client.capabilities() and b"UIDPLUS" in client.capabilities()
    client.logout()
    servers.stop()
    assert not servers.running
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            aio.run(asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2))


def test_wrong_password_is_refused(servers: DemoServers) -> None:
    client = IMAPClient("127.0.0.1", port=servers.imap_port, ssl=False, timeout=10)
    with pytest.raises(IMAPClient.Error):
        client.login(servers.user, "wrong")
    client.logout()


def test_append_sample_and_read_it_back(servers: DemoServers) -> None:
    raw = samples()[1].raw  # Shift_JIS deletion request
    uid = servers.append(raw)
    client = imap(servers)
    try:
        client.select_folder("INBOX")
        assert client.search(["ALL"]) == [uid]
        data = client.fetch([uid], ["BODY.PEEK[]", "FLAGS", "ENVELOPE"])[uid]
    finally:
        client.logout()
    assert data[b"BODY[]"] == raw
    assert b"\\Seen" not in data[b"FLAGS"]
    msg = email.message_from_bytes(data[b"BODY[]"], policy=email.policy.default)
    assert msg["Subject"] == "個人情報の削除のお願い"
    assert "すべて削除していただきたく" in msg.get_content()
    assert servers.messages() == {uid: raw}


def test_idle_sees_an_append(servers: DemoServers) -> None:
    idler = imap(servers)
    try:
        idler.select_folder("INBOX")
        idler.idle()
        raw = samples()[0].raw
        worker = threading.Timer(0.2, servers.append, args=(raw,))
        started = time.monotonic()
        worker.start()
        # Read whole lines, blocking: pymap writes "* 1 FETCH (" and the rest of that line apart,
        # and imapclient's idle_check (non-blocking reads) aborts on such a split line.
        idler.socket().settimeout(3)
        seen: list[bytes] = []
        while time.monotonic() - started < 3 and b"* 1 EXISTS\r\n" not in seen:
            seen.append(idler._imap.readline())
        elapsed = time.monotonic() - started
        idler.idle_done()
        worker.join()
    finally:
        idler.logout()
    assert b"* 1 EXISTS\r\n" in seen, seen
    assert elapsed < 3


def test_reply_to_another_address_is_recorded_not_delivered(
    aio: asyncio.Runner, servers: DemoServers
) -> None:
    heard: queue.Queue[ReceivedMail] = queue.Queue()
    servers.add_listener(heard.put)
    smtp_send(aio, servers, reply("john.smith@example.com", "[PRV-2026-00001] We received your request"))
    (sent,) = servers.wait_sent(1, timeout=5)
    msg = email.message_from_bytes(sent, policy=email.policy.default)
    assert msg["Subject"] == "[PRV-2026-00001] We received your request"
    assert msg["To"] == "john.smith@example.com"
    assert servers.sent() == [sent]
    mail = heard.get(timeout=5)
    assert mail.rcpt_tos == ("john.smith@example.com",) and mail.mail_from == "privacy@example.com"
    assert mail.relayed and not mail.delivered
    assert servers.messages() == {}  # nothing landed in the privacy mailbox


def test_mail_to_the_privacy_address_arrives_in_the_mailbox(
    aio: asyncio.Runner, servers: DemoServers
) -> None:
    heard: list[ReceivedMail] = []
    servers.add_listener(heard.append)
    idler = imap(servers)
    try:
        idler.select_folder("INBOX")
        idler.idle()
        inquiry = EmailMessage()
        inquiry["From"] = "Hanako <hanako@example.jp>"
        inquiry["To"] = "Privacy@Example.com"
        inquiry["Subject"] = "開示請求"
        inquiry.set_content("私の個人情報の開示をお願いします。\n")
        smtp_send(aio, servers, inquiry)
        seen: list[tuple[object, ...]] = []
        started = time.monotonic()
        while time.monotonic() - started < 3 and (1, b"EXISTS") not in seen:
            seen.extend(idler.idle_check(timeout=0.5))
        idler.idle_done()
    finally:
        idler.logout()
    assert (1, b"EXISTS") in seen
    (stored,) = servers.messages().values()
    assert stored.startswith(b"Return-Path: <hanako@example.jp>\r\nDelivered-To: privacy@example.com\r\n")
    msg = email.message_from_bytes(stored, policy=email.policy.default)
    assert msg["Subject"] == "開示請求"
    assert msg.get_content() == "私の個人情報の開示をお願いします。\r\n"
    assert servers.sent() == []
    assert len(heard) == 1 and heard[0].delivered and not heard[0].relayed


def test_mail_to_both_is_delivered_and_recorded(aio: asyncio.Runner, servers: DemoServers) -> None:
    smtp_send(
        aio,
        servers,
        reply("staff@example.com", "digest"),
        recipients=["staff@example.com", servers.privacy_address],
    )
    assert len(servers.wait_sent(1, timeout=5)) == 1
    assert len(servers.messages()) == 1
    (mail,) = servers.received()
    assert mail.delivered and mail.relayed


def test_extra_folders_and_fixed_ports() -> None:
    from tests.mailservers import free_ports

    imap_port, smtp_port = free_ports(2)
    with DemoServers(
        imap_port=imap_port, smtp_port=smtp_port, folders=("Processed",), user="privacy@example.jp"
    ) as servers:
        assert (servers.imap_port, servers.smtp_port) == (imap_port, smtp_port)
        assert servers.privacy_address == "privacy@example.jp"
        client = imap(servers)
        try:
            names = sorted(name for _flags, _sep, name in client.list_folders())
        finally:
            client.logout()
        assert names == ["INBOX", "Processed"]
        uid = servers.append(b"Subject: x\n\nbody\n", folder="Processed")
        assert servers.messages("Processed") == {uid: b"Subject: x\r\n\r\nbody\r\n"}


def test_all_samples_append_and_parse(servers: DemoServers) -> None:
    raws = [s.raw for s in samples()]
    uids = [servers.append(raw) for raw in raws]
    stored = servers.messages()
    assert list(stored) == uids
    assert list(stored.values()) == raws


# ---- the samples ------------------------------------------------------------------------------------------


def parsed(index: int) -> EmailMessage:
    msg = email.message_from_bytes(samples()[index].raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_samples_cover_every_kind_and_suppression() -> None:
    found = samples()
    assert len(found) == 12 and len({s.key for s in found}) == 12
    assert {k for s in found for k in s.kinds} == set(Kind)
    assert {s.suppress for s in found} == {None, Suppress.AUTO_REPLY, Suppress.BOUNCE, Suppress.BULK}
    assert {s.charset for s in found if s.language == "ja"} == {"iso-2022-jp", "shift_jis", "utf-8"}
    assert any(len(s.kinds) == 2 for s in found)


def test_sample_files_are_crlf_dated_and_decodable() -> None:
    dates = []
    for i, sample in enumerate(samples()):
        raw = sample.raw
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        msg = parsed(i)
        assert msg.defects == []
        assert msg["From"].addresses[0].addr_spec.endswith(("example.com", "example.jp"))
        assert msg["Message-ID"].startswith(f"<{sample.key}.")
        assert sample.form == "bounce" or PRIVACY_ADDRESS in str(msg["To"]) or sample.suppress is Suppress.BULK
        dates.append(msg["Date"].datetime)
        assert msg.get_body(("plain", "html")) is not None
    assert dates == sorted(dates)


def test_legacy_japanese_encodings_on_the_wire() -> None:
    sjis = samples()[1].raw
    assert b'charset="Shift_JIS"' in sjis and b"=?Shift_JIS?B?" in sjis
    jis = samples()[4].raw
    assert b'charset="ISO-2022-JP"' in jis and b"=?ISO-2022-JP?B?" in jis and b"\x1b$B" in jis
    assert all(byte < 0x80 for byte in jis)  # 7bit on the wire
    dm = parsed(5)
    assert "ＤＭ" in dm["Subject"] and "ﾒｰﾙﾏｶﾞｼﾞﾝ" in dm.get_content()
    assert dm["Date"].datetime.utcoffset().total_seconds() == 9 * 3600


def test_special_samples_carry_their_markers() -> None:
    html = parsed(8)
    assert html.get_content_type() == "text/html" and not html.is_multipart()
    auto = parsed(9)
    assert auto["Auto-Submitted"] == "auto-replied" and auto["X-Auto-Response-Suppress"] == "All"
    bounce = parsed(10)
    assert bounce.get_content_type() == "multipart/report"
    assert bounce.get_param("report-type") == "delivery-status"
    assert bounce["Return-Path"] == "<>" and bounce["From"].addresses[0].username == "MAILER-DAEMON"
    parts = [part.get_content_type() for part in bounce.iter_parts()]
    assert parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = list(bounce.iter_parts())[1].get_payload()
    assert isinstance(status, list) and len(status) == 2  # per-message and per-recipient fields
    recipient = status[1]
    assert isinstance(recipient, Message)
    assert recipient["Status"] == "5.1.1" and recipient["Action"] == "failed"
    listed = parsed(11)
    assert listed["List-Id"] == "Data Protection Weekly <dpweekly.lists.example.com>"
    assert listed["To"] != PRIVACY_ADDRESS
