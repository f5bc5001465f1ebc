"""Intake to reply through a real Dovecot and a real SMTP server, driving the CLI as a deployment would."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.adapters.store.engine import make_engine
from tests.botrun import bot, bot_process, case_detail, cases, wait_health, with_health, write_config
from tests.factories import legacy_japanese_mail, mail_bytes

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Inquiry:
    sender: str
    subject: str
    body: str
    kinds: tuple[str, ...]
    language: str
    charset: str = "utf-8"
    html: bool = False
    reply_to: str = ""

    @property
    def address(self) -> str:
        return self.sender.split("<")[-1].rstrip(">").lower()


INQUIRIES: tuple[Inquiry, ...] = (
    Inquiry("Ruth Adams <ruth.adams@example.com>", "My data",
            "Please send me a copy of all personal information you hold about me.", ("disclosure",), "en"),
    Inquiry("Ken Ito <ken.ito@example.jp>", "個人情報の削除",
            "登録している私の個人情報を削除してください。", ("deletion",), "ja", "iso-2022-jp"),
    Inquiry("Mark Bell <mark.bell@example.org>", "Stop the brochures",
            "Please stop sending me marketing mail and brochures.", ("marketing_opt_out",), "en"),
    Inquiry("Aya Mori <aya.mori@example.jp>", "住所の訂正",
            "登録されている住所が間違っています。訂正をお願いします。", ("amendment",), "ja", "shift_jis"),
    Inquiry("Tom Green <tom.green@example.com>", "Wrong phone number",
            "The phone number in your records is wrong. Please correct my details.", ("amendment",), "en"),
    Inquiry("Lia Chen <lia.chen@example.com>", "Delete my account",
            "I want you to delete my personal data and close my account.", ("deletion",), "en"),
    Inquiry("Omar Haddad <omar@example.net>", "Third parties",
            "Please stop sharing my personal information with third parties.", ("third_party_stop",), "en"),
    Inquiry("佐藤 花子 <hanako.sato@example.jp>", "第三者提供の停止について",
            "私の個人情報の第三者への提供を停止してください。", ("third_party_stop",), "ja"),
    Inquiry("Taro Suzuki <taro.suzuki@example.jp>", "開示請求",
            "御社が保有している私の個人情報の開示を請求します。", ("disclosure",), "ja", "iso-2022-jp"),
    Inquiry("Emma Stone <emma.stone@example.com>", "Add my details",
            "Please add my new work phone number to my personal information on file.", ("addition",), "en"),
    Inquiry("Jiro Tanaka <jiro.tanaka@example.jp>", "登録情報の追加",
            "登録されている個人情報に勤務先の電話番号を追加してください。", ("addition",), "ja", "shift_jis"),
    Inquiry("Nina Park <nina.park@example.com>", "Several requests",
            "Please send me a copy of my personal data, then delete my personal data. "
            "Also stop sending me newsletters.", ("disclosure", "deletion", "marketing_opt_out"), "en"),
    Inquiry("Yuki Kato <yuki.kato@example.jp>", "開示とDM停止",
            "保有個人データの開示と、ダイレクトメールの停止をお願いします。", ("disclosure", "marketing_opt_out"), "ja"),
    Inquiry("Mai Ono <mai.ono@example.jp>", "ＤＭ停止",
            "ＤＭの送付を停止してください。よろしくお願いいたします。", ("marketing_opt_out",), "ja", "iso-2022-jp"),
    Inquiry("Paul Kim <paul.kim@example.com>", "A question",
            "I have a question about your privacy policy: how long do you keep my personal information?",
            ("general",), "en"),
    Inquiry("Sam Lee <sam.lee@example.com>", "Hello",
            "Hello, I bought a car from your dealer last year and it is great.", ("general",), "en"),
    Inquiry("Ann Wu <ann.wu@example.com>", "Access request",
            "<html><body><p>I would like to request access to my personal data.</p></body></html>",
            ("disclosure",), "en", html=True),
    Inquiry("Kaori Abe <kaori.abe@example.jp>", "削除のお願い",
            "<html><body><div>私の個人情報を削除してください。</div><div>よろしくお願いします。</div></body></html>",
            ("deletion",), "ja", html=True),
    Inquiry("Ben Fox <ben.fox@example.com>", "Re: your newsletter",
            "Please delete my personal data.\n\nOn Mon, 30 Nov 2026, Someone wrote:\n"
            "> Please send me a copy of all personal information you hold about me.\n", ("deletion",), "en"),
    Inquiry("Hiro Sasaki <hiro.sasaki@example.jp>", "ﾃﾞｰﾀ削除",
            "ﾃﾞｰﾀの削除をお願いします。私の個人情報を消去してください。", ("deletion",), "ja"),
    Inquiry("Office Account <shared-box@example.com>", "Disclosure request",
            "Please send me a copy of the personal data you hold about me.", ("disclosure",), "en",
            reply_to="real.person@example.com"),
    Inquiry("Grace Hall <grace.hall@example.com>", "Opt out",
            "Unsubscribe me from all marketing e-mails, please.", ("marketing_opt_out",), "en"),
)
RIGHTS = {"disclosure", "amendment", "addition", "deletion", "third_party_stop"}


def inquiry_bytes(i: int, q: Inquiry) -> bytes:
    mid = f"<inq-{i}@customer.test>"
    if q.charset in ("iso-2022-jp", "shift_jis"):
        return legacy_japanese_mail(sender=q.sender, subject=q.subject, body=q.body, charset=q.charset, message_id=mid)
    headers = {"Reply-To": q.reply_to} if q.reply_to else None
    return mail_bytes(sender=q.sender, subject=q.subject, body=q.body, message_id=mid, headers=headers,
                      html=q.body if q.html else None)


def has_kana(text: str) -> bool:
    return sum(1 for ch in text if "\u3040" <= ch <= "\u30ff") >= 10


def text_of(msg) -> str:
    return "\n".join(p.get_content() for p in msg.walk() if p.get_content_type() == "text/plain")


@pytest.fixture
def config(tmp_path: Path, mailbox, smtp_sink, db_url) -> Path:
    return write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=db_url)


def test_inquiries_answered_once_sorted_and_threaded(config: Path, mailbox, smtp_sink) -> None:
    mailbox.append([inquiry_bytes(i, q) for i, q in enumerate(INQUIRIES)])
    result = bot(config, "run", "--once")
    assert result.returncode == 0, result.stderr[-2000:]

    sent = smtp_sink.wait_for(len(INQUIRIES), timeout=10)
    assert len(sent) == len(INQUIRIES)
    by_case = {c["requester"]: c for c in cases(config)}
    for i, q in enumerate(INQUIRIES):
        mid = f"<inq-{i}@customer.test>"
        replies = [m for m in sent if m.message["In-Reply-To"] == mid]
        assert len(replies) == 1, (q.subject, len(replies))
        reply = replies[0]
        expected_to = q.address  # SPEC section 9: From; Reply-To only for an authenticated sender (none here)
        assert reply.rcpt_tos == (expected_to,)
        msg = reply.message
        case = by_case[expected_to]
        assert tuple(case["kinds"]) == q.kinds, q.subject
        assert case["language"] == q.language, q.subject
        assert case["status"] == ("awaiting_documents" if RIGHTS & set(q.kinds) else
                                  "in_progress" if q.kinds == ("marketing_opt_out",) else "needs_staff")
        assert msg["Subject"].startswith(f"[{case['ref']}]")
        assert mid in msg["References"]
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["Message-ID"] and msg["Reply-To"] == "privacy@bot.test"
        assert has_kana(text_of(msg)) is (q.language == "ja"), q.subject
        pdfs = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
        assert len(pdfs) == (1 if RIGHTS & set(q.kinds) else 0), q.subject
        if pdfs:
            assert pdfs[0].get_content().startswith(b"%PDF")
    # processed mail is \Seen on the server
    client = mailbox.client()
    client.select_folder("INBOX")
    assert len(client.search(["UNSEEN"])) == 0
    client.logout()

    # a second pass sends nothing new
    assert bot(config, "run", "--once").returncode == 0  # the sink records a mail before it answers 250
    assert len(smtp_sink.messages()) == len(INQUIRIES)


def test_follow_ups_join_their_case_without_acknowledgement(config: Path, mailbox, smtp_sink) -> None:
    first, second = INQUIRIES[0], INQUIRIES[1]
    mailbox.append([inquiry_bytes(0, first), inquiry_bytes(1, second)])
    assert bot(config, "run", "--once").returncode == 0
    acks = smtp_sink.wait_for(2, timeout=10)
    refs = {c["requester"]: c["ref"] for c in cases(config)}
    ack_to_second = next(m for m in acks if m.rcpt_tos == (second.address,))

    follow_ups = [
        # carries [REF] in the subject, no threading headers
        mail_bytes(sender=first.sender, subject=f"Re: [{refs[first.address]}] My data",
                   body="Here is my postal address: 1-2-3 Minato, Tokyo.", message_id="<fu-1@customer.test>"),
        # answers our acknowledgement by In-Reply-To only, subject without the reference
        mail_bytes(sender=second.sender, subject="Re: 削除", body="郵送で書類を送りました。",
                   message_id="<fu-2@customer.test>",
                   headers={"In-Reply-To": ack_to_second.message["Message-ID"]}),
        # an out-of-office answering our acknowledgement: joins silently too
        mail_bytes(sender=first.sender, subject="Automatic reply: [x]", body="I am away.",
                   message_id="<fu-3@customer.test>",
                   headers={"Auto-Submitted": "auto-replied", "In-Reply-To": acks[0].message["Message-ID"]}),
    ]
    mailbox.append(follow_ups)
    assert bot(config, "run", "--once").returncode == 0
    assert len(smtp_sink.messages()) == 2  # no new acknowledgement
    assert len(cases(config)) == 2
    first_case = case_detail(config, refs[first.address])
    ids = [m["message_id"] for m in first_case["messages"]]
    assert "<fu-1@customer.test>" in ids
    assert "customer_message" in [e["kind"] for e in first_case["events"]]
    second_case = case_detail(config, refs[second.address])
    assert "<fu-2@customer.test>" in [m["message_id"] for m in second_case["messages"]]


def test_crash_between_recording_and_sending_sends_exactly_once(config: Path, mailbox, smtp_sink, tmp_path) -> None:
    mailbox.append([inquiry_bytes(0, INQUIRIES[0])])
    marker = tmp_path / "recorded"
    proc = bot_process(config, "run", "--once", pause_after_reply=marker)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate(timeout=5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert smtp_sink.messages() == []  # recorded, not sent (the sink records a mail before it answers 250)

    assert bot(config, "run", "--once").returncode == 0
    sent = smtp_sink.messages()
    assert len(sent) == 1 and sent[0].message["In-Reply-To"] == "<inq-0@customer.test>"
    assert bot(config, "run", "--once").returncode == 0
    assert len(smtp_sink.messages()) == 1
    assert len(cases(config)) == 1


def test_idle_answers_new_mail_within_two_seconds(config: Path, mailbox, smtp_sink, tmp_path) -> None:
    port = with_health(config)
    log_path = tmp_path / "bot.log"
    with log_path.open("w") as log_file:
        proc = bot_process(config, "run", stderr=log_file)
        try:
            wait_health(port, timeout=30)  # watching the mailbox
            start = time.monotonic()
            mailbox.append([inquiry_bytes(0, INQUIRIES[0])])
            sent = smtp_sink.wait_for(1, timeout=10)
            elapsed = time.monotonic() - start
            assert len(sent) == 1
            assert elapsed < 2.0, f"answered after {elapsed:.2f} s"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=15)
                assert proc.returncode == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise


def _until_retries_are_due(db_url: str) -> None:
    """Wait until every pending outbox row is due again (their backoff is in the database)."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        due = conn.execute(text("SELECT max(next_attempt_at) FROM outbox WHERE status = 'pending'")).scalar()
    engine.dispose()
    if due is not None:
        due = datetime.fromisoformat(str(due)).replace(tzinfo=UTC) if isinstance(due, str) else due
        due = due if due.tzinfo else due.replace(tzinfo=UTC)
        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.05)


