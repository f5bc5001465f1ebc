"""parse_message: raw bytes in, InboundEmail out. Every mail here is built in the test."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.model import Attachment, InboundEmail
from bot.core.parse import parse_message
from bot.core.parse.limits import MAX_TEXT

CRLF = b"\r\n"
SYNTHETIC_ID = re.compile(r"<synthetic-[0-9a-f]{24}@privacy-bot\.invalid>")


def mail(*headers: str | bytes, body: bytes = b"hello\r\n", sep: bytes = CRLF) -> bytes:
    """A raw message: header lines, a blank line, the body; `sep` is the line ending used."""
    lines = [h if isinstance(h, bytes) else h.encode("ascii") for h in headers]
    return sep.join(lines) + sep + sep + body.replace(CRLF, sep)


def b_word(text: str, charset: str, codec: str | None = None) -> str:
    """An RFC 2047 B encoded word."""
    encoded = base64.b64encode(text.encode(codec or charset)).decode("ascii")
    return f"=?{charset}?B?{encoded}?="


def jis_ms(*pieces: str | bytes) -> bytes:
    """ISO-2022-JP as Windows writes it (CP50220): str pieces are plain JIS X 0208, bytes pieces are
    raw JIS code pairs such as NEC row 13 that Python's iso2022_jp codec cannot encode."""
    out = b""
    for piece in pieces:
        out += piece.encode("iso2022_jp")[3:-3] if isinstance(piece, str) else piece
    return b"\x1b$B" + out + b"\x1b(B"


# --- body text and charsets -----------------------------------------------------------------------

BODY_CASES = [
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=utf-8",
            body="個人情報の開示をお願いします。\r\n".encode(),
        ),
        "個人情報の開示をお願いします。",
        (),
        id="utf8-plain",
    ),
    pytest.param(
        MIMEText("個人情報の削除を希望します。\n山田", "plain", "iso-2022-jp").as_bytes(),
        "個人情報の削除を希望します。\n山田",
        (),
        id="iso-2022-jp-built-by-email-package",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            'Content-Type: text/plain; charset="Shift_JIS"',
            "Content-Transfer-Encoding: 8bit",
            body="①株式会社→㈱　髙橋～\r\n".encode("cp932"),
        ),
        "①株式会社→㈱　髙橋～",
        (),
        id="shift_jis-label-cp932-extensions",
    ),
    pytest.param(
        mail(
            "From: a@example.jp", "Content-Type: text/plain; charset=x-sjis", body="開示請求".encode("cp932")
        ),
        "開示請求",
        (),
        id="x-sjis-label",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=EUC-JP",
            body="個人情報の訂正を依頼します。".encode("euc_jp"),
        ),
        "個人情報の訂正を依頼します。",
        (),
        id="euc-jp",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=euc-jp",
            body=b"\xad\xa1 " + "会員".encode("euc_jp"),
        ),
        "① 会員",
        (),
        id="euc-jp-ms-nec-row13",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain",
            body="ご担当者様\r\n\r\n登録情報の削除をお願いします。\r\n山田".encode("cp932"),
        ),
        "ご担当者様\n\n登録情報の削除をお願いします。\n山田",
        ("no charset declared, read as cp932 in part 1",),
        id="no-charset-shift_jis-bytes",
    ),
    pytest.param(
        mail("From: a@example.jp", body="個人情報の開示をお願いします。".encode("cp932")),
        "個人情報の開示をお願いします。",
        ("no charset declared, read as cp932 in part 1",),
        id="no-content-type-shift_jis-bytes",
    ),
    pytest.param(
        mail("From: a@example.jp", "Content-Type: text/plain; charset=us-ascii", body="Grüße, 山田".encode()),
        "Grüße, 山田",
        ("text is not valid us-ascii, read as utf_8 in part 1",),
        id="declared-us-ascii-actually-utf8",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=iso-2022-jp",
            body="ﾃﾞｰﾀを削除してください".encode("iso2022_jp_ext"),
        ),
        "ﾃﾞｰﾀを削除してください",
        (),
        id="iso-2022-jp-halfwidth-katakana-esc-I",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=ISO-2022-JP",
            body=jis_ms(b"-!", "株式会社", b"-j") + b" \x0eC^0@\x0f\r\n",
        ),
        "①株式会社㈱ ﾃﾞｰﾀ",
        (),
        id="iso-2022-jp-ms-nec-and-so-si-kana",
    ),
    pytest.param(
        mail("From: a@example.jp", "Content-Type: text/plain; charset=x-unknown", body="ありがとう".encode()),
        "ありがとう",
        ("undecodable charset x-unknown, read as utf_8 in part 1",),
        id="unknown-charset-label",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=utf-8",
            body="氏名：山田太郎".encode()[:-1],
        ),
        "氏名：山田太\ufffd",
        ("text ends in the middle of a character in part 1",),
        id="utf8-cut-mid-character",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=utf-8",
            body=b"Caf\xe9 cr\xe8me, d\xe9j\xe0 vu",
        ),
        "Café crème, déjà vu",
        ("text is not valid utf-8, read as cp1252 in part 1",),
        id="declared-utf8-actually-latin",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            body=base64.b64encode("\ufeff削除依頼\r\n以上".encode()).rstrip(b"="),
        ),
        "削除依頼\n以上",
        ("bad base64 padding",),
        id="base64-bom-crlf-bad-padding",
    ),
    pytest.param(
        mail(
            "From: a@example.jp",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            body=b"=E5=89=8A=E9=99=A4=\r\n=E4=BE=9D=E9=A0=BC",
        ),
        "削除依頼",
        (),
        id="quoted-printable-soft-break",
    ),
]


