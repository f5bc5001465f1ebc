"""Raw RFC 5322 bytes -> `InboundEmail`.

`parse_message` is pure and never raises: whatever arrives from the mailbox, it hands back a value.
Problems it worked around are listed in `defects`; only input with nothing recognisable in it gets a
`parse_error`. MIME parts are numbered depth-first from 1 (the message itself) in defect strings.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import InvalidBase64LengthDefect, MessageError
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from itertools import islice
from typing import Any

import charset_normalizer

from bot.core.model import Attachment, InboundEmail

MAX_TEXT = 200_000
MAX_SUBJECT = 2_000
MAX_HEADER_VALUE = 4_000
MAX_HEADERS = 500
MAX_IDS = 100
MAX_PARTS = 2_000
MAX_DEPTH = 50
MAX_ADDRESSES = 500
MAX_NAME = 500
MAX_FILENAME = 255
MAX_DEFECTS = 100
# Decoding never needs more raw header than this to fill the capped values above, and it bounds the
# work a hostile 200 KB header can cause.
MAX_RAW_HEADER = 65_536
MAX_HTML = 1_000_000
DETECT_SAMPLE = 65_536

SYNTHETIC_DOMAIN = "privacy-bot.invalid"

# What the email package, codecs, charset_normalizer and html.parser raise on hostile input, e.g.
# AttributeError for `To: unlisted-recipients:;`, AssertionError from _markupbase, OverflowError for a
# Date with a 20-digit year, RecursionError for absurd nesting. Catching these part by part keeps the rest of the message.
_BAD_INPUT: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    AssertionError,
    ArithmeticError,
    RuntimeError,
    MessageError,
)

_MSG_ID = re.compile(r"<[^<>\s]+>")
_LEADING_BLANK_LINES = re.compile(rb"\A(?:[ \t]*\n)+")
_LINE_BREAKS = re.compile(r"[ \t]*(?:[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029][ \t]*)+")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
_PLACEHOLDER = re.compile("\ue000([0-9]+)\ue001")
_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


# --- charsets -------------------------------------------------------------------------------------

# Not a Python codec: ISO-2022-JP as Windows writes it (CP50220/CP50221), see `_decode_cp50220`.
_CP50220 = "x-cp50220"
_ISO2022JP = ("iso2022_jp", "iso2022_jp_ext", _CP50220, "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_2004")
# Real Shift_JIS mail is CP932 (NEC/IBM extensions), whatever the label says.
_SJIS = ("cp932", "shift_jis_2004")
_EUCJP = ("euc_jp", "euc_jis_2004")

_FAMILIES: dict[str, tuple[str, ...]] = {}
for _labels, _chain in (
    (
        (
            "iso-2022-jp csiso2022jp iso2022jp iso-2022-jp-1 iso-2022-jp-2 iso-2022-jp-3 iso-2022-jp-2004 "
            "iso-2022-jp-ext iso-2022-jp-ms cp50220 cp50221 cp50222 x-cp50220 x-cp50221 x-cp50222 jis"
        ),
        _ISO2022JP,
    ),
    (
        (
            "shift-jis x-sjis sjis s-jis shiftjis x-shift-jis ms-kanji csshiftjis windows-31j cswindows31j "
            "cp932 ms932 x-ms-cp932 ibm-943 sjis-win sjis-open shift-jis-2004 shift-jisx0213"
        ),
        _SJIS,
    ),
    (
        (
            "euc-jp eucjp x-euc-jp x-eucjp x-euc cseucpkdfmtjapanese eucjp-ms eucjp-win eucjp-open cp51932 "
            "euc-jis-2004 euc-jisx0213 ujis"
        ),
        _EUCJP,
    ),
    ("us-ascii ascii ansi-x3.4-1968 iso646-us us csascii", ("ascii",)),
    (
        "iso-8859-1 iso8859-1 latin1 latin-1 l1 iso-ir-100 cp819 ibm819 windows-1252 cp1252 x-cp1252",
        ("cp1252", "latin_1"),
    ),
    ("gb2312 gb-2312 gbk x-gbk cp936 euc-cn x-euc-cn csgb2312 gb18030", ("gb18030",)),
    ("big5 big-5 cn-big5 csbig5 x-x-big5 cp950 big5-hkscs", ("cp950", "big5hkscs")),
    ("ks-c-5601-1987 ks-c-5601 euc-kr cp949 ksc5601 korean csksc56011987 iso-ir-149 uhc", ("cp949",)),
    ("utf-8 utf8 unicode-1-1-utf-8 x-unicode20utf8", ("utf_8",)),
    # Labels that name no charset at all.
    ("unknown-8bit x-unknown unknown none default 8bit 7bit binary charset x-user-defined", ()),
):
    for _label in _labels.split():
        _FAMILIES[_label] = _chain

# Python text codecs that no mail charset means and that would turn bytes into something surprising.
_REFUSED_CODECS = frozenset({"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode"})

# What this mailbox receives; restricting the detector to these keeps it from reading short Japanese
# text as Korean or Chinese (it does, unrestricted).
_EXPECTED_CODECS = ["utf_8", "cp932", "euc_jp", "iso2022_jp", "cp1252"]


@dataclass(frozen=True)
class _Text:
    text: str
    codec: str
    problem: str = ""  # non-empty: the declared charset did not fit, or no charset fitted


def _norm_label(label: str | None) -> str:
    if not label:
        return ""
    return label.strip().strip("\"'").strip().lower().replace("_", "-")[:40]


def _codecs_for(label: str) -> tuple[str, ...]:
    """Codecs to try, in order, for a normalised charset label; () when it names no usable charset."""
    if label in _FAMILIES:
        return _FAMILIES[label]
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):
        return ()
    return () if name in _REFUSED_CODECS else (name,)


def _try_decode(data: bytes, codec: str) -> str | None:
    if codec == _CP50220:
        return _decode_cp50220(data)
    try:
        text = data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None
    # UTF-7 decodes "+2AA-" to a lone surrogate: not text that can be stored or sent.
    return None if not text.isascii() and _SURROGATE.search(text) else text


def _mostly_utf8(data: bytes) -> str | None:
    """Text declared UTF-8 with a few damaged bytes (a broken escape, a stray byte), or None.

    Valid multi-byte UTF-8 seldom happens by chance (Japanese text in Shift_JIS or EUC-JP read as UTF-8
    gives at most one valid character per bad one): when valid characters outnumber the bad ones three to
    one, the label is right and the bad bytes are damage, not a sign of another charset.
    """
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad
    return text if good >= 3 * bad else None


def _cut_short(data: bytes, codec: str) -> str | None:
    """The text when its only fault is an unfinished last character, as when a fetch was cut short."""
    if codec == _CP50220:
        return None
    try:
        decoder = codecs.getincrementaldecoder(codec)()
        text = decoder.decode(data, final=False)
    except (UnicodeError, LookupError, ValueError):
        return None
    return text + "\ufffd" if decoder.getstate()[0] else None


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
    if j1 % 2:
        s2 = j2 + (0x1F if j2 <= 0x5F else 0x20)
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


def _decode_cp50220(data: bytes) -> str | None:
    """ISO-2022-JP with Microsoft's additions (NEC row 13 like ①/㈱, IBM extensions, half-width katakana).

    No Python codec reads these, but every JIS X 0208 code maps arithmetically onto the same character's
    Shift_JIS code, so the text is rewritten as CP932 bytes and decoded with the cp932 codec.
    """
    out = bytearray()
    mode = "ascii"
    shifted = False  # SO/SI half-width katakana (CP50221)
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == 0x1B:
            seq = data[i + 1 : i + 3]
            if seq in (b"$B", b"$@"):
                mode = "kanji"
            elif seq in (b"(B", b"(J", b"(H"):
                mode = "ascii"
            elif seq == b"(I":
                mode = "kana"
            else:
                return None
            i += 3
            continue
        if byte >= 0x80:
            return None
        if byte in (0x0E, 0x0F):
            shifted = byte == 0x0E
        elif byte < 0x21:  # line breaks and spaces pass through in every mode
            out.append(byte)
        elif shifted or mode == "kana":
            out.append(byte + 0x80 if byte <= 0x5F else byte)
        elif mode == "kanji":
            if i + 1 >= n or not 0x21 <= data[i + 1] <= 0x7E or byte == 0x7F:
                return None
            out += _jis_to_sjis(byte, data[i + 1])
            i += 1
        else:
            out.append(byte)
        i += 1
    try:
        return bytes(out).decode("cp932")
    except UnicodeDecodeError:
        return None


def _detect(data: bytes, isolation: list[str] | None) -> _Text | None:
    sample = data
    if len(data) > DETECT_SAMPLE:
        # Cut at a line end so the sample does not end inside a multi-byte character.
        cut = data.rfind(b"\n", 0, DETECT_SAMPLE)
        sample = data[: cut + 1 if cut > 0 else DETECT_SAMPLE]
    try:
        best = charset_normalizer.from_bytes(sample, cp_isolation=isolation).best()
    except _BAD_INPUT:
        return None
    if best is None:
        return None
    codec = str(best.encoding)
    text = _try_decode(data, codec)
    if text is None:
        try:
            text = data.decode(codec, errors="replace")
        except (LookupError, ValueError):
            return None
    return _Text(text, codec)


def _guess(data: bytes, hint: tuple[str, ...] = (), *, short: bool = False) -> _Text | None:
    """Read bytes whose charset is unknown or wrong. Returns None when nothing fits.

    `short`: header text, too short for the unrestricted detector to be better than a replacement mark.
    """
    if data.isascii():
        if b"\x1b" in data:  # 7-bit only: escape sequences can only mean ISO-2022-JP here
            for codec in _ISO2022JP:
                text = _try_decode(data, codec)
                if text is not None:
                    return _Text(text, "iso-2022-jp")
        return _Text(data.decode("ascii"), "ascii")
    for codec in ("utf_8", *hint):
        text = _try_decode(data, codec)
        if text is not None:
            return _Text(text, codec)
    found = _detect(data, _EXPECTED_CODECS)
    if found is not None:
        return found
    # cp932 before EUC-JP: most EUC-JP bytes are also valid CP932, but the detector above already
    # separates those two well; what reaches here is short or odd.
    for codec in ("cp932", "euc_jis_2004"):
        text = _try_decode(data, codec)
        if text is not None:
            return _Text(text, codec)
    return None if short else _detect(data, None)


_SINGLE_BYTE_LATIN = frozenset({"cp1252", "latin_1", "iso8859-15"})


def _decode_bytes(
    data: bytes, label: str | None, hint: tuple[str, ...] = (), *, short: bool = False
) -> _Text:
    """Decode text bytes declared as `label` (None: no declaration), falling back step by step."""
    if not data:
        return _Text("", "ascii")
    name = _norm_label(label)
    chain = _codecs_for(name) if name else ()
    if chain and chain[0] in _SINGLE_BYTE_LATIN and not data.isascii():
        # These codecs decode any bytes, so a wrong label never fails; UTF-8 almost never passes by chance.
        text = _try_decode(data, "utf_8")
        if text is not None:
            return _Text(text, "utf_8", f"text labelled {name} is UTF-8")
    for codec in chain:
        text = _try_decode(data, codec)
        if text is not None:
            return _Text(text, codec)
    for codec in chain[:1] or ("utf_8",):
        text = _cut_short(data, codec)
        if text is not None:
            return _Text(text, codec, "text ends in the middle of a character")
    if chain[:1] == ("utf_8",):
        text = _mostly_utf8(data)
        if text is not None:
            return _Text(text, "utf_8", f"text is not valid {name}, invalid bytes replaced")
    guessed = _guess(data, hint, short=short)
    known = bool(chain) or not name
    if guessed is not None:
        if not name:
            problem = (
                "" if guessed.codec in ("ascii", "utf_8") else f"no charset declared, read as {guessed.codec}"
            )
        elif known:
            problem = f"text is not valid {name}, read as {guessed.codec}"
        else:
            problem = f"undecodable charset {name}, read as {guessed.codec}"
        return _Text(guessed.text, guessed.codec, problem)
    codec = chain[0] if chain and chain[0] != _CP50220 else "utf_8"
    if not name:
        prefix = "undecodable text"
    elif known:
        prefix = f"text is not valid {name}"
    else:
        prefix = f"undecodable charset {name}"
    return _Text(data.decode(codec, errors="replace"), codec, f"{prefix}, invalid bytes replaced")


# --- headers --------------------------------------------------------------------------------------


class _RawPolicy(Compat32):
    """compat32, but header values come back exactly as received (8-bit bytes as surrogate escapes),
    so they can be decoded here instead of being turned into `Header` objects or replacement marks."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawPolicy()


