"""Sample mail for the `demo` command: a dozen realistic messages to the privacy address.

`SAMPLES` holds them as frozen values (with what the bot should make of each);
`sample_messages(privacy_address, now)` turns them into raw RFC 5322 bytes (CRLF), built
with the standard email package the way the senders' mail programs would: English in
ASCII, Japanese in ISO-2022-JP, Shift_JIS and UTF-8, one HTML-only message, an
out-of-office auto-reply, a delivery-status bounce and a mailing-list post.
All addresses use example.com / example.jp.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from typing import Literal

from bot.core.model import Kind, Suppress

__all__ = ["SAMPLES", "DemoInquiry", "build_message", "sample_messages"]

JST = timezone(timedelta(hours=9))
Form = Literal["text", "html", "bounce"]
_CRLF_SMTP = email.policy.SMTP  # EmailMessage policy with CRLF line endings
_CRLF_COMPAT = email.policy.compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class DemoInquiry:
    """One sample message and what the bot is expected to make of it."""

    key: str  # short stable name, also used in the Message-ID
    description: str  # one line for people watching the demo
    language: Literal["en", "ja"]
    charset: Literal["us-ascii", "utf-8", "iso-2022-jp", "shift_jis"]
    from_name: str
    from_addr: str
    subject: str
    body: str  # plain text, or the HTML for form="html", or the human-readable part of a bounce
    form: Form = "text"
    kinds: tuple[Kind, ...] = ()  # expected classification, in KIND_ORDER
    suppress: Suppress | None = None  # expected reason to send no automatic reply
    to: str = ""  # the To: header; "" means the privacy address
    extra_headers: tuple[tuple[str, str], ...] = ()


_BOUNCED_TO = "old.address@example.jp"

SAMPLES: tuple[DemoInquiry, ...] = (
    DemoInquiry(
        key="en-disclosure",
        description="English disclosure request (plain ASCII)",
        language="en",
        charset="us-ascii",
        from_name="John Smith",
        from_addr="john.smith@example.com",
        subject="Request for a copy of my personal data",
        body=(
            "Hello,\n\n"
            "I have been a customer of yours since 2019 (my account is registered under\n"
            "this email address). Under your privacy policy I would like to request\n"
            "disclosure of the personal information you hold about me: what data you\n"
            "keep, where it came from, and whether it has been shared with anyone.\n\n"
            "Please let me know what I need to send you to process this request.\n\n"
            "Kind regards,\n"
            "John Smith\n"
        ),
        kinds=(Kind.DISCLOSURE,),
    ),
    DemoInquiry(
        key="ja-deletion-sjis",
        description="Japanese deletion request in Shift_JIS",
        language="ja",
        charset="shift_jis",
        from_name="佐藤 花子",
        from_addr="hanako.sato@example.jp",
        subject="個人情報の削除のお願い",
        body=(
            "ご担当者様\n\n"
            "いつもお世話になっております。佐藤花子と申します。\n\n"
            "先月、貴社オンラインショップの会員を退会いたしました。\n"
            "つきましては、貴社が保有している私の個人情報（氏名、住所、電話番号、\n"
            "購入履歴など）をすべて削除していただきたく、ご連絡いたしました。\n\n"
            "手続きに必要な書類などがございましたら、ご教示いただけますと幸いです。\n"
            "どうぞよろしくお願いいたします。\n\n"
            "佐藤 花子\n"
        ),
        kinds=(Kind.DELETION,),
    ),
    DemoInquiry(
        key="ja-amendment-utf8",
        description="Japanese amendment request in UTF-8 (wrong address on file)",
        language="ja",
        charset="utf-8",
        from_name="鈴木 一郎",
        from_addr="ichiro.suzuki@example.jp",
        subject="登録住所の訂正について",
        body=(
            "個人情報お問い合わせ窓口 御中\n\n"
            "鈴木一郎と申します。\n"
            "貴社に登録されている私の住所が、引っ越し前の古い住所のままになっているようです。\n"
            "先日届いたお知らせも旧住所宛てでした。\n\n"
            "登録内容の訂正をお願いしたいのですが、どのような手続きが必要でしょうか。\n\n"
            "新住所：大阪府大阪市北区梅田一丁目2番3号\n\n"
            "よろしくお願いいたします。\n"
        ),
        kinds=(Kind.AMENDMENT,),
    ),
    DemoInquiry(
        key="en-addition",
        description="English request to add missing information",
        language="en",
        charset="us-ascii",
        from_name="Maria Garcia",
        from_addr="maria.garcia@example.com",
        subject="Please add my middle name and second phone number to my record",
        body=(
            "Hi,\n\n"
            "When I registered, your form had no field for a middle name, so the name\n"
            "you have on file is incomplete. I would like you to add the missing\n"
            "information to my personal data:\n\n"
            "- full name: Maria Elena Garcia\n"
            "- second phone number: +1 555 0100 (mobile)\n\n"
            "Is there a form for adding information to an existing record?\n\n"
            "Thanks,\n"
            "Maria\n"
        ),
        kinds=(Kind.ADDITION,),
    ),
    DemoInquiry(
        key="ja-third-party-stop-jis",
        description="Japanese request to stop supply to third parties, in ISO-2022-JP",
        language="ja",
        charset="iso-2022-jp",
        from_name="高橋 健",
        from_addr="ken.takahashi@example.jp",
        subject="第三者提供の停止のお願い",
        body=(
            "お世話になっております。高橋と申します。\n\n"
            "貴社のサービスに登録した頃から、面識のない複数の会社より\n"
            "勧誘の電話や郵便が届くようになりました。\n\n"
            "貴社のプライバシーポリシーに基づき、私の個人情報の第三者への提供を\n"
            "停止していただくよう請求いたします。\n"
            "お手数ですが、手続きの方法をご案内ください。\n\n"
            "高橋 健\n"
        ),
        kinds=(Kind.THIRD_PARTY_STOP,),
    ),
    DemoInquiry(
        key="ja-dm-stop",
        description="Japanese marketing opt-out with full-width ＤＭ and half-width kana (UTF-8)",
        language="ja",
        charset="utf-8",
        from_name="山田 太郎",
        from_addr="taro.yamada@example.jp",
        subject="ＤＭ停止のお願い",
        body=(
            "ご担当者様\n\n"
            "毎月ＤＭ（ダイレクトメール）をお送りいただいておりますが、\n"
            "今後は郵送のＤＭもﾒｰﾙﾏｶﾞｼﾞﾝも不要ですので、送付を停止してください。\n\n"
            "会員登録はそのままで結構です。\n\n"
            "山田 太郎\n"
        ),
        kinds=(Kind.MARKETING_OPT_OUT,),
    ),
    DemoInquiry(
        key="en-question",
        description="English general question about retention",
        language="en",
        charset="us-ascii",
        from_name="Emily Chen",
        from_addr="emily.chen@example.com",
        subject="Question about how long you keep customer data",
        body=(
            "Hello,\n\n"
            "I am thinking about signing up for your service, but first I would like to\n"
            "understand your data practices. How long do you keep customer information\n"
            "after an account is closed, and is any of it stored outside Japan?\n\n"
            "Thank you,\n"
            "Emily Chen\n"
        ),
        kinds=(Kind.GENERAL,),
    ),
    DemoInquiry(
        key="ja-disclosure-deletion-jis",
        description="Japanese request with two kinds (disclosure, then deletion), in ISO-2022-JP",
        language="ja",
        charset="iso-2022-jp",
        from_name="伊藤 美咲",
        from_addr="misaki.ito@example.jp",
        subject="保有個人データの開示および削除の請求",
        body=(
            "個人情報お問い合わせ窓口 ご担当者様\n\n"
            "伊藤美咲と申します。以前、貴社のキャンペーンに応募したことがあります。\n\n"
            "1. 貴社が保有している私の個人情報の開示を請求します。\n"
            "2. 開示していただいた後、それらの情報をすべて削除してください。\n\n"
            "必要な手続きと書類についてご連絡をお願いいたします。\n\n"
            "伊藤 美咲\n"
        ),
        kinds=(Kind.DISCLOSURE, Kind.DELETION),
    ),
    DemoInquiry(
        key="en-amendment-html",
        description="English amendment request sent as HTML only",
        language="en",
        charset="utf-8",
        from_name="Oliver Brown",
        from_addr="oliver.brown@example.com",
        subject="Wrong date of birth in my account",
        body=(
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
            "<p>Dear Privacy Team,</p>\n"
            "<p>The date of birth in my customer account is <b>wrong</b>: it says 12&nbsp;March&nbsp;1985,\n"
            "but it should be <b>21&nbsp;March&nbsp;1985</b>. Please <em>correct</em> my personal\n"
            "information.</p>\n"
            "<p>Best regards,<br>\nOliver Brown</p>\n"
            "</body></html>\n"
        ),
        form="html",
        kinds=(Kind.AMENDMENT,),
    ),
    DemoInquiry(
        key="ja-out-of-office",
        description="Japanese out-of-office auto-reply (Auto-Submitted: auto-replied)",
        language="ja",
        charset="utf-8",
        from_name="中村 優子",
        from_addr="yuko.nakamura@example.jp",
        subject="自動応答: 個人情報の開示について",
        body=(
            "申し訳ございませんが、12月26日から1月5日まで年末年始休暇のため不在にしております。\n"
            "いただいたメールは1月6日以降に順次確認いたします。\n"
            "お急ぎの場合は、代表電話までご連絡ください。\n\n"
            "中村 優子\n"
        ),
        suppress=Suppress.AUTO_REPLY,
        extra_headers=(
            ("Auto-Submitted", "auto-replied"),
            ("X-Auto-Response-Suppress", "All"),
            ("In-Reply-To", "<reply-20261201.7f3a@example.com>"),
        ),
    ),
    DemoInquiry(
        key="bounce",
        description="Delivery status notification (bounce) from MAILER-DAEMON",
        language="en",
        charset="us-ascii",
        from_name="Mail Delivery System",
        from_addr="MAILER-DAEMON@mail.example.jp",
        subject="Undelivered Mail Returned to Sender",
        body=(
            "This is the mail system at host mail.example.jp.\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients. It's attached below.\n\n"
            "For further assistance, please send mail to postmaster.\n\n"
            "                   The mail system\n\n"
            f"<{_BOUNCED_TO}>: host mx.example.jp[192.0.2.25] said: 550 5.1.1\n"
            f"    <{_BOUNCED_TO}>: Recipient address rejected: User unknown in local\n"
            "    recipient table (in reply to RCPT TO command)\n"
        ),
        form="bounce",
        suppress=Suppress.BOUNCE,
        extra_headers=(("Auto-Submitted", "auto-replied"),),
    ),
    DemoInquiry(
        key="list-newsletter",
        description="Mailing-list newsletter (List-Id) that mentions deletion and disclosure",
        language="en",
        charset="us-ascii",
        from_name="Data Protection Weekly",
        from_addr="newsletter@lists.example.com",
        subject="Data Protection Weekly #112: deletion requests, consent and cookies",
        body=(
            "DATA PROTECTION WEEKLY - issue 112\n\n"
            "1. Handling deletion requests at scale: five lessons from support teams\n"
            "2. Disclosure requests under the APPI: what changed this year\n"
            "3. Cookie banners and consent: a short guide\n\n"
            "You are receiving this because you subscribed at lists.example.com.\n"
            "To unsubscribe, visit https://lists.example.com/unsubscribe\n"
        ),
        suppress=Suppress.BULK,
        to="Data Protection Weekly <dpweekly@lists.example.com>",
        extra_headers=(
            ("List-Id", "Data Protection Weekly <dpweekly.lists.example.com>"),
            (
                "List-Unsubscribe",
                "<mailto:unsubscribe@lists.example.com?subject=unsubscribe>, <https://lists.example.com/unsubscribe>",
            ),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Precedence", "list"),
        ),
    ),
)


def sample_messages(privacy_address: str, now: datetime) -> list[bytes]:
    """Every sample as raw bytes, dated a few minutes apart up to `now` (oldest first)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    count = len(SAMPLES)
    return [
        build_message(sample, privacy_address, now - timedelta(minutes=3 * (count - 1 - i)), stamp=now)
        for i, sample in enumerate(SAMPLES)
    ]