@pytest.mark.parametrize(("raw", "text", "defects"), BODY_CASES)
def test_body_text(raw: bytes, text: str, defects: tuple[str, ...]) -> None:
    parsed = parse_message(raw)
    assert parsed.text == text
    assert parsed.defect_texts == defects
    assert parsed.html_only is False
    assert parsed.parse_error == ""


# --- subjects -------------------------------------------------------------------------------------

SUBJECT_CASES = [
    pytest.param(
        f"Subject: {b_word('個人情報の開示請求', 'ISO-2022-JP', 'iso2022_jp')}",
        "個人情報の開示請求",
        (),
        id="iso-2022-jp-B",
    ),
    pytest.param(
        f"Subject: {b_word('開示請求①', 'Shift_JIS', 'cp932')}", "開示請求①", (), id="shift_jis-B-nec"
    ),
    pytest.param(
        "Subject: =?EUC-JP?Q?" + "".join(f"={b:02X}" for b in "訂正依頼".encode("euc_jp")) + "?=",
        "訂正依頼",
        (),
        id="euc-jp-Q",
    ),
    pytest.param(
        "Subject: =?ISO-2022-JP?B?" + base64.b64encode(jis_ms(b"-j", "テスト")).decode() + "?=",
        "㈱テスト",
        (),
        id="iso-2022-jp-ms-B",
    ),
    pytest.param(
        f"Subject: {b_word('ﾃﾞｰﾀ削除', 'iso-2022-jp', 'iso2022_jp_ext')}",
        "ﾃﾞｰﾀ削除",
        (),
        id="iso-2022-jp-halfwidth-kana-B",
    ),
    pytest.param(f"Subject: Re: {b_word('削除', 'UTF-8')}", "Re: 削除", (), id="plain-then-encoded"),
    pytest.param(
        f"Subject: {b_word('削除', 'UTF-8')} (PRV-2026-00042)",
        "削除 (PRV-2026-00042)",
        (),
        id="encoded-then-plain",
    ),
    pytest.param(
        f"Subject: {b_word('個人', 'UTF-8')}\r\n {b_word('情報', 'ISO-2022-JP', 'iso2022_jp')}",
        "個人情報",
        (),
        id="adjacent-words-folded-whitespace-dropped",
    ),
    pytest.param(
        "Subject: Re: TEST\r\n \r\n\t=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=",
        "Re: TEST テスト",
        (),
        id="rfc2822-example14-style",
    ),
    pytest.param(
        "Subject: =?NONE?B?VEVTVA==?=",
        "TEST",
        ("undecodable charset none, read as ascii in header subject",),
        id="bogus-charset-label",
    ),
    pytest.param(b"Subject: " + "個人情報".encode(), "個人情報", (), id="raw-utf8-rfc6532"),
    pytest.param(
        b"Subject: " + "個人情報の開示".encode("cp932"),
        "個人情報の開示",
        ("unencoded non-ASCII text, read as cp932 in header subject",),
        id="raw-shift_jis",
    ),
    pytest.param(
        b"Subject: " + "個人情報の開示".encode("euc_jp"),
        "個人情報の開示",
        ("unencoded non-ASCII text, read as euc_jp in header subject",),
        id="raw-euc-jp",
    ),
    pytest.param(
        b"Subject: " + "開示".encode("iso2022_jp"),
        "開示",
        ("unencoded non-ASCII text, read as iso-2022-jp in header subject",),
        id="raw-jis-escape-sequences",
    ),
    pytest.param(
        "Subject: long subject\r\n  continued\r\n\tand more",
        "long subject continued and more",
        (),
        id="folded",
    ),
    pytest.param(b"Subject: a\x07b\tc\x00d\x1b", "ab cd", (), id="control-chars-removed"),
    pytest.param(
        "Subject: =?UTF-8?Q?Hello=0D=0ABcc:_evil@example.com?=",
        "Hello Bcc: evil@example.com",
        (),
        id="encoded-crlf-injection",
    ),
    pytest.param("Subject: " + "x" * 3000, "x" * 2000, (), id="capped-at-2000"),
]


