"""The MIME walk: which parts are the customer's text, which are attachments, and what was wrong."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from email.errors import InvalidBase64LengthDefect
from email.message import Message
from typing import Any

from bot.core.model import Attachment, Defect, DefectCode
from bot.core.parse.charsets import decode_bytes
from bot.core.parse.headers import HeaderDecoder, charset_defect, one_line, to_bytes
from bot.core.parse.html import html_to_text
from bot.core.parse.limits import BAD_INPUT, MAX_DEPTH, MAX_FILENAME, MAX_PARTS, MAX_TEXT

_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")

_DEFECT_TEXT = {
    "NoBoundaryInMultipartDefect": "no boundary in {ctype}",
    "StartBoundaryNotFoundDefect": "start boundary not found in {ctype}",
    "CloseBoundaryNotFoundDefect": "closing boundary missing in {ctype}",
    "MultipartInvariantViolationDefect": "{ctype} has no parts",
    "FirstHeaderLineIsContinuationDefect": "first header line is a continuation line",
    "MisplacedEnvelopeHeaderDefect": "misplaced 'From ' line in the headers",
    "MissingHeaderBodySeparatorDefect": "no blank line between headers and body",
    "InvalidMultipartContentTransferEncodingDefect": "invalid transfer encoding on {ctype}",
    "InvalidBase64PaddingDefect": "bad base64 padding",
    "InvalidBase64CharactersDefect": "invalid characters in base64",
    "InvalidBase64LengthDefect": "truncated base64",
}


def _defect_text(defect: object, ctype: str, index: int) -> str:
    name = type(defect).__name__
    template = _DEFECT_TEXT.get(name)
    if template is None:
        words = re.sub(r"(?<!^)(?=[A-Z])", " ", name.removesuffix("Defect")).lower()
        template = words or "defect"
    where = f" (part {index})" if index > 1 else ""
    return template.format(ctype=ctype) + where


def content_type(part: Message) -> str:
    try:
        ctype = part.get_content_type()
    except BAD_INPUT:
        return "text/plain"
    return ctype if _MIME_TYPE.fullmatch(ctype) else "application/octet-stream"


def _tidy_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").removeprefix("\ufeff")


@dataclass
class Walk:
    """Visits a message's parts depth-first; its lists are the result (`body` reads them)."""

    dec: HeaderDecoder
    defects: list[Defect] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    preamble: str = ""
    parts: int = 0
    stopped: bool = False

    def visit(self, part: Message, depth: int) -> None:
        if self.parts >= MAX_PARTS:
            if not self.stopped:
                self.stopped = True
                self.defects.append(Defect(DefectCode.TOO_MANY_PARTS, f"more than {MAX_PARTS} MIME parts, the rest skipped"))
            return
        self.parts += 1
        index = self.parts
        ctype = content_type(part)
        if ctype.startswith("message/"):
            # A forwarded or returned message is something the customer attached, not what they wrote.
            default = "forwarded message" if ctype in ("message/rfc822", "message/global") else ""
            self._attach(part, ctype, index, default)
            self._note_defects(part, ctype, index)
        elif part.is_multipart():
            self._note_defects(part, ctype, index)
            if depth >= MAX_DEPTH:
                self.defects.append(Defect(DefectCode.TOO_DEEP,
                                            f"MIME nesting deeper than {MAX_DEPTH} levels, inner parts skipped"))
                return
            payload = part.get_payload()
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    self.visit(sub, depth + 1)
        else:
            self._leaf(part, ctype, index)
            # After the leaf: decoding its payload is what finds e.g. bad base64.
            self._note_defects(part, ctype, index)

    def _note_defects(self, part: Message, ctype: str, index: int) -> None:
        for defect in list(getattr(part, "defects", []))[:10]:
            self.defects.append(Defect(DefectCode.MIME, _defect_text(defect, ctype, index)))

    def _leaf(self, part: Message, ctype: str, index: int) -> None:
        maintype = ctype.partition("/")[0]
        if maintype == "multipart":
            # A multipart the parser could not split (no or wrong boundary): its raw text is all there is.
            self.plain.append(self._text(part, index))
            return
        filename = self._filename(part, index)
        try:
            disposition = part.get_content_disposition()
        except BAD_INPUT:
            disposition = None
        if disposition == "attachment" or filename or maintype != "text" or ctype == "text/rfc822-headers":
            # text/rfc822-headers: a returned mail's headers (bounces), not what the customer wrote
            self._attach(part, ctype, index, filename)
        elif ctype == "text/plain":
            self.plain.append(self._text(part, index))
        elif ctype == "text/html":
            self.html.append(self._text(part, index))

    def _text(self, part: Message, index: int) -> str:
        payload = _payload(part)
        if not isinstance(payload, bytes):
            return ""
        try:
            label = part.get_content_charset()
        except BAD_INPUT:
            label = None
        decoded = decode_bytes(payload, label)
        self.defects.extend(charset_defect(decoded, f"part {index}"))
        return _tidy_text(decoded.text)

    def _filename(self, part: Message, index: int) -> str:
        for header, param in (("content-disposition", "filename"), ("content-type", "name")):
            value = _param(part, param, header)
            if value is None:
                continue
            if isinstance(value, tuple):  # RFC 2231: (charset, language, text with one char per byte)
                charset, _language, text = value
                try:
                    raw = str(text).encode("latin-1")
                except UnicodeEncodeError:
                    raw = to_bytes(str(text))
                decoded = decode_bytes(raw, charset or None)
                self.defects.extend(charset_defect(decoded, f"filename of part {index}"))
                name = one_line(decoded.text)
            else:
                name, found = self.dec.decode(str(value), f"filename of part {index}")
                self.defects.extend(found)
            if name:
                return name[:MAX_FILENAME]
        return ""

    def _attach(self, part: Message, ctype: str, index: int, default: str) -> None:
        name = self._filename(part, index) or default
        self.attachments.append(Attachment(filename=name, content_type=ctype, size=_decoded_size(part)))