def build_message(
    sample: DemoInquiry, privacy_address: str, date: datetime, *, stamp: datetime | None = None
) -> bytes:
    """One sample as raw bytes (CRLF), as it would sit in the mailbox after delivery.

    `stamp` makes the Message-ID unique per demo run (default: `date`).
    """
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    if sample.language == "ja":
        date = date.astimezone(JST)  # the sender's clock
    domain = sample.from_addr.rsplit("@", 1)[1]
    message_id = f"<{sample.key}.{(stamp or date).strftime('%Y%m%d%H%M%S')}@{domain}>"
    return_path = "" if sample.form == "bounce" else sample.from_addr
    head: list[tuple[str, str]] = [
        ("Return-Path", f"<{return_path}>"),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id),
    ]
    if sample.form == "bounce":
        return _bounce(sample, privacy_address, head, date)
    if sample.charset in ("iso-2022-jp", "shift_jis"):
        return _legacy_japanese(sample, privacy_address, head)
    msg = EmailMessage()
    for name, value in head:
        msg[name] = value
    msg["From"] = formataddr((sample.from_name, sample.from_addr))
    msg["To"] = sample.to or privacy_address
    msg["Subject"] = sample.subject
    for name, value in sample.extra_headers:
        msg[name] = value
    if sample.form == "html":
        msg.set_content(sample.body, subtype="html", charset="utf-8", cte="quoted-printable")
    elif sample.charset == "utf-8":
        msg.set_content(sample.body, charset="utf-8", cte="base64")  # as most webmail sends Japanese
    else:
        msg.set_content(sample.body)
    return msg.as_bytes(policy=_CRLF_SMTP)