@pytest.mark.parametrize(("header", "subject", "defects"), SUBJECT_CASES)
def test_subject(header: str | bytes, subject: str, defects: tuple[str, ...]) -> None:
    parsed = parse_message(mail("From: a@example.jp", header))
    assert parsed.subject == subject
    assert parsed.defect_texts == defects


def test_iso_2022_jp_message_built_by_email_package() -> None:
    msg = MIMEText("開示請求の手続きを教えてください。", "plain", "iso-2022-jp")
    msg["Subject"] = Header("個人情報の開示について", "iso-2022-jp").encode()
    msg["From"] = formataddr(("山田 太郎", "Taro@Example.JP"), charset="iso-2022-jp")
    raw = msg.as_bytes()
    assert b"=?iso-2022-jp?b?" in raw
    parsed = parse_message(raw)
    assert parsed.subject == "個人情報の開示について"
    assert parsed.text == "開示請求の手続きを教えてください。"
    assert (parsed.from_addr, parsed.from_name) == ("taro@example.jp", "山田 太郎")
    assert parsed.defect_texts == ()


# --- addresses, date, ids, headers ----------------------------------------------------------------

ADDRESS_CASES = [
    pytest.param(
        ["From: Taro Yamada <Taro.Yamada@Example.JP>"],
        ("taro.yamada@example.jp", "Taro Yamada", "", ()),
        id="plain",
    ),
    pytest.param(
        [
            f"From: {b_word('山田 太郎', 'UTF-8')} <taro@example.jp>",
            "Reply-To: Other <Reply@Example.COM>, x@y.jp",
        ],
        ("taro@example.jp", "山田 太郎", "reply@example.com", ()),
        id="encoded-name-and-reply-to",
    ),
    pytest.param(
        [b'From: "' + "山田".encode("cp932") + b'" <taro@example.jp>'],
        ("taro@example.jp", "山田", "", ()),
        id="raw-8bit-name",
    ),
    pytest.param(
        [
            "From: taro@example.jp",
            "To: privacy@example.com, Hanako <HANAKO@example.jp>,\r\n privacy@example.com",
        ],
        ("taro@example.jp", "", "", ("privacy@example.com", "hanako@example.jp")),
        id="to-list-deduplicated",
    ),
    pytest.param(
        ["From: MAILER-DAEMON", "To: unlisted-recipients:; (no To-header on input)"],
        ("", "", "", ()),
        id="no-domain-and-empty-group",
    ),
    pytest.param(["Subject: no sender"], ("", "", "", ()), id="absent"),
    pytest.param(
        [f"From: {b_word('x', 'UTF-8')} <a@b.jp>", "Reply-To: =?UTF-8?Q?evil=0D=0A?= <r@b.jp>"],
        ("a@b.jp", "x", "r@b.jp", ()),
        id="reply-to-with-encoded-newline",
    ),
    pytest.param(
        [
            "From: =?UTF-8?Q?Taro_spoof@evil.example?= <taro@example.jp>",
            "To: =?UTF-8?B?eEBldmlsLmV4YW1wbGU=?=",
        ],
        ("taro@example.jp", "Taro spoof@evil.example", "", ()),
        id="address-inside-encoded-word-ignored",
    ),
]