def _payload(part: Message) -> Any:
    payload = part.get_payload(decode=True)
    if any(isinstance(d, InvalidBase64LengthDefect) for d in part.defects):
        # One base64 character past the last whole group (a cut message): the email package then hands
        # back the undecoded base64 text. Decode the whole groups instead.
        data = _NOT_BASE64.sub(b"", to_bytes(str(part.get_payload())))
        try:
            return base64.b64decode(data[: len(data) // 4 * 4])
        except (binascii.Error, ValueError):
            return payload
    return payload


def _param(part: Message, param: str, header: str) -> Any:
    try:
        return part.get_param(param, None, header)
    except BAD_INPUT:
        return None


def _decoded_size(part: Message) -> int:
    try:
        if part.is_multipart():
            payload = part.get_payload()
            subs = payload if isinstance(payload, list) else []
            return sum(len(sub.as_bytes()) for sub in subs if isinstance(sub, Message))
        data = part.get_payload(decode=True)
        return len(data) if isinstance(data, bytes) else 0
    except BAD_INPUT:
        return 0

def preamble(msg: Message) -> str:
    text = msg.preamble if msg.is_multipart() else None
    if not text or not text.strip():
        return ""
    decoded = decode_bytes(to_bytes(text[:MAX_TEXT]), None)
    return _tidy_text(decoded.text)


def body(parts: Walk) -> tuple[str, bool, tuple[Defect, ...]]:
    """The customer's text (plain parts, else HTML made text, else the preamble), whether it came
    from HTML only, and what was wrong on the way."""
    defects: list[Defect] = []
    plain = [t for t in parts.plain if t.strip()]
    html_only = False
    if plain:
        texts = plain
    elif parts.html:
        html_only = True
        texts = []
        for html in parts.html:
            text, ok = html_to_text(html)
            if not ok:
                defects.append(Defect(DefectCode.HTML, "HTML could not be fully parsed"))
            texts.append(text)
    else:
        # Old bounces put their only human-readable words before the first MIME part.
        texts = [parts.preamble]
    text = "\n\n".join(t.lstrip("\n").rstrip() for t in texts if t.strip())
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        defects.append(Defect(DefectCode.TEXT_CUT, f"text cut to {MAX_TEXT} characters"))
    return text, html_only, tuple(defects)


# --- the message ----------------------------------------------------------------------------------

