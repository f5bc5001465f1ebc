"""Issue 4, part 3: giant and hostile mail. Each is processed or quarantined with a reason, never an exception.

The mails are built with the stdlib's email package; only where brokenness is the point are the built
bytes damaged afterwards. The pure tests go through `parse_message`, `classify` and `decide`, and through
`Intake.take_in` on a SQLite file (no servers); the last test sends the 25 MB mail through a real Dovecot.
"""

from __future__ import annotations

import base64
import random
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlmodel import Session, select

from bot.adapters.imap import Fetched
from bot.adapters.store.engine import make_engine
from bot.adapters.store.tables import MessageRow, OutboxRow
from bot.app.intake import Intake
from bot.app.mailing import Mailing
from bot.compose.templates import Renderer
from bot.core.classify import classify
from bot.core.classify.rules import Rules
from bot.core.decide import Action, Known, decide
from bot.core.model import InboundEmail, Kind
from bot.core.parse import parse_message
from bot.core.parse.limits import MAX_HEADER_VALUE, MAX_HEADERS
from bot.settings import load_rules, load_settings
from tests.botrun import ROOT, bot, cases, write_config

T = TypeVar("T")
MB = 1024 * 1024
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
BOT = "privacy@bot.test"
JA_DELETE = "登録している私の個人情報を削除してください。よろしくお願いいたします。"
EN_DELETE = "Please delete my personal data and close my account."


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(ROOT / "config" / "rules.toml")


def sort_and_decide(mail: InboundEmail, rules: Rules) -> tuple[Any, Any]:
    sorted_ = classify(mail, rules, own_addresses=frozenset({BOT}))
    return sorted_, decide(mail, sorted_, Known(), reply_cap=3)


def with_peak_memory(fn: Callable[[], T]) -> tuple[T, int]:
    """fn's result and the peak of Python memory allocated while it ran, in bytes."""
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def head(msg: EmailMessage | MIMEMultipart, subject: str, message_id: str,
         sender: str = "Ken Ito <ken.ito@example.jp>") -> None:
    msg["From"] = sender
    msg["To"] = BOT
    msg["Subject"] = subject
    msg["Date"] = "Tue, 01 Dec 2026 10:00:00 +0900"
    msg["Message-ID"] = message_id


def crlf(raw: bytes) -> bytes:
    """Line endings as IMAP hands mail out."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --- the mails --------------------------------------------------------------------------------------


def thousand_parts() -> bytes:
    """One text part asking for deletion, then 999 small attachments: 1,001 MIME parts with the container."""
    msg = MIMEMultipart("mixed")
    head(msg, "Delete my data", "<parts-1000@customer.test>", "Lia Chen <lia.chen@example.com>")
    msg.attach(MIMEText(EN_DELETE, "plain", "utf-8"))
    for i in range(999):
        if i % 2:
            part: MIMEBase = MIMEApplication(b"%%PDF-1.4 page %d" % i, "pdf")
        else:
            part = MIMEText(f"log line {i}", "plain", "utf-8")
        part.add_header("Content-Disposition", "attachment", filename=f"page-{i:03d}.{'pdf' if i % 2 else 'txt'}")
        msg.attach(part)
    return crlf(msg.as_bytes())


def nested_rfc822(depth: int) -> bytes:
    """A forward of a forward of ... `depth` levels; every level says a line of its own."""
    inner = EmailMessage()
    head(inner, "the original", "<core@customer.test>", "core@example.com")
    inner.set_content("the innermost words")
    raw = inner.as_bytes()
    for level in range(depth):
        # A message/rfc822 part whose payload is the already-serialised level below: the email package
        # writes it as it is, so building 200 levels needs no recursion (as_bytes of a 200-deep tree would).
        wrapped = MIMEBase("message", "rfc822")
        wrapped.set_payload(raw.decode("ascii"))
        outer = MIMEMultipart("mixed")
        head(outer, f"Fwd: level {level}", f"<nest-{level}@customer.test>", f"l{level}@example.com")
        outer.attach(MIMEText(f"{EN_DELETE} (level {level})", "plain", "utf-8"))
        outer.attach(wrapped)
        raw = outer.as_bytes()
    return crlf(raw)


@cache
def japanese_with_25mb_attachment() -> bytes:
    """A Japanese deletion request (UTF-8 text) with a 25 MB scan attached as base64 (about 34 MB on the wire)."""
    msg = EmailMessage()
    head(msg, "個人情報の削除のお願い", "<giant-25mb@customer.test>")
    msg.set_content(JA_DELETE + "\n本人確認書類のスキャンを添付します。\n", charset="utf-8")
    msg.add_attachment(random.Random(25).randbytes(25 * MB), maintype="application", subtype="octet-stream",
                       filename="本人確認書類.bin")
    return crlf(msg.as_bytes())


def huge_headers() -> bytes:
    """A 1 MB header line and 5,000 trace headers, all before From and Subject."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["X-Junk"] = "a" * MB
    for i in range(5000):
        msg[f"X-Trace-{i}"] = f"hop {i}"
    head(msg, "Delete my account", "<headers-5000@customer.test>", "Lia Chen <lia.chen@example.com>")
    msg.set_content(EN_DELETE)
    # max_line_length=None: the 1 MB line is written as one line, as a hostile sender would.
    return msg.as_bytes(policy=policy.SMTP.clone(max_line_length=None))