@pytest.mark.parametrize(("headers", "expected"), ADDRESS_CASES)
def test_addresses(headers: list[str | bytes], expected: tuple[str, str, str, tuple[str, ...]]) -> None:
    parsed = parse_message(mail(*headers))
    assert (parsed.from_addr, parsed.from_name, parsed.reply_to, parsed.to_addrs) == expected


JST = timezone(timedelta(hours=9))

DATE_CASES = [
    pytest.param(
        "Date: Wed, 28 May 2014 17:18:19 +0900 (JST)",
        datetime(2014, 5, 28, 17, 18, 19, tzinfo=JST),
        (),
        id="jst",
    ),
    pytest.param(
        "Date: Wed, 28 May 2014 08:18:19 -0000",
        datetime(2014, 5, 28, 8, 18, 19, tzinfo=UTC),
        (),
        id="naive-is-utc",
    ),
    pytest.param("Date: yesterday at noon", None, ("unparsable Date header",), id="garbage"),
    pytest.param(
        "Date: Wed, 99 Foo 2014 99:99:99 +0900", None, ("unparsable Date header",), id="out-of-range"
    ),
    pytest.param(
        "Date: Wed, 28 May 99999999999999999999 17:18:19 +0900",
        None,
        ("unparsable Date header",),
        id="overflow",
    ),
    pytest.param("X-No-Date: 1", None, (), id="absent"),
]


@pytest.mark.parametrize(("header", "expected", "defects"), DATE_CASES)
def test_date(header: str, expected: datetime | None, defects: tuple[str, ...]) -> None:
    parsed = parse_message(mail("From: a@example.jp", header))
    assert parsed.date == expected
    if expected is not None:
        assert parsed.date is not None and parsed.date.tzinfo is not None
    assert parsed.defect_texts == defects


def test_message_id_kept_with_brackets() -> None:
    parsed = parse_message(mail("From: a@example.jp", "Message-ID:\r\n <abc.123@mail.example.jp>"))
    assert (parsed.message_id, parsed.message_id_synthetic) == ("<abc.123@mail.example.jp>", False)


def test_missing_message_id_is_synthetic_and_stable() -> None:
    raw = mail("From: a@example.jp", "Subject: one")
    first, second = parse_message(raw), parse_message(raw)
    assert first.message_id_synthetic and second.message_id_synthetic
    assert SYNTHETIC_ID.fullmatch(first.message_id)
    assert first.message_id == second.message_id
    # The same mail with other line endings is the same mail.
    assert parse_message(mail("From: a@example.jp", "Subject: one", sep=b"\n")).message_id == first.message_id
    assert parse_message(mail("From: a@example.jp", "Subject: two")).message_id != first.message_id


@pytest.mark.parametrize(
    ("header", "defects"),
    [
        pytest.param("Message-ID:", (), id="empty"),
        pytest.param(
            "Message-ID: not an id", ("unusable Message-ID, replaced by a synthetic one",), id="garbage"
        ),
    ],
)
def test_unusable_message_id_is_synthetic(header: str, defects: tuple[str, ...]) -> None:
    parsed = parse_message(mail("From: a@example.jp", header))
    assert parsed.message_id_synthetic is True
    assert SYNTHETIC_ID.fullmatch(parsed.message_id)
    assert parsed.defect_texts == defects


def test_message_id_without_brackets_gets_them() -> None:
    parsed = parse_message(mail("From: a@example.jp", "Message-ID: 1234@host.example.jp"))
    assert (parsed.message_id, parsed.message_id_synthetic) == ("<1234@host.example.jp>", False)
    assert parsed.defect_texts == ("Message-ID without angle brackets",)


