"""From "this case needs a reply" to the bytes handed to SMTP.

`build_reply` renders a template (and the request form PDF) into an `OutboundEmail`;
`serialise` turns it into an RFC 5322 message with the stdlib's `EmailMessage`.
No header value ever carries a line break taken from customer data.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import replace
from datetime import datetime
from email import policy as email_policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from bot.compose.templates import Renderer, ReplyContext
from bot.core.errors import SendError
from bot.core.model import Attached, OutboundEmail
from bot.core.wording import form_filename, normalise_language, one_line

MAX_REFERENCES = 20
# An attachment this big goes in after the stdlib has written the message: see _stand_in.
SPLICE_FROM = 8 * 1024
# refold_source="none": headers we store raw (message ids, a pre-encoded ISO-2022-JP subject) are written as
# given. The default folder would turn a long message id into an encoded word, which breaks threading.
_POLICY = email_policy.SMTP.clone(refold_source="none")
_POLICY_UTF8 = email_policy.SMTPUTF8.clone(refold_source="none")
_MSGID_RE = re.compile(r"^<[!-;=?A-~]+@[!-;=?A-~]+>$")  # printable ASCII only: an 8-bit id cannot be serialised
_ADDR_RE = re.compile(r"^[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.?[^\s@<>()\[\],;:\"\\]*$")


def make_message_id(domain: str) -> str:
    """A random Message-ID, as email.utils.make_msgid would make but with 128 random bits and no host
    name: make_message_id("example.com") -> "<3f2a...9c1d@example.com>". It says nothing about the
    case (a reference must not let anyone guess it); threading looks ids up in the store."""
    host = re.sub(r"[^a-z0-9.-]+", "", domain.strip().lower().rpartition("@")[2]).strip(".-") or "localhost"
    return f"<{secrets.token_hex(16)}@{host}>"


def thread_references(references: tuple[str, ...], in_reply_to: str) -> tuple[str, ...]:
    """The inquiry's References plus its own id, deduplicated, at most MAX_REFERENCES (the first is kept)."""
    seen: dict[str, None] = {}
    for mid in (*references, in_reply_to):
        mid = mid.strip()
        if _MSGID_RE.match(mid):
            seen.setdefault(mid, None)
    ids = tuple(seen)
    if len(ids) > MAX_REFERENCES:
        ids = (ids[0], *ids[-(MAX_REFERENCES - 1):])
    return ids


def build_reply(
    *,
    renderer: Renderer,
    template: str,
    ctx: ReplyContext,
    message_id: str,
    in_reply_to: str,
    references: tuple[str, ...],
    attach_form: bool,
    auto_submitted: str = "auto-replied",
) -> OutboundEmail:
    """Render `template` for the case and, when `attach_form`, attach the request form PDF.

    `in_reply_to` is the inquiry's Message-ID, `references` the inquiry's own References.
    Raises TemplateProblem when the template is missing or does not render.
    """
    lang = normalise_language(ctx.language)
    ctx = replace(ctx, language=lang, form_attached=attach_form)
    rendered = renderer.render(template, lang, ctx)
    attachments: tuple[Attached, ...] = ()
    if attach_form:
        from bot.compose.form_pdf import request_form_pdf  # reportlab: only for mail that carries the form

        opened_on = ctx.opened_at.astimezone(ZoneInfo(ctx.timezone)).date()
        pdf = request_form_pdf(
            ref=ctx.ref,
            requester=ctx.requester,
            language=lang,
            kinds=ctx.kinds,
            opened_on=opened_on,
            postal_address=ctx.postal_address,
            company_name=ctx.company_name,
            response_days=ctx.response_days,
        )
        attachments = (Attached(filename=form_filename(ctx.ref), content_type="application/pdf", data=pdf),)
    in_reply_to = in_reply_to.strip() if _MSGID_RE.match(in_reply_to.strip()) else ""
    return OutboundEmail(
        to_addr=ctx.requester,
        subject=rendered.subject,
        text=rendered.text,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=thread_references(references, in_reply_to),
        auto_submitted=auto_submitted,
        html=rendered.html,
        attachments=attachments,
        language=lang,
    )