def nul_bytes() -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    head(msg, "Delete\x00 my\x00 data", "<nul\x00@customer.test>", "Ken\x00 Ito <ken.ito@example.jp>")
    msg["X-Nul"] = "a\x00b"
    msg.set_content(f"{EN_DELETE}\x00\n{JA_DELETE[:8]}\x00{JA_DELETE[8:]}\x00", charset="utf-8", cte="8bit")
    return msg.as_bytes()


def encoded_body(cte: str, text: str = JA_DELETE + "\n", charset: str = "utf-8") -> tuple[bytes, bytes]:
    """(header block with the blank line, encoded body) of a one-part mail built by the email package."""
    msg = EmailMessage(policy=policy.SMTP)
    head(msg, "削除", f"<{cte}@customer.test>")
    msg.set_content(text, charset=charset, cte=cte)
    raw = msg.as_bytes()
    top, _, body = raw.partition(b"\r\n\r\n")
    return top + b"\r\n\r\n", body


def lying(declared: str, actual: str, text: str = JA_DELETE, subject: str = "個人情報の削除") -> bytes:
    """Text and subject written in `actual`, labelled `declared` (the body as 8-bit, the subject as an encoded word)."""
    msg = MIMEText("", "plain", "utf-8")
    del msg["Content-Transfer-Encoding"]
    msg["Content-Transfer-Encoding"] = "8bit"
    msg.set_payload(text.encode(actual))
    msg.set_param("charset", declared)
    msg["From"] = "ken.ito@example.jp"
    msg["To"] = BOT
    msg["Message-ID"] = f"<lie-{declared}-{actual}@customer.test>"
    msg["Subject"] = f"=?{declared}?B?{base64.b64encode(subject.encode(actual)).decode()}?="
    return crlf(msg.as_bytes())


# --- (a) 1,000 MIME parts -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_thousand_mime_parts(rules: Rules) -> None:
    raw = thousand_parts()
    mail, peak = with_peak_memory(lambda: parse_message(raw))
    assert mail.parse_error == ""
    assert mail.text == EN_DELETE
    assert len(mail.attachments) == 999
    assert mail.attachments[0].filename == "page-000.txt" and mail.attachments[-1].filename == "page-998.txt"
    assert {a.content_type for a in mail.attachments} == {"text/plain", "application/pdf"}
    assert not any("MIME parts" in d for d in mail.defect_texts)  # 1,001 parts is under the cap of 2,000
    assert peak < 64 * MB, peak
    sorted_, decision = sort_and_decide(mail, rules)
    assert sorted_.kinds == (Kind.DELETION,)
    assert decision.action is Action.NEW_CASE and decision.template == "ack_rights"


# --- (b) message/rfc822 nested 200 deep -----------------------------------------------------------


@pytest.mark.timeout(60)
def test_rfc822_nested_200_deep_keeps_the_outer_words(rules: Rules) -> None:
    raw = nested_rfc822(200)
    mail, peak = with_peak_memory(lambda: parse_message(raw))
    assert mail.parse_error == ""
    assert (mail.subject, mail.from_addr) == ("Fwd: level 199", "l199@example.com")
    # Only the outermost sender's own words: the forwarded levels are an attachment, not what they wrote.
    assert mail.text == f"{EN_DELETE} (level 199)"
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("forwarded message", "message/rfc822")]
    assert peak < 64 * MB, peak
    assert sort_and_decide(mail, rules)[0].kinds == (Kind.DELETION,)


