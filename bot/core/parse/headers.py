"""Header values -> text: RFC 2047 encoded words, raw 8-bit text, addresses, dates, message ids.

`HeaderDecoder.decode` returns the text and the defects it found; nothing is collected behind the
caller's back.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from bot.core.model import Defect, DefectCode
from bot.core.parse.charsets import Decoded, decode_bytes, describe
from bot.core.parse.limits import (
    BAD_INPUT,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_IDS,
    MAX_RAW_HEADER,
    SYNTHETIC_DOMAIN,
)

_MSG_ID = re.compile(r"<[^<>\s]+>")
_LINE_BREAKS = re.compile(r"[ \t]*(?:[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029][ \t]*)+")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
_PLACEHOLDER = re.compile("\ue000([0-9]+)\ue001")


class RawPolicy(Compat32):
    """compat32, but header values come back exactly as received (8-bit bytes as surrogate escapes),
    so they can be decoded here instead of being turned into `Header` objects or replacement marks."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


POLICY = RawPolicy()


def to_bytes(value: str) -> bytes:
    """The bytes behind a header string from BytesParser (ASCII plus surrogate-escaped 8-bit bytes)."""
    return value.encode("utf-8", "surrogateescape")


def one_line(text: str) -> str:
    return _CONTROLS.sub("", _LINE_BREAKS.sub(" ", text)).strip()


def _nonctext(char: str) -> bool:
    return char.isspace() or char in "()\\"


def _join_words(pieces: list[tuple[str, bool]]) -> str:
    """Join decoded chunks as `email.header.Header.__str__` does: a space where encoded meets plain text."""
    out: list[str] = []
    prev_encoded = False
    prev_space = True
    for text, encoded in pieces:
        if out and encoded != prev_encoded:
            gap = prev_space if encoded else bool(text) and _nonctext(text[0])
            if not gap:
                out.append(" ")
        out.append(text)
        prev_encoded = encoded
        prev_space = bool(text) and _nonctext(text[-1])
    return "".join(out)


def _split_words(value: str) -> list[tuple[Any, Any]]:
    """`decode_header`, or word by word when one bad word (e.g. broken base64) makes it give up."""
    try:
        return decode_header(value)
    except BAD_INPUT:
        return _words_one_by_one(value)


def _words_one_by_one(value: str) -> list[tuple[Any, Any]]:
    chunks: list[tuple[Any, Any]] = []
    pos = 0
    for match in ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        if between and not (between.isspace() and chunks and chunks[-1][1] is not None):
            chunks.append((between, None))
        try:
            chunks.extend(decode_header(match.group()))
        except BAD_INPUT:
            chunks.append((match.group(), None))
        pos = match.end()
    if pos < len(value):
        chunks.append((value[pos:], None))
    return chunks


def charset_defect(decoded: Decoded, where: str, *, in_header: bool = False) -> tuple[Defect, ...]:
    if decoded.issue is None:
        return ()
    return (Defect(DefectCode.CHARSET, f"{describe(decoded.issue, in_header=in_header)} in {where}"),)


class HeaderDecoder:
    """Decodes header values. `hint`: the 8-bit codecs the message declares for its text, the best
    clue for raw 8-bit header text."""

    def __init__(self, hint: tuple[str, ...] = ()) -> None:
        self._hint = hint

    def decode(self, value: str, where: str) -> tuple[str, tuple[Defect, ...]]:
        data = to_bytes(value[:MAX_RAW_HEADER])
        if b"=?" not in data:
            text, found = self._raw(data, where)
            return one_line(text), found
        pieces: list[tuple[str, bool]] = []
        defects: list[Defect] = []
        # latin-1 keeps every byte as one character, so decode_header hands unencoded runs back intact.
        for chunk, charset in _split_words(data.decode("latin-1")):
            raw = chunk if isinstance(chunk, bytes) else str(chunk).encode("latin-1", errors="replace")
            if charset is None:
                text, found = self._raw(raw, where)
                pieces.append((text, False))
            else:
                decoded = decode_bytes(raw, str(charset).split("*", 1)[0], short=True)
                found = charset_defect(decoded, where)
                pieces.append((decoded.text, True))
            defects.extend(found)
        return one_line(_join_words(pieces)), tuple(defects)

    def _raw(self, data: bytes, where: str) -> tuple[str, tuple[Defect, ...]]:
        if data.isascii() and b"\x1b" not in data:
            return data.decode("ascii"), ()
        decoded = decode_bytes(data, None, self._hint, short=True)
        return decoded.text, charset_defect(decoded, where, in_header=True)