def serialise(
    out: OutboundEmail,
    *,
    from_address: str,
    from_name: str,
    reply_to: str,
    date: datetime,
    japanese_charset: str = "utf-8",
    splice_from: int = SPLICE_FROM,
) -> bytes:
    """The message as CRLF bytes ready for SMTP DATA.

    Japanese mail goes as UTF-8 unless `japanese_charset` is "iso-2022-jp"; text that ISO-2022-JP
    cannot carry (e.g. 髙, ①, emoji) falls back to UTF-8 rather than failing.
    Raises SendError(permanent=True) for an address or Message-ID that cannot be put in a header.
    An attachment of `splice_from` bytes or more is written by `_stand_in` (the same bytes, faster).
    """
    to_addr = _bare_address(out.to_addr, "recipient")
    from_addr = _bare_address(from_address, "from_address")
    reply_addr = _bare_address(reply_to, "reply_to") if reply_to.strip() else ""
    if date.tzinfo is None:
        raise ValueError("serialise needs an aware date")
    message_id = _message_id(out.message_id)
    needs_utf8 = not all(a.isascii() for a in (to_addr, from_addr, reply_addr))
    msg = EmailMessage(policy=_POLICY_UTF8 if needs_utf8 else _POLICY)

    msg["From"] = _address(from_addr, one_line(from_name, 120))
    msg["To"] = _address(to_addr)
    if reply_addr:
        msg["Reply-To"] = _address(reply_addr)
    subject = one_line(out.subject, 250)
    charset = _body_charset(out, subject, japanese_charset)
    if charset == "iso-2022-jp" and not subject.isascii():
        msg.set_raw("Subject", _iso2022jp_subject(subject))
    else:
        msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg.set_raw("Message-ID", message_id)
    in_reply_to = out.in_reply_to.strip()
    if _MSGID_RE.match(in_reply_to):
        msg.set_raw("In-Reply-To", in_reply_to)
    refs = thread_references(out.references, "")
    if refs:
        msg.set_raw("References", "\r\n ".join(refs))
    msg["Auto-Submitted"] = one_line(out.auto_submitted) or "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    for name, value in out.extra_headers:
        if re.fullmatch(r"[A-Za-z0-9-]+", name) and name.lower() not in _OWN_HEADERS:
            msg[name] = one_line(value, 900)

    text = out.text.replace("\r\n", "\n").replace("\r", "\n")
    msg.set_content(text, subtype="plain", charset=charset, cte=_cte(text, charset, out.language))
    if out.html:
        msg.add_alternative(out.html, subtype="html", charset="utf-8", cte="base64")
    bodies: dict[bytes, bytes] = {}
    for att in out.attachments:
        maintype, _, subtype = att.content_type.partition("/")
        msg.add_attachment(
            _stand_in(att.data, bodies) if len(att.data) >= splice_from else att.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=one_line(att.filename, 120) or "attachment",
        )
    msg["Content-Language"] = normalise_language(out.language)  # after set_content(), which clears Content-*
    _stable_boundaries(msg, message_id)
    raw = msg.as_bytes()
    for line, body in bodies.items():
        if raw.count(line) != 1:
            raise SendError("an attachment's stand-in was not found once in the message", permanent=True)
        raw = raw.replace(line, body)
    return raw


def _stand_in(data: bytes, bodies: dict[bytes, bytes]) -> bytes:
    """48 random bytes that stand in for `data` while the stdlib writes the message; their base64 line is
    then replaced by `data`'s base64 lines. The result is byte for byte what the stdlib writes (base64 in
    lines of 76 characters, CRLF), which tests/test_compose.py checks; the stdlib writes a 90 KB form
    line by line in Python, 3 ms of every reply that carries it (issue 14)."""
    token = secrets.token_bytes(48)  # one line of base64: 64 characters, never met by chance
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + _B64_LINE] for i in range(0, len(encoded), _B64_LINE)]
    bodies[base64.b64encode(token) + b"\r\n"] = b"\r\n".join(lines) + b"\r\n"
    return token


_B64_LINE = 76  # the stdlib's base64 lines: 57 bytes each (email.policy's max_line_length 78 // 4 * 3)


_OWN_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "in-reply-to", "references",
    "auto-submitted", "x-auto-response-suppress", "content-language", "mime-version", "content-type",
    "content-transfer-encoding", "content-disposition", "sender", "return-path",
})


def _iso2022jp_subject(subject: str) -> str:
    """Encoded words in ISO-2022-JP, keeping a leading ASCII part such as "[PRV-2026-00042] " readable."""
    head = re.match(r"^[\x20-\x7e]*\s", subject)
    prefix = head.group(0) if head else ""
    header = Header(header_name="Subject")
    if prefix:
        header.append(prefix, "us-ascii")
    header.append(subject[len(prefix):], "iso-2022-jp")
    return header.encode(linesep="\r\n")


def _stable_boundaries(msg: EmailMessage, message_id: str) -> None:
    """MIME boundaries derived from the Message-ID, so the same message serialises to the same bytes.

    "=_" cannot occur in base64 or quoted-printable text, the encodings used for the parts.
    """
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        digest = hashlib.sha256(f"{message_id}/{i}".encode()).hexdigest()[:32]
        part.set_boundary(f"=_{digest}")


def _bare_address(value: str, what: str) -> str:
    addr = value.strip()
    if not addr or not _ADDR_RE.match(addr) or len(addr) > 254 or not addr.isprintable():
        raise SendError(f"{what} {value!r} is not a bare e-mail address", permanent=True)
    return addr


def _address(addr: str, display_name: str = "") -> Address:
    # username/domain rather than addr_spec: the stdlib refuses a non-ASCII local part in addr_spec
    # even under SMTPUTF8; the address has been checked by _bare_address already.
    local, _, domain = addr.rpartition("@")
    return Address(display_name=display_name, username=local, domain=domain)


def _message_id(value: str) -> str:
    mid = value.strip()
    if not _MSGID_RE.match(mid) or not mid.isascii() or not mid.isprintable():
        raise SendError(f"Message-ID {value!r} is not of the form <local@domain>", permanent=True)
    return mid


def _body_charset(out: OutboundEmail, subject: str, japanese_charset: str) -> str:
    if normalise_language(out.language) != "ja" or japanese_charset.lower() != "iso-2022-jp":
        return "utf-8"
    try:
        (out.text + subject).encode("iso-2022-jp")
    except UnicodeEncodeError:
        return "utf-8"
    return "iso-2022-jp"


def _cte(text: str, charset: str, language: str) -> str | None:
    if charset == "iso-2022-jp":
        return "7bit"  # the encoding is 7-bit by design (RFC 1468)
    if text.isascii() and all(len(line) <= 78 for line in text.split("\n")):
        return "7bit"
    # Japanese text: base64 is smaller than quoted-printable; mostly-Latin text stays readable as QP.
    return "base64" if normalise_language(language) == "ja" else "quoted-printable"