@pytest.mark.timeout(60)
def test_rfc822_chain_without_any_text_is_processed() -> None:
    # message/rfc822 directly inside message/rfc822, 200 times: nothing anyone wrote at the top level.
    raw = nested_rfc822(0)
    for _ in range(200):
        raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
    mail = parse_message(b"From: a@example.com\r\nSubject: chain\r\n" + raw)
    assert (mail.parse_error, mail.from_addr, mail.subject, mail.text) == ("", "a@example.com", "chain", "")
    assert mail.content_type == "message/rfc822"


# --- (c) 25 MB attachment, Japanese text ----------------------------------------------------------


@pytest.mark.timeout(120)
def test_25mb_attachment_with_japanese_text(rules: Rules) -> None:
    raw = japanese_with_25mb_attachment()
    assert len(raw) > 33 * MB
    mail, peak = with_peak_memory(lambda: parse_message(raw))
    assert mail.parse_error == "" and mail.defect_texts == ()
    assert mail.text.startswith(JA_DELETE)
    assert mail.subject == "個人情報の削除のお願い"
    (att,) = mail.attachments
    assert (att.filename, att.content_type, att.size) == ("本人確認書類.bin", "application/octet-stream", 25 * MB)
    # Measured at about 8.5 times the raw size (copies for line endings, the parsed payload, the decoded
    # attachment for its size); a bound that catches a new copy of the whole mail or worse.
    assert peak < 12 * len(raw), f"peak {peak / MB:.0f} MB for {len(raw) / MB:.0f} MB of mail"
    sorted_, decision = sort_and_decide(mail, rules)
    assert sorted_.language == "ja" and Kind.DELETION in sorted_.kinds
    assert decision.action is Action.NEW_CASE and decision.template == "ack_rights"


# --- (d) a 1 MB header line and 5,000 headers ------------------------------------------------------


@pytest.mark.timeout(60)
def test_megabyte_header_line_and_5000_headers(rules: Rules) -> None:
    raw = huge_headers()
    assert max(len(line) for line in raw.split(b"\r\n")) > MB
    start = time.perf_counter()
    mail, peak = with_peak_memory(lambda: parse_message(raw))
    elapsed = time.perf_counter() - start
    assert mail.parse_error == ""
    # From and Subject come after the 5,000 others and are still found.
    assert (mail.from_addr, mail.subject, mail.text) == ("lia.chen@example.com", "Delete my account", EN_DELETE)
    assert mail.message_id == "<headers-5000@customer.test>"
    assert len(mail.headers) == MAX_HEADERS
    assert mail.header("x-junk") == "a" * MAX_HEADER_VALUE
    assert f"{1 + 5000 + 5 + 3} headers, only the first {MAX_HEADERS} kept" in mail.defect_texts
    assert peak < 64 * MB, peak
    assert elapsed < 10, elapsed
    assert sort_and_decide(mail, rules)[0].kinds == (Kind.DELETION,)


# --- (e) NUL bytes --------------------------------------------------------------------------------


def test_nul_bytes_in_headers_and_body(rules: Rules) -> None:
    raw = nul_bytes()
    assert raw.count(b"\x00") == 8
    mail = parse_message(raw)
    assert mail.parse_error == ""
    assert (mail.from_name, mail.from_addr, mail.subject) == ("Ken Ito", "ken.ito@example.jp", "Delete my data")
    assert mail.message_id == "<nul@customer.test>"
    assert mail.header("x-nul") == "ab"
    assert mail.text == f"{EN_DELETE}\n{JA_DELETE}"
    assert not any("\x00" in value for value in _strings(mail))  # PostgreSQL refuses NUL in text
    assert sort_and_decide(mail, rules)[0].kinds == (Kind.DELETION,)


def _strings(mail: InboundEmail) -> list[str]:
    return [mail.message_id, mail.from_addr, mail.from_name, mail.reply_to, *mail.to_addrs, mail.subject,
            mail.text, *mail.in_reply_to, *mail.references, *(v for h in mail.headers for v in h),
            *(a.filename for a in mail.attachments), *mail.defect_texts]


# --- (f) broken base64 and quoted-printable -------------------------------------------------------

_B64_TOP, _B64 = encoded_body("base64")
_QP_TOP, _QP = encoded_body("quoted-printable")