def _encoded_words(text: str, charset: str, mime_name: str) -> str:
    """RFC 2047 B-encoded words for `text` in `charset`, each at most 60 characters long, so
    that the first one fits on the line after the header name, as mail programs write them."""
    words: list[str] = []
    chunk = ""
    for char in text:
        candidate = chunk + char
        # each word is encoded on its own (ISO-2022-JP: with its escape sequences); "=??B??=" is 7
        if len(base64.b64encode(candidate.encode(charset))) + len(mime_name) + 7 > 60:
            words.append(chunk)
            chunk = char
        else:
            chunk = candidate
    if chunk:
        words.append(chunk)
    return " ".join(f"=?{mime_name}?B?{base64.b64encode(w.encode(charset)).decode('ascii')}?=" for w in words)


def _legacy_japanese(sample: DemoInquiry, privacy_address: str, head: list[tuple[str, str]]) -> bytes:
    """A message as older Japanese mail programs write it: headers and body in ISO-2022-JP
    (7bit) or Shift_JIS (base64), without any UTF-8."""
    mime_name = "ISO-2022-JP" if sample.charset == "iso-2022-jp" else "Shift_JIS"
    msg = Message(policy=_CRLF_COMPAT)
    for name, value in head:
        msg[name] = value
    msg["From"] = f"{_encoded_words(sample.from_name, sample.charset, mime_name)} <{sample.from_addr}>"
    msg["To"] = sample.to or privacy_address
    msg["Subject"] = _encoded_words(sample.subject, sample.charset, mime_name)
    for name, value in sample.extra_headers:
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = f'text/plain; charset="{mime_name}"'
    encoded = sample.body.encode(sample.charset)
    if sample.charset == "iso-2022-jp":
        msg["Content-Transfer-Encoding"] = "7bit"
        msg.set_payload(encoded.decode("ascii"))
    else:
        msg["Content-Transfer-Encoding"] = "base64"
        msg.set_payload(base64.encodebytes(encoded).decode("ascii"))
    msg["X-Mailer"] = "Becky! ver. 2.81.04" if sample.charset == "shift_jis" else "Sylpheed 3.7.0"
    return msg.as_bytes(policy=_CRLF_COMPAT)


