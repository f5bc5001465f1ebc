"""Raw RFC 5322 bytes -> `InboundEmail`.

`parse_message` is pure and never raises: whatever arrives from the mailbox, it hands back a value.
Problems it worked around are listed in `defects` (code and words); only input with nothing
recognisable in it gets a `parse_error`. MIME parts are numbered depth-first from 1 (the message
itself) in defect texts.

The rooms: `charsets` (bytes of doubtful charset -> text), `headers` (encoded words, addresses,
dates, ids), `mime` (the walk over the parts), `html` (HTML -> text), `limits` (bounds).
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from itertools import islice

from bot.core.model import Defect, DefectCode, InboundEmail
from bot.core.parse import headers as hdr
from bot.core.parse.charsets import ISO2022JP, codecs_for, norm_label
from bot.core.parse.limits import (
    BAD_INPUT,
    MAX_ADDRESSES,
    MAX_DEFECTS,
    MAX_FETCHED_HEADER,
    MAX_IDS,
    MAX_NAME,
    MAX_SUBJECT,
)
from bot.core.parse.mime import Walk, body, content_type, preamble

__all__ = ["INTERNAL_ERROR", "parse_message"]

# The start of `parse_error` when the parser itself failed (a bug, not the mail): tests look for it.
INTERNAL_ERROR = "could not parse message"

_LEADING_BLANK_LINES = re.compile(rb"\A(?:[ \t]*\n)+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _header_cut(raw: bytes, truncated: bool) -> tuple[Defect, ...]:
    """A mail fetched in part whose header is as long as the fetch brings: the rest of it was cut."""
    if not truncated:
        return ()
    end = _HEADER_END.search(raw)
    if (end.start() if end else len(raw)) < MAX_FETCHED_HEADER:
        return ()
    return (Defect(DefectCode.STRUCTURE, f"header longer than {MAX_FETCHED_HEADER} bytes: cut when fetched in part"),)


def _normalise(raw: bytes) -> bytes:
    data = bytes(raw).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data = data.removeprefix(b"\xef\xbb\xbf")
    return _LEADING_BLANK_LINES.sub(b"", data).removeprefix(b"\xef\xbb\xbf")


def _parse_bytes(data: bytes) -> tuple[Message, bool, tuple[Defect, ...]]:
    """The parsed message, whether its body was parsed too, and why not."""
    try:
        return BytesParser(policy=hdr.POLICY).parsebytes(data), True, ()
    except BAD_INPUT as exc:
        # Typically RecursionError on absurdly nested MIME; the headers alone are still worth having.
        why = Defect(DefectCode.STRUCTURE, f"MIME structure could not be parsed ({type(exc).__name__}), body skipped")
        return BytesHeaderParser(policy=hdr.POLICY).parsebytes(data), False, (why,)


def _unreadable(raw: object, size: int | None, truncated: bool, reason: str) -> InboundEmail:
    data, length = b"", 0
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data, length = _normalise(bytes(raw)), len(raw)
    return InboundEmail(
        message_id=hdr.synthetic_id(data),
        message_id_synthetic=True,
        from_addr="",
        from_name="",
        reply_to="",
        to_addrs=(),
        subject="",
        date=None,
        in_reply_to=(),
        references=(),
        text="",
        html_only=False,
        attachments=(),
        headers=(),
        content_type="",
        report_type="",
        size=length if size is None else size,
        truncated=truncated,
        parse_error=reason,
    )


def _charset_hint(msg: Message) -> tuple[str, ...]:
    """8-bit codecs the message declares for its text: the best clue for raw 8-bit header text."""
    hint: dict[str, None] = {}
    try:
        for part in islice(msg.walk(), 50):
            label = norm_label(part.get_content_charset())
            for codec in codecs_for(label) if label else ():
                if codec not in ("ascii", "utf_8") and codec not in ISO2022JP:
                    hint.setdefault(codec)
    except BAD_INPUT:
        return tuple(hint)
    return tuple(hint)


def _report_type(msg: Message, ctype: str) -> str:
    if ctype != "multipart/report":
        return ""
    try:
        value = msg.get_param("report-type")
    except BAD_INPUT:
        return ""
    if isinstance(value, tuple):
        value = value[2]
    return hdr.one_line(hdr.to_bytes(str(value)).decode("ascii", "replace")).lower()[:100] if value else ""


def _parse(raw: bytes, size: int | None, truncated: bool) -> InboundEmail:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        return _unreadable(raw, size, truncated, f"input is {type(raw).__name__}, not bytes")
    data = _normalise(bytes(raw))
    if not data.strip():
        return _unreadable(raw, size, truncated, "empty message")
    msg, body_parsed, structure = _parse_bytes(data)
    if not msg.keys():
        return _unreadable(raw, size, truncated, "no e-mail headers found: not an e-mail message")

    dec = hdr.HeaderDecoder(_charset_hint(msg))

    def decoded(name: str) -> tuple[str, tuple[Defect, ...]]:
        value = hdr.first(msg, name)
        return dec.decode(value, f"header {name}") if value is not None else ("", ())

    headers, header_defects = hdr.header_list(msg, dec)
    message_id, synthetic, id_defects = hdr.message_id(msg, dec, data)
    senders = hdr.addresses(hdr.every(msg, "from"))
    from_name_raw, from_addr = senders[0] if senders else ("", "")
    reply_to = hdr.addresses(hdr.every(msg, "reply-to"))
    to_addrs = tuple(dict.fromkeys(addr for _name, addr in hdr.addresses(hdr.every(msg, "to"))))[:MAX_ADDRESSES]
    subject, subject_defects = decoded("subject")
    in_reply_to, reply_defects = decoded("in-reply-to")
    references, ref_defects = decoded("references")
    ctype = content_type(msg)

    walk = Walk(dec)
    if body_parsed:
        walk.visit(msg, 0)
        walk.preamble = preamble(msg)
    text, html_only, body_defects = body(walk)
    from_name, name_defects = dec.decode(from_name_raw, "header from") if from_name_raw else ("", ())
    when, date_defects = hdr.date(hdr.first(msg, "date"))
    defects = (*_header_cut(bytes(raw), truncated), *structure, *header_defects, *id_defects, *subject_defects, *reply_defects, *ref_defects,
               *walk.defects, *body_defects, *name_defects, *date_defects)

    return InboundEmail(
        message_id=message_id,
        message_id_synthetic=synthetic,
        from_addr=from_addr,
        from_name=from_name[:MAX_NAME],
        reply_to=reply_to[0][1] if reply_to else "",
        to_addrs=to_addrs,
        subject=subject.replace("\t", " ")[:MAX_SUBJECT],
        date=when,
        in_reply_to=tuple(hdr.ids(in_reply_to))[:MAX_IDS],
        references=hdr.references(references),
        text=text,
        html_only=html_only,
        attachments=tuple(walk.attachments),
        headers=headers,
        content_type=ctype,
        report_type=_report_type(msg, ctype),
        size=len(raw) if size is None else size,
        truncated=truncated,
        defects=tuple(dict.fromkeys(defects))[:MAX_DEFECTS],
    )


def parse_message(raw: bytes, *, size: int | None = None, truncated: bool = False) -> InboundEmail:
    """Decode one raw message as fetched from the mailbox. Never raises.

    `size` is the size IMAP reported when the message was fetched in part (`truncated`); by default
    `len(raw)`.
    """
    try:
        return _parse(raw, size, truncated)
    except Exception as exc:
        return _unreadable(raw, size, truncated, f"{INTERNAL_ERROR} ({type(exc).__name__})")