def header_list(msg: Message, dec: HeaderDecoder) -> tuple[tuple[tuple[str, str], ...], tuple[Defect, ...]]:
    items = msg.items()
    defects: list[Defect] = []
    if len(items) > MAX_HEADERS:
        defects.append(Defect(DefectCode.TOO_MANY_HEADERS, f"{len(items)} headers, only the first {MAX_HEADERS} kept"))
    out: list[tuple[str, str]] = []
    for name, value in items[:MAX_HEADERS]:
        key = str(name).strip().lower()
        text, found = dec.decode(str(value), f"header {key}")
        out.append((key, text[:MAX_HEADER_VALUE]))
        defects.extend(found)
    return tuple(out), tuple(defects)


def first(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except BAD_INPUT:
        return None
    return None if value is None else str(value)


def every(msg: Message, name: str) -> list[str]:
    try:
        values = msg.get_all(name) or []
    except BAD_INPUT:
        return []
    return [str(value)[:MAX_RAW_HEADER] for value in values]


def _clean_address(addr: str) -> str:
    try:
        text = to_bytes(addr).decode("utf-8").strip().lower()
    except UnicodeError:
        return ""
    local, at, domain = text.rpartition("@")
    if not (at and local and domain) or len(text) > 320:
        return ""
    if any(ch.isspace() or ch in "<>" or not ch.isprintable() for ch in text):
        return ""
    return text


def addresses(values: list[str]) -> list[tuple[str, str]]:
    """(raw display name, cleaned address) pairs; unusable addresses are left out."""
    if not values:
        return []
    # Encoded words belong in display names only. Hidden behind private-use placeholders (atoms to the
    # address parser) they cannot smuggle an address in: "=?UTF-8?Q?x_evil@example.com?= <a@b.jp>"
    # would otherwise yield "x_evil@example.com?=" as the first address.
    words: list[str] = []

    def hide(match: re.Match[str]) -> str:
        words.append(match.group())
        return f"\ue000{len(words) - 1}\ue001"

    try:
        pairs = getaddresses([ENCODED_WORD.sub(hide, value) for value in values])
    except BAD_INPUT:
        return []
    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        cleaned = _clean_address(addr)  # a placeholder left in an address makes it unusable
        if cleaned:
            out.append((_PLACEHOLDER.sub(lambda m: words[int(m.group(1))], name), cleaned))
    return out


def date(value: str | None) -> tuple[datetime | None, tuple[Defect, ...]]:
    if value is None or not value.strip():
        return None, ()
    try:
        parsed = parsedate_to_datetime(one_line(value))
    except BAD_INPUT:
        parsed = None
    if parsed is None:
        return None, (Defect(DefectCode.BAD_DATE, "unparsable Date header"),)
    return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)), ()


def ids(value: str) -> list[str]:
    return _MSG_ID.findall(value)


def references(value: str) -> tuple[str, ...]:
    found = ids(value)
    if len(found) > MAX_IDS:
        # The first id is the thread's root and the last ones its nearest ancestors: keep both ends.
        found = found[:1] + found[-(MAX_IDS - 1) :]
    return tuple(found)


def synthetic_id(data: bytes) -> str:
    return f"<synthetic-{hashlib.sha256(data).hexdigest()[:24]}@{SYNTHETIC_DOMAIN}>"


def message_id(msg: Message, dec: HeaderDecoder, data: bytes) -> tuple[str, bool, tuple[Defect, ...]]:
    """The mail's Message-ID, whether it was made up here, and what was wrong with it."""
    raw = first(msg, "message-id")
    value, defects = dec.decode(raw, "header message-id") if raw is not None else ("", ())
    match = _MSG_ID.search(value)
    if match:
        return match.group(), False, defects
    if value and not any(ch.isspace() for ch in value) and "<" not in value and ">" not in value:
        return (f"<{value[:MAX_HEADER_VALUE]}>", False,
                (*defects, Defect(DefectCode.MESSAGE_ID, "Message-ID without angle brackets")))
    if value:
        defects = (*defects, Defect(DefectCode.MESSAGE_ID, "unusable Message-ID, replaced by a synthetic one"))
    return synthetic_id(data), True, defects