THREAD_CASES = [
    pytest.param(
        [
            "In-Reply-To: <a1@example.jp> (message from Taro)",
            "References: <r1@x.jp>\r\n <r2@x.jp>  <a1@example.jp>",
        ],
        (("<a1@example.jp>",), ("<r1@x.jp>", "<r2@x.jp>", "<a1@example.jp>")),
        id="folded",
    ),
    pytest.param(
        [
            "In-Reply-To: Your message of Mon, 1 Jan <a1@x.jp> and <a2@x.jp>",
            "References: garbage <no spaces@x> <ok@x>",
        ],
        (("<a1@x.jp>", "<a2@x.jp>"), ("<ok@x>",)),
        id="noise-around-ids",
    ),
    pytest.param(["In-Reply-To:", "References: none"], ((), ()), id="empty"),
]


@pytest.mark.parametrize(("headers", "expected"), THREAD_CASES)
def test_in_reply_to_and_references(
    headers: list[str], expected: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    parsed = parse_message(mail("From: a@example.jp", *headers))
    assert (parsed.in_reply_to, parsed.references) == expected


def test_references_capped_keeping_root_and_nearest() -> None:
    ids = [f"<{i}@x.jp>" for i in range(250)]
    parsed = parse_message(mail("From: a@example.jp", "References: " + "\r\n ".join(ids)))
    assert len(parsed.references) == 100
    assert parsed.references[0] == "<0@x.jp>"
    assert parsed.references[1] == "<151@x.jp>"
    assert parsed.references[-1] == "<249@x.jp>"


def test_headers_decoded_in_order() -> None:
    raw = mail(
        "Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000",
        "Received: from c by d",
        f"Subject: {b_word('開示', 'UTF-8')}",
        "X-Mailer: Test",
        "AUTO-SUBMITTED: auto-replied",
    )
    parsed = parse_message(raw)
    assert parsed.headers == (
        ("received", "from a by b; Mon, 1 Jan 2024 00:00:00 +0000"),
        ("received", "from c by d"),
        ("subject", "開示"),
        ("x-mailer", "Test"),
        ("auto-submitted", "auto-replied"),
    )
    assert parsed.header("Auto-Submitted") == "auto-replied"
    assert parsed.header_all("received") == ("from a by b; Mon, 1 Jan 2024 00:00:00 +0000", "from c by d")


def test_header_injection_attempts_never_leave_line_breaks() -> None:
    raw = mail(
        "From: =?UTF-8?Q?Taro=0D=0ABcc:_evil@example.com?= <taro@example.jp>",
        b"Subject: hello\rBcc: evil@example.com",
        "X-Note: =?UTF-8?B?" + base64.b64encode("a\r\nb\nc\rd\x85e\u2028f".encode()).decode() + "?=",
        b"X-Raw: one\x0btwo\x0cthree",
    )
    parsed = parse_message(raw)
    assert parsed.from_name == "Taro Bcc: evil@example.com"
    assert parsed.from_addr == "taro@example.jp"
    # A bare CR is a line ending: the "injected" line is a header of its own, not part of the subject.
    assert parsed.subject == "hello"
    assert parsed.header("bcc") == "evil@example.com"
    assert parsed.header("x-note") == "a b c d e f"
    assert parsed.header("x-raw") == "one two three"
    for _name, value in parsed.headers:
        assert not re.search(r"[\r\n\x0b\x0c\x85\u2028]", value)


def test_content_type_and_report_type() -> None:
    raw = mail(
        "From: MAILER-DAEMON@example.jp",
        'Content-Type: Multipart/Report; Report-Type="Delivery-Status"; boundary="b"',
        body=b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx\r\n\r\nAction: failed\r\n--b--\r\n",
    )
    parsed = parse_message(raw)
    assert (parsed.content_type, parsed.report_type) == ("multipart/report", "delivery-status")
    assert parsed.text == "failed"
    assert parsed.attachments == (Attachment("", "message/delivery-status", 40),)


@pytest.mark.parametrize(
    ("kwargs", "size", "truncated"),
    [
        pytest.param({}, 30, False, id="default-len-raw"),
        pytest.param({"size": 123_456, "truncated": True}, 123_456, True, id="reported-by-imap"),
    ],
)
def test_size_and_truncated(kwargs: dict[str, int | bool], size: int, truncated: bool) -> None:
    raw = mail("From: a@example.jp", body=b"x" * 8)
    assert len(raw) == 30
    parsed = parse_message(raw, **kwargs)  # type: ignore[arg-type]
    assert (parsed.size, parsed.truncated) == (size, truncated)


# --- structure: HTML, alternatives, attachments ---------------------------------------------------

HTML = """<html><head><title>Newsletter</title><style>p {color: red}</style>
<script>alert("x")</script></head>
<body><div>ご担当者様</div><p>個人情報の&amp;開示&nbsp;を<br>お願いします。</p>
<ul><li>氏名</li><li>住所</li></ul>
<table><tr><td>A</td><td>B</td></tr><tr><td>C</td></tr></table>
<!-- hidden <b>comment</b> --><p>a &lt; b &#x5c71;</p></body></html>"""


def test_html_only() -> None:
    raw = mail("From: a@example.jp", "Content-Type: text/html; charset=utf-8", body=HTML.encode())
    parsed = parse_message(raw)
    assert parsed.html_only is True
    assert (
        parsed.text
        == "ご担当者様\n\n個人情報の&開示\xa0を\nお願いします。\n\n氏名\n\n住所\n\nA B\n\nC\n\na < b 山"
    )


def test_multipart_alternative_prefers_plain() -> None:
    msg = MIMEMultipart("alternative")
    msg["From"] = "a@example.jp"
    msg.attach(MIMEText("プレーンテキスト", "plain", "utf-8"))
    msg.attach(MIMEText("<p>HTML版</p>", "html", "utf-8"))
    parsed = parse_message(msg.as_bytes())
    assert (parsed.text, parsed.html_only, parsed.content_type) == (
        "プレーンテキスト",
        False,
        "multipart/alternative",
    )
    assert parsed.attachments == ()


def test_several_plain_parts_joined() -> None:
    msg = MIMEMultipart("mixed")
    msg.attach(MIMEText("first\n", "plain", "utf-8"))
    msg.attach(MIMEText("second", "plain", "iso-2022-jp"))
    assert parse_message(msg.as_bytes()).text == "first\n\nsecond"


def test_attachments_names_types_sizes_and_no_forwarded_text() -> None:
    msg = MIMEMultipart("mixed")
    msg["From"] = "Taro <taro@example.jp>"
    msg["Subject"] = "書類"
    msg.attach(MIMEText("請求書を添付します。", "plain", "utf-8"))
    pdf = MIMEApplication(b"%PDF-1.4" + b"\x00" * 1000, "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename=("utf-8", "", "個人情報開示請求書.pdf"))
    msg.attach(pdf)
    # An encoded word as the name (not RFC 2231, but what many mailers send), inline, no disposition.
    image = MIMEBase("image", "jpeg", name=b_word("運転免許証.jpg", "UTF-8"))
    image["Content-Transfer-Encoding"] = "base64"
    image.set_payload(base64.encodebytes(b"\xff\xd8" + b"\x01" * 98).decode())
    msg.attach(image)
    inner = MIMEText("転送された本文", "plain", "utf-8")
    inner["Subject"] = "original"
    msg.attach(MIMEMessage(inner))
    note = MIMEText("note.txt content", "plain", "utf-8")
    note.add_header("Content-Disposition", "inline", filename="note.txt")
    msg.attach(note)
    parsed = parse_message(msg.as_bytes())
    assert parsed.text == "請求書を添付します。"
    names = [(a.filename, a.content_type, a.size) for a in parsed.attachments]
    assert names[:2] == [
        ("個人情報開示請求書.pdf", "application/pdf", 1008),
        ("運転免許証.jpg", "image/jpeg", 100),
    ]
    assert names[2][:2] == ("forwarded message", "message/rfc822")
    assert names[2][2] == len(inner.as_bytes())
    assert names[3] == ("note.txt", "text/plain", 16)
    assert "転送" not in parsed.text


def test_attachment_raw_iso_2022_jp_rfc2231_filename() -> None:
    name = "%".join(f"{b:02X}" for b in "申請書.pdf".encode("iso2022_jp"))
    raw = mail(
        "From: a@example.jp",
        'Content-Type: multipart/mixed; boundary="b"',
        body=b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n"
        b" filename*=iso-2022-jp'ja'%" + name.encode() + b"\r\n\r\nDATA\r\n--b--\r\n",
    )
    parsed = parse_message(raw)
    assert parsed.attachments == (Attachment("申請書.pdf", "application/octet-stream", 4),)


# --- line endings, empty and hostile input --------------------------------------------------------

SIMPLE = (
    "From: Taro <taro@example.jp>",
    "To: privacy@example.com",
    "Subject: =?UTF-8?B?5YmK6Zmk?=",
    "Message-ID: <m1@example.jp>",
)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(mail(*SIMPLE, body=b"line1\r\nline2\r\n"), id="crlf"),
        pytest.param(mail(*SIMPLE, body=b"line1\nline2\n", sep=b"\n"), id="lf"),
        pytest.param(mail(*SIMPLE, body=b"line1\rline2\r", sep=b"\r"), id="cr-only"),
        pytest.param(
            b"From: Taro <taro@example.jp>\nTo: privacy@example.com\r\nSubject: =?UTF-8?B?5YmK6Zmk?=\r"
            b"Message-ID: <m1@example.jp>\n\r\nline1\rline2\r\n",
            id="mixed",
        ),
        pytest.param(b"\xef\xbb\xbf" + mail(*SIMPLE, body=b"line1\r\nline2"), id="bom"),
        pytest.param(b"\r\n  \r\n" + mail(*SIMPLE, body=b"line1\r\nline2"), id="leading-blank-lines"),
    ],
)
def test_line_endings(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert (parsed.from_addr, parsed.to_addrs, parsed.subject) == (
        "taro@example.jp",
        ("privacy@example.com",),
        "削除",
    )
    assert (parsed.message_id, parsed.text, parsed.defect_texts) == ("<m1@example.jp>", "line1\nline2", ())


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b"", "empty message", id="empty"),
        pytest.param(b"\r\n \r\n\t", "empty message", id="blank"),
        pytest.param(bytes(range(256)) * 4, "no e-mail headers found: not an e-mail message", id="garbage"),
        pytest.param(
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "no e-mail headers found: not an e-mail message", id="png"
        ),
        pytest.param("From: a@b.jp\n\nx", "input is str, not bytes", id="not-bytes"),
    ],
)
def test_unreadable_input(raw: bytes, reason: str) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed, InboundEmail)
    assert parsed.parse_error == reason
    assert parsed.message_id_synthetic is True
    assert SYNTHETIC_ID.fullmatch(parsed.message_id)
    assert (parsed.text, parsed.headers, parsed.from_addr) == ("", (), "")