@pytest.mark.parametrize(
    ("body", "text", "defect"),
    [
        pytest.param(_B64[:20] + b"!!*#" + _B64[20:], JA_DELETE, "invalid characters in base64", id="junk-inside"),
        pytest.param(_B64.rstrip().rstrip(b"=") + b"\r\n", JA_DELETE, "bad base64 padding", id="no-padding"),
        pytest.param(_B64 + b"-- \r\nsent from my phone\r\n", JA_DELETE, "invalid characters in base64",
                     id="signature-after"),
        # Cut by a careless gateway: the text up to the cut is still there.
        pytest.param(_B64[:40], JA_DELETE[:10], "", id="cut-at-a-character"),
        pytest.param(_B64[:42], JA_DELETE[:10] + "\ufffd", "text ends in the middle of a character in part 1",
                     id="cut-2-past-a-quartet"),
        pytest.param(_B64[:41], JA_DELETE[:10], "truncated base64", id="cut-1-past-a-quartet"),
    ],
)
def test_broken_base64_text_is_recovered(body: bytes, text: str, defect: str) -> None:
    mail = parse_message(_B64_TOP + body)
    assert mail.parse_error == ""
    assert mail.text == text.rstrip("\n")
    if defect:
        assert defect in mail.defect_texts


@pytest.mark.parametrize(
    ("body", "text"),
    [
        # "人" is =E4=BA=BA: its first byte made a non-escape, the other two bytes are damage.
        pytest.param(_QP.replace(b"=E4=BA=BA", b"=ZZ=BA=BA", 1), JA_DELETE.replace("人", "=ZZ\ufffd\ufffd"),
                     id="bad-escape"),
        pytest.param(_QP.lower(), JA_DELETE, id="lower-case-hex"),
        pytest.param(_QP.replace(b"=E4=BA=BA", b"=\r\n=BA=BA", 1), JA_DELETE.replace("人", "\ufffd\ufffd"),
                     id="soft-break-instead-of-a-byte"),
        # Cut inside "私" (=E7=A7=81), then a torn escape.
        pytest.param(_QP[:60] + b"=E", JA_DELETE[:6] + "\ufffd=E", id="cut-in-an-escape"),
        pytest.param(_QP[:27] + b"=FF" + _QP[27:], JA_DELETE.replace("し", "し\ufffd", 1), id="stray-byte"),
    ],
)
def test_broken_quoted_printable_text_is_recovered(body: bytes, text: str) -> None:
    mail = parse_message(_QP_TOP + body)
    assert mail.parse_error == ""
    # The damage costs the characters it touches, never the rest of the text.
    assert mail.text == text.rstrip("\n")
    damaged = text != JA_DELETE
    assert mail.defect_texts == (("text is not valid utf-8, invalid bytes replaced in part 1",) if damaged else ())


# --- (g) lying charsets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "actual"),
    [
        pytest.param("iso-2022-jp", "cp932", id="says-iso-2022-jp-is-shift-jis"),
        pytest.param("us-ascii", "utf-8", id="says-us-ascii-is-utf-8"),
        pytest.param("iso-2022-jp", "euc_jp", id="says-iso-2022-jp-is-euc-jp"),
        pytest.param("shift_jis", "utf-8", id="says-shift-jis-is-utf-8"),
        pytest.param("utf-8", "cp932", id="says-utf-8-is-shift-jis"),
    ],
)
def test_lying_charset_still_reads_japanese(declared: str, actual: str, rules: Rules) -> None:
    mail = parse_message(lying(declared, actual))
    assert mail.parse_error == ""
    assert mail.subject == "個人情報の削除"
    assert mail.text == JA_DELETE
    label = declared.replace("_", "-")
    assert any(d.startswith(f"text is not valid {label}, read as ") and d.endswith("in part 1") for d in mail.defect_texts)
    sorted_ = sort_and_decide(mail, rules)[0]
    assert (sorted_.language, sorted_.kinds) == ("ja", (Kind.DELETION,))


def test_utf8_labelled_latin1_reads_japanese() -> None:
    assert parse_message(lying("iso-8859-1", "utf-8")).text == JA_DELETE


# --- through the intake, on SQLite ----------------------------------------------------------------


@pytest.fixture
def intake(tmp_path: Path, rules: Rules) -> Intake:
    url = f"sqlite:///{tmp_path}/bot.db"
    cfg = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=url)
    return Intake(Mailing(load_settings(cfg), Renderer(ROOT / "templates")), make_engine(url), rules)