def test_failed_sends_wait_in_the_outbox_and_are_retried(config: Path, mailbox, smtp_sink, db_url: str) -> None:
    mailbox.append([inquiry_bytes(0, INQUIRIES[0]), inquiry_bytes(2, INQUIRIES[2])])
    smtp_sink.fail_next(2, code=451)  # the server is busy for both
    assert bot(config, "run", "--once").returncode == 0
    assert smtp_sink.messages() == []
    _until_retries_are_due(db_url)
    smtp_sink.fail_next(1, code=550)  # now one is refused for good
    assert bot(config, "run", "--once").returncode == 0
    sent = smtp_sink.messages()
    assert len(sent) == 1
    events = {c["ref"]: [e["kind"] for e in case_detail(config, c["ref"])["events"]] for c in cases(config)}
    assert sorted("sent" in kinds for kinds in events.values()) == [False, True]
    assert sum("send_failed" in kinds for kinds in events.values()) == 1
    _until_retries_are_due(db_url)
    assert bot(config, "run", "--once").returncode == 0  # a permanent failure is not retried
    assert len(smtp_sink.messages()) == 1


def test_run_reconnects_after_the_imap_server_restarts(config: Path, mailbox, smtp_sink, tmp_path) -> None:
    port = with_health(config)
    log_path = tmp_path / "bot.log"
    with log_path.open("w") as log_file:
        proc = bot_process(config, "run", stderr=log_file)
        try:
            wait_health(port, timeout=30)
            mailbox.restart()
            mailbox.append([inquiry_bytes(0, INQUIRIES[0])])
            try:
                sent = smtp_sink.wait_for(1, timeout=20)
            except TimeoutError:
                raise AssertionError(log_path.read_text()[-3000:]) from None
            assert len(sent) == 1
            assert "reconnecting" in log_path.read_text()
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