def _bounce(sample: DemoInquiry, privacy_address: str, head: list[tuple[str, str]], date: datetime) -> bytes:
    """A Postfix-style delivery status notification for a reply the bot sent to a dead address."""
    report = MIMEMultipart("report", report_type="delivery-status", policy=_CRLF_COMPAT)
    mime_headers = [(name, report[name]) for name in ("MIME-Version", "Content-Type")]
    for name, _value in mime_headers:  # re-added below, after the delivery headers
        del report[name]
    for name, value in head:
        report[name] = value
    report["From"] = f"{sample.from_name} <{sample.from_addr}>"
    report["To"] = privacy_address
    report["Subject"] = sample.subject
    for name, value in sample.extra_headers:
        report[name] = value
    for name, value in mime_headers:
        report[name] = value
    message_id = dict(head)["Message-ID"]
    report.set_boundary("=_report_" + hashlib.sha1(message_id.encode()).hexdigest()[:20])  # reproducible
    report.preamble = "This is a MIME-encapsulated message."

    notice = MIMEText(sample.body, "plain", "us-ascii")
    notice["Content-Description"] = "Notification"
    report.attach(notice)

    sent_at = format_datetime(date - timedelta(seconds=4))
    per_message = Message()
    per_message["Reporting-MTA"] = "dns; mail.example.jp"
    per_message["X-Postfix-Queue-ID"] = "4dKx2B0QmWz9sWq"
    per_message["X-Postfix-Sender"] = f"rfc822; {privacy_address}"
    per_message["Arrival-Date"] = sent_at
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {_BOUNCED_TO}"
    per_recipient["Original-Recipient"] = f"rfc822;{_BOUNCED_TO}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Remote-MTA"] = "dns; mx.example.jp"
    per_recipient["Diagnostic-Code"] = (
        f"smtp; 550 5.1.1 <{_BOUNCED_TO}>: Recipient address rejected: User unknown in local recipient table"
    )
    status = Message()
    status["Content-Type"] = "message/delivery-status"
    status["Content-Description"] = "Delivery report"
    status.set_payload([per_message, per_recipient])
    report.attach(status)

    domain = privacy_address.rsplit("@", 1)[-1]
    original_headers = (
        f"Return-Path: <{privacy_address}>\n"
        f"From: Privacy Office <{privacy_address}>\n"
        f"To: {_BOUNCED_TO}\n"
        f"Subject: [PRV-2026-00007] {Header('お問い合わせを受け付けました', 'utf-8').encode()}\n"
        f"Date: {sent_at}\n"
        f"Message-ID: <prv-2026-00007.1@{domain}>\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        'Content-Type: text/plain; charset="utf-8"\n'
    )
    undelivered = MIMEText(original_headers, "rfc822-headers", "us-ascii")
    undelivered["Content-Description"] = "Undelivered Message Headers"
    report.attach(undelivered)
    return report.as_bytes(policy=_CRLF_COMPAT)