@pytest.mark.parametrize(
    ("content_type", "defect"),
    [
        pytest.param("multipart/mixed", "no boundary in multipart/mixed", id="no-boundary"),
        pytest.param(
            'multipart/mixed; boundary="zzz"',
            "start boundary not found in multipart/mixed",
            id="wrong-boundary",
        ),
    ],
)
def test_multipart_without_usable_boundary(content_type: str, defect: str) -> None:
    body = b"--b\r\nContent-Type: text/plain\r\n\r\nhello there\r\n--b--\r\n"
    parsed = parse_message(mail("From: a@example.jp", f"Content-Type: {content_type}", body=body))
    assert parsed.parse_error == ""
    assert parsed.content_type == "multipart/mixed"
    assert parsed.text == "--b\nContent-Type: text/plain\n\nhello there\n--b--"
    assert defect in parsed.defect_texts


def test_garbage_with_header_like_start_does_not_raise() -> None:
    raw = b"X: \xff\xfe\x00\x01\r\n\r\n" + bytes(range(256)) * 100
    parsed = parse_message(raw)
    assert parsed.parse_error == ""
    # Python's cp932 maps the lone bytes 0xFE and 0xFF to private-use characters, as Windows does.
    assert parsed.header("x") == "\uf8f3\uf8f2"
    assert len(parsed.text) > 0