def _to_bytes(value: str) -> bytes:
    """The bytes behind a header string from BytesParser (ASCII plus surrogate-escaped 8-bit bytes)."""
    return value.encode("utf-8", "surrogateescape")


def _one_line(text: str) -> str:
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
    except _BAD_INPUT:
        return _words_one_by_one(value)


def _words_one_by_one(value: str) -> list[tuple[Any, Any]]:
    chunks: list[tuple[Any, Any]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        if between and not (between.isspace() and chunks and chunks[-1][1] is not None):
            chunks.append((between, None))
        try:
            chunks.extend(decode_header(match.group()))
        except _BAD_INPUT:
            chunks.append((match.group(), None))
        pos = match.end()
    if pos < len(value):
        chunks.append((value[pos:], None))
    return chunks


class _Header:
    """Decodes header values; records what it had to work around."""

    def __init__(self, defects: list[str], hint: tuple[str, ...] = ()) -> None:
        self._defects = defects
        self._hint = hint  # see `_charset_hint`

    def decode(self, value: str, where: str) -> str:
        data = _to_bytes(value[:MAX_RAW_HEADER])
        if b"=?" not in data:
            return _one_line(self._raw(data, where))
        pieces: list[tuple[str, bool]] = []
        # latin-1 keeps every byte as one character, so decode_header hands unencoded runs back intact.
        for chunk, charset in _split_words(data.decode("latin-1")):
            raw = chunk if isinstance(chunk, bytes) else str(chunk).encode("latin-1", errors="replace")
            if charset is None:
                pieces.append((self._raw(raw, where), False))
            else:
                decoded = _decode_bytes(raw, str(charset).split("*", 1)[0], short=True)
                self._note(decoded, where)
                pieces.append((decoded.text, True))
        return _one_line(_join_words(pieces))

    def _raw(self, data: bytes, where: str) -> str:
        if data.isascii() and b"\x1b" not in data:
            return data.decode("ascii")
        decoded = _decode_bytes(data, None, self._hint, short=True)
        problem = decoded.problem.replace("no charset declared", "unencoded non-ASCII text")
        self._note(_Text(decoded.text, decoded.codec, problem), where)
        return decoded.text

    def _note(self, decoded: _Text, where: str) -> None:
        if decoded.problem:
            self._defects.append(f"{decoded.problem} in {where}")


def _header_list(msg: Message, dec: _Header, defects: list[str]) -> tuple[tuple[str, str], ...]:
    items = msg.items()
    if len(items) > MAX_HEADERS:
        defects.append(f"{len(items)} headers, only the first {MAX_HEADERS} kept")
    out: list[tuple[str, str]] = []
    for name, value in items[:MAX_HEADERS]:
        key = str(name).strip().lower()
        out.append((key, dec.decode(str(value), f"header {key}")[:MAX_HEADER_VALUE]))
    return tuple(out)


def _first(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except _BAD_INPUT:
        return None
    return None if value is None else str(value)


def _all(msg: Message, name: str) -> list[str]:
    try:
        values = msg.get_all(name) or []
    except _BAD_INPUT:
        return []
    return [str(value)[:MAX_RAW_HEADER] for value in values]


def _clean_address(addr: str) -> str:
    try:
        text = _to_bytes(addr).decode("utf-8").strip().lower()
    except UnicodeError:
        return ""
    local, at, domain = text.rpartition("@")
    if not (at and local and domain) or len(text) > 320:
        return ""
    if any(ch.isspace() or ch in "<>" or not ch.isprintable() for ch in text):
        return ""
    return text


def _addresses(values: list[str]) -> list[tuple[str, str]]:
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
        pairs = getaddresses([_ENCODED_WORD.sub(hide, value) for value in values])
    except _BAD_INPUT:
        return []
    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        cleaned = _clean_address(addr)  # a placeholder left in an address makes it unusable
        if cleaned:
            out.append((_PLACEHOLDER.sub(lambda m: words[int(m.group(1))], name), cleaned))
    return out


def _date(value: str | None, defects: list[str]) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = parsedate_to_datetime(_one_line(value))
    except _BAD_INPUT:
        parsed = None
    if parsed is None:
        defects.append("unparsable Date header")
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _ids(value: str) -> list[str]:
    return _MSG_ID.findall(value)


def _references(value: str) -> tuple[str, ...]:
    ids = _ids(value)
    if len(ids) > MAX_IDS:
        # The first id is the thread's root and the last ones its nearest ancestors: keep both ends.
        ids = ids[:1] + ids[-(MAX_IDS - 1) :]
    return tuple(ids)


def _synthetic_id(data: bytes) -> str:
    return f"<synthetic-{hashlib.sha256(data).hexdigest()[:24]}@{SYNTHETIC_DOMAIN}>"


# --- body -----------------------------------------------------------------------------------------


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


def _content_type(part: Message) -> str:
    try:
        ctype = part.get_content_type()
    except _BAD_INPUT:
        return "text/plain"
    return ctype if _MIME_TYPE.fullmatch(ctype) else "application/octet-stream"


def _tidy_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").removeprefix("\ufeff")


@dataclass
class _Walk:
    dec: _Header
    defects: list[str]
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
                self.defects.append(f"more than {MAX_PARTS} MIME parts, the rest skipped")
            return
        self.parts += 1
        index = self.parts
        ctype = _content_type(part)
        if ctype.startswith("message/"):
            # A forwarded or returned message is something the customer attached, not what they wrote.
            default = "forwarded message" if ctype in ("message/rfc822", "message/global") else ""
            self._attach(part, ctype, index, default)
            self._note_defects(part, ctype, index)
        elif part.is_multipart():
            self._note_defects(part, ctype, index)
            if depth >= MAX_DEPTH:
                self.defects.append(f"MIME nesting deeper than {MAX_DEPTH} levels, inner parts skipped")
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
            self.defects.append(_defect_text(defect, ctype, index))

    def _leaf(self, part: Message, ctype: str, index: int) -> None:
        maintype = ctype.partition("/")[0]
        if maintype == "multipart":
            # A multipart the parser could not split (no or wrong boundary): its raw text is all there is.
            self.plain.append(self._text(part, index))
            return
        filename = self._filename(part, index)
        try:
            disposition = part.get_content_disposition()
        except _BAD_INPUT:
            disposition = None
        if disposition == "attachment" or filename or maintype != "text":
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
        except _BAD_INPUT:
            label = None
        decoded = _decode_bytes(payload, label)
        if decoded.problem:
            self.defects.append(f"{decoded.problem} in part {index}")
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
                    raw = _to_bytes(str(text))
                decoded = _decode_bytes(raw, charset or None)
                if decoded.problem:
                    self.defects.append(f"{decoded.problem} in filename of part {index}")
                name = _one_line(decoded.text)
            else:
                name = self.dec.decode(str(value), f"filename of part {index}")
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
        data = _NOT_BASE64.sub(b"", _to_bytes(str(part.get_payload())))
        try:
            return base64.b64decode(data[: len(data) // 4 * 4])
        except (binascii.Error, ValueError):
            return payload
    return payload


def _param(part: Message, param: str, header: str) -> Any:
    try:
        return part.get_param(param, None, header)
    except _BAD_INPUT:
        return None


def _decoded_size(part: Message) -> int:
    try:
        if part.is_multipart():
            payload = part.get_payload()
            subs = payload if isinstance(payload, list) else []
            return sum(len(sub.as_bytes()) for sub in subs if isinstance(sub, Message))
        data = part.get_payload(decode=True)
        return len(data) if isinstance(data, bytes) else 0
    except _BAD_INPUT:
        return 0


class _HTMLText(HTMLParser):
    _SKIP = frozenset({"script", "style", "title"})
    _BLOCK = frozenset(
        {
            *("p", "div", "li", "tr", "table", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "hr"),
            *("h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "main", "nav"),
            *("aside", "address", "center", "form", "fieldset", "figure", "figcaption"),
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "br" or tag in self._BLOCK:
            self._parts.append("\n")
        elif tag in ("td", "th"):
            self._parts.append(" ")
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self._parts.append("\n")
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._parts.append(data if self._pre else re.sub(r"[ \t\r\n\f]+", " ", data))

    def text(self) -> str:
        lines: list[str] = []
        for line in "".join(self._parts).split("\n"):
            line = line.strip(" \t")
            if line or (lines and lines[-1]):
                lines.append(line)
        return "\n".join(lines).strip("\n")


def _strip_comments(html: str) -> str:
    out: list[str] = []
    pos = 0
    while True:
        start = html.find("<!--", pos)
        if start < 0:
            out.append(html[pos:])
            break
        out.append(html[pos:start])
        end = html.find("-->", start + 4)
        if end < 0:  # an unclosed comment runs to the end, as in browsers
            break
        pos = end + 3
    return "".join(out)


_DECLARATION = re.compile(r"<[!?][^<>]*>")
_STRAY_LT = re.compile(r"<(?![A-Za-z/][^<>]*>)")


def _html_to_text(html: str) -> tuple[str, bool]:
    """Visible text of an HTML part, and whether the parser got through it."""
    # Python 3.11's HTMLParser rescans to the end of input for every unfinished tag or comment
    # (minutes for 150 KB of "<a "). Remove comments and declarations and escape every "<" that does
    # not open a complete tag, so that it only ever sees finished tags; all of this is linear.
    html = _STRAY_LT.sub("&lt;", _DECLARATION.sub("", _strip_comments(html[:MAX_HTML])))
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except _BAD_INPUT:
        return parser.text(), False
    return parser.text(), True


def _preamble(msg: Message) -> str:
    preamble = msg.preamble if msg.is_multipart() else None
    if not preamble or not preamble.strip():
        return ""
    decoded = _decode_bytes(_to_bytes(preamble[:MAX_TEXT]), None)
    return _tidy_text(decoded.text)


def _body(parts: _Walk) -> tuple[str, bool]:
    plain = [t for t in parts.plain if t.strip()]
    html_only = False
    if plain:
        texts = plain
    elif parts.html:
        html_only = True
        texts = []
        for html in parts.html:
            text, ok = _html_to_text(html)
            if not ok:
                parts.defects.append("HTML could not be fully parsed")
            texts.append(text)
    else:
        # Old bounces put their only human-readable words before the first MIME part.
        texts = [parts.preamble]
    text = "\n\n".join(t.lstrip("\n").rstrip() for t in texts if t.strip())
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        parts.defects.append(f"text cut to {MAX_TEXT} characters")
    return text, html_only


# --- the message ----------------------------------------------------------------------------------


def _normalise(raw: bytes) -> bytes:
    data = bytes(raw).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data = data.removeprefix(b"\xef\xbb\xbf")
    return _LEADING_BLANK_LINES.sub(b"", data).removeprefix(b"\xef\xbb\xbf")


def _parse_bytes(data: bytes, defects: list[str]) -> tuple[Message, bool]:
    """The parsed message and whether its body was parsed too."""
    try:
        return BytesParser(policy=_POLICY).parsebytes(data), True
    except _BAD_INPUT as exc:
        # Typically RecursionError on absurdly nested MIME; the headers alone are still worth having.
        defects.append(f"MIME structure could not be parsed ({type(exc).__name__}), body skipped")
        return BytesHeaderParser(policy=_POLICY).parsebytes(data), False


def _unreadable(raw: object, size: int | None, truncated: bool, reason: str) -> InboundEmail:
    data, length = b"", 0
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data, length = _normalise(bytes(raw)), len(raw)
    return InboundEmail(
        message_id=_synthetic_id(data),
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
            label = _norm_label(part.get_content_charset())
            for codec in _codecs_for(label) if label else ():
                if codec not in ("ascii", "utf_8") and codec not in _ISO2022JP:
                    hint.setdefault(codec)
    except _BAD_INPUT:
        return tuple(hint)
    return tuple(hint)


def _report_type(msg: Message, ctype: str) -> str:
    if ctype != "multipart/report":
        return ""
    try:
        value = msg.get_param("report-type")
    except _BAD_INPUT:
        return ""
    if isinstance(value, tuple):
        value = value[2]
    return _one_line(_to_bytes(str(value)).decode("ascii", "replace")).lower()[:100] if value else ""


def _message_id(msg: Message, dec: _Header, data: bytes, defects: list[str]) -> tuple[str, bool]:
    raw = _first(msg, "message-id")
    value = dec.decode(raw, "header message-id") if raw is not None else ""
    match = _MSG_ID.search(value)
    if match:
        return match.group(), False
    if value and not any(ch.isspace() for ch in value) and "<" not in value and ">" not in value:
        defects.append("Message-ID without angle brackets")
        return f"<{value[:MAX_HEADER_VALUE]}>", False
    if value:
        defects.append("unusable Message-ID, replaced by a synthetic one")
    return _synthetic_id(data), True


def _parse(raw: bytes, size: int | None, truncated: bool) -> InboundEmail:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        return _unreadable(raw, size, truncated, f"input is {type(raw).__name__}, not bytes")
    data = _normalise(bytes(raw))
    if not data.strip():
        return _unreadable(raw, size, truncated, "empty message")
    defects: list[str] = []
    msg, body_parsed = _parse_bytes(data, defects)
    if not msg.keys():
        return _unreadable(raw, size, truncated, "no e-mail headers found: not an e-mail message")

    dec = _Header(defects, _charset_hint(msg))
    headers = _header_list(msg, dec, defects)
    message_id, synthetic = _message_id(msg, dec, data, defects)

    senders = _addresses(_all(msg, "from"))
    from_name, from_addr = senders[0] if senders else ("", "")
    reply_to = _addresses(_all(msg, "reply-to"))
    to_addrs = tuple(dict.fromkeys(addr for _name, addr in _addresses(_all(msg, "to"))))[:MAX_ADDRESSES]

    subject_raw = _first(msg, "subject")
    subject = dec.decode(subject_raw, "header subject") if subject_raw is not None else ""
    subject = subject.replace("\t", " ")[:MAX_SUBJECT]

    in_reply_to = dec.decode(_first(msg, "in-reply-to") or "", "header in-reply-to")
    references = dec.decode(_first(msg, "references") or "", "header references")
    ctype = _content_type(msg)

    walk = _Walk(dec, defects)
    if body_parsed:
        walk.visit(msg, 0)
        walk.preamble = _preamble(msg)
    text, html_only = _body(walk)

    return InboundEmail(
        message_id=message_id,
        message_id_synthetic=synthetic,
        from_addr=from_addr,
        from_name=dec.decode(from_name, "header from")[:MAX_NAME] if from_name else "",
        reply_to=reply_to[0][1] if reply_to else "",
        to_addrs=to_addrs,
        subject=subject,
        date=_date(_first(msg, "date"), defects),
        in_reply_to=tuple(_ids(in_reply_to))[:MAX_IDS],
        references=_references(references),
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
    except Exception as exc:  # noqa: BLE001 - the contract: one bad message never stops the batch
        return _unreadable(raw, size, truncated, f"could not parse message ({type(exc).__name__})")