HOSTILE: dict[str, Callable[[], bytes]] = {
    "1000-parts": thousand_parts,
    "rfc822-200-deep": lambda: nested_rfc822(200),
    "1mb-header-5000-headers": huge_headers,
    "nul-bytes": nul_bytes,
    "base64-cut-1-past-a-quartet": lambda: _B64_TOP + _B64[:65],  # after "削除"
    "qp-cut-in-an-escape": lambda: _QP_TOP + _QP[:200] + b"=E",
    "lying-iso-2022-jp": lambda: lying("iso-2022-jp", "cp932"),
    "lying-us-ascii": lambda: lying("us-ascii", "utf-8"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", HOSTILE)
def test_intake_answers_each_hostile_mail_once(name: str, intake: Intake) -> None:
    raw = HOSTILE[name]()
    outcome = intake.take_in("INBOX", 1, Fetched(7, raw, len(raw), False), NOW)
    # Every one of these still carries a readable deletion request: it must be answered, not quarantined.
    assert outcome.action == Action.NEW_CASE.value, outcome.reason
    assert outcome.kinds == ("deletion",) and outcome.replied
    with Session(intake.engine) as s:
        (queued,) = s.exec(select(OutboxRow)).all()
        inbound = s.exec(select(MessageRow).where(MessageRow.direction == "in")).one()
    assert queued.to_addr in ("ken.ito@example.jp", "lia.chen@example.com", "l199@example.com")
    assert inbound.mailbox_uid == 7 and inbound.action == Action.NEW_CASE.value
    again = intake.take_in("INBOX", 1, Fetched(7, raw, len(raw), False), NOW)
    assert again.already  # the ledger has it: taking it in twice does nothing


def test_intake_quarantines_unreadable_mail_with_a_reason(intake: Intake) -> None:
    raw = b"\x00" * 1000 + b"\r\n\r\n" + b"\xff" * 1000
    outcome = intake.take_in("INBOX", 1, Fetched(8, raw, len(raw), False), NOW)
    assert outcome.action == Action.QUARANTINED.value
    assert outcome.reason == "no e-mail headers found: not an e-mail message"
    with Session(intake.engine) as s:
        assert s.exec(select(OutboxRow)).all() == []
        assert s.exec(select(MessageRow)).one().reason == outcome.reason


@pytest.mark.timeout(120)
def test_intake_answers_the_25mb_mail(intake: Intake) -> None:
    raw = japanese_with_25mb_attachment()
    outcome = intake.take_in("INBOX", 1, Fetched(9, raw, len(raw), False), NOW)
    assert (outcome.action, outcome.kinds, outcome.replied) == (Action.NEW_CASE.value, ("deletion",), True)
    with Session(intake.engine) as s:
        (queued,) = s.exec(select(OutboxRow)).all()
        inbound = s.exec(select(MessageRow).where(MessageRow.direction == "in")).one()
    assert queued.to_addr == "ken.ito@example.jp" and queued.status == "pending"
    assert b"In-Reply-To: <giant-25mb@customer.test>" in queued.raw
    assert len(queued.raw) < 200_000  # the reply does not carry the attachment back
    assert inbound.size == len(raw) and inbound.language == "ja"
    assert "本人確認書類.bin (application/octet-stream, 26214400)" in inbound.attachments


# --- through a real Dovecot -----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_25mb_mail_through_dovecot_gets_exactly_one_reply(tmp_path: Path, mailbox: Any, smtp_sink: Any) -> None:
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port,
                       db_url=f"sqlite:///{tmp_path}/bot.db")
    mailbox.append([japanese_with_25mb_attachment()])
    result = bot(cfg, "run", "--once", timeout=150)
    assert result.returncode == 0, result.stderr[-2000:]
    sent = smtp_sink.messages()  # recorded by the sink before it answered 250
    assert len(sent) == 1
    (reply,) = sent
    assert reply.rcpt_tos == ("ken.ito@example.jp",)
    assert reply.message["In-Reply-To"] == "<giant-25mb@customer.test>"
    (case,) = cases(cfg)
    assert (case["kinds"], case["language"]) == (["deletion"], "ja")
    assert bot(cfg, "run", "--once", timeout=150).returncode == 0  # a second pass answers nothing again
    assert len(smtp_sink.messages()) == 1