def _nested(depth: int) -> bytes:
    head = 'From: a@example.jp\nContent-Type: multipart/mixed; boundary="b0"\n\n'
    parts = "".join(f'--b{i}\nContent-Type: multipart/mixed; boundary="b{i + 1}"\n\n' for i in range(depth))
    return (head + parts + f"--b{depth}\nContent-Type: text/plain\n\ndeep\n").encode()


@pytest.mark.timeout(20)
def test_deep_nesting_is_cut() -> None:
    parsed = parse_message(_nested(60))
    assert parsed.text == ""
    assert "MIME nesting deeper than 50 levels, inner parts skipped" in parsed.defect_texts
    assert parse_message(_nested(10)).text == "deep"


@pytest.mark.timeout(20)
def test_absurd_nesting_keeps_the_headers() -> None:
    parsed = parse_message(_nested(2000))
    assert (parsed.parse_error, parsed.from_addr, parsed.text) == ("", "a@example.jp", "")
    assert parsed.defect_texts == ("MIME structure could not be parsed (RecursionError), body skipped",)


@pytest.mark.timeout(20)
def test_too_many_parts() -> None:
    parts = "".join("--b\nContent-Type: application/pdf\n\nx\n" for _ in range(2500))
    raw = f'From: a@example.jp\nContent-Type: multipart/mixed; boundary="b"\n\n{parts}--b--\n'.encode()
    parsed = parse_message(raw)
    assert len(parsed.attachments) == 1999  # part 1 is the multipart itself
    assert "more than 2000 MIME parts, the rest skipped" in parsed.defect_texts


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"From: a@example.jp\nSubject: " + b"=?utf-8?B?44GC?= " * 12_000 + b"\n\nx",
            id="200k-encoded-subject",
        ),
        pytest.param(b"From: a@example.jp\nTo: " + b"<" * 200_000 + b"\n\nx", id="200k-to-of-brackets"),
        pytest.param(
            b"From: a@example.jp\nSubject: " + "あ".encode("cp932") * 100_000 + b"\n\nx", id="200k-raw-8bit"
        ),
        pytest.param(b"".join(b"X-H%d: v\n" % i for i in range(5000)) + b"\nx", id="5000-headers"),
    ],
)
def test_huge_headers_are_capped(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert parsed.parse_error == ""
    assert len(parsed.subject) <= 2000
    assert len(parsed.headers) <= 500
    assert all(len(value) <= 4000 for _name, value in parsed.headers)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("markup", ["<a ", "<!--", "<![", "</", '<a b="', "<p>"])
def test_hostile_html_is_fast_and_capped(markup: str) -> None:
    raw = mail("From: a@example.jp", "Content-Type: text/html", body=(markup * 80_000).encode())
    parsed = parse_message(raw)
    assert parsed.html_only is True
    assert len(parsed.text) <= MAX_TEXT


def test_long_text_is_capped() -> None:
    parsed = parse_message(mail("From: a@example.jp", body=b"a" * (MAX_TEXT + 10)))
    assert len(parsed.text) == MAX_TEXT
    assert parsed.defect_texts == (f"text cut to {MAX_TEXT} characters",)


FRAGMENTS = st.sampled_from(
    [
        b"From: a@example.jp\r\n",
        b"Subject: =?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n",
        b"Content-Type: text/plain; charset=shift_jis\r\n",
        b"Content-Type: text/html; charset=x-unknown\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Disposition: attachment; filename*0*=utf-8''%E3%81\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"\r\n",
        b"--x\r\n",
        b"--x--\r\n",
        b"=?utf-8?Q?=0D=0A?=",
        b"\x1b$B-!\x1b(B",
        b"<p>a<br>b</p><!--",
    ]
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.one_of(FRAGMENTS, st.binary(max_size=40)), max_size=30).map(b"".join))
def test_never_raises(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed, InboundEmail)
    assert not parsed.parse_error.startswith("could not parse")
    assert all("\n" not in value and "\r" not in value for _name, value in parsed.headers)
