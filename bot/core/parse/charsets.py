"""Bytes of unknown or doubtful charset -> text: label families, fallback chains, CP50220, detection.

Pure: `decode_bytes` never raises and says what it had to work around as a `CharsetIssue`.
"""

from __future__ import annotations

import codecs
import enum
import re
from dataclasses import dataclass

import charset_normalizer

from bot.core.parse.limits import BAD_INPUT, DETECT_SAMPLE

_SURROGATE = re.compile("[\ud800-\udfff]")


# Not a Python codec: ISO-2022-JP as Windows writes it (CP50220/CP50221), see `_decode_cp50220`.
_CP50220 = "x-cp50220"
ISO2022JP = ("iso2022_jp", "iso2022_jp_ext", _CP50220, "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_2004")
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
        ISO2022JP,
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


class Issue(enum.Enum):
    """What decoding had to work around; `describe` turns it into words."""

    UTF8_UNDER_LATIN_LABEL = enum.auto()  # labelled a Latin single-byte charset, but valid UTF-8
    CUT_SHORT = enum.auto()  # valid but for an unfinished last character
    UTF8_DAMAGED = enum.auto()  # labelled UTF-8, a few invalid bytes replaced
    NO_CHARSET_GUESSED = enum.auto()  # no label: read as the detected charset
    WRONG_LABEL_GUESSED = enum.auto()  # a known label that did not fit: read as the detected charset
    UNKNOWN_LABEL_GUESSED = enum.auto()  # a label no codec knows: read as the detected charset
    REPLACED = enum.auto()  # nothing fitted: invalid bytes replaced


@dataclass(frozen=True)
class CharsetIssue:
    issue: Issue
    label: str  # the declared charset, normalised; "" when none was declared
    codec: str  # what the text was read as
    known: bool = True  # whether a codec knows the label


@dataclass(frozen=True)
class Decoded:
    text: str
    codec: str
    issue: CharsetIssue | None = None


def describe(found: CharsetIssue, *, in_header: bool = False) -> str:
    """The issue in words, e.g. "text is not valid shift-jis, read as euc_jp"."""
    name, codec = found.label, found.codec
    match found.issue:
        case Issue.UTF8_UNDER_LATIN_LABEL:
            return f"text labelled {name} is UTF-8"
        case Issue.CUT_SHORT:
            return "text ends in the middle of a character"
        case Issue.UTF8_DAMAGED:
            return f"text is not valid {name}, invalid bytes replaced"
        case Issue.NO_CHARSET_GUESSED:
            return f"unencoded non-ASCII text, read as {codec}" if in_header else f"no charset declared, read as {codec}"
        case Issue.WRONG_LABEL_GUESSED:
            return f"text is not valid {name}, read as {codec}"
        case Issue.UNKNOWN_LABEL_GUESSED:
            return f"undecodable charset {name}, read as {codec}"
    if not name:
        prefix = "undecodable text"
    elif found.known:
        prefix = f"text is not valid {name}"
    else:
        prefix = f"undecodable charset {name}"
    return f"{prefix}, invalid bytes replaced"


def norm_label(label: str | None) -> str:
    if not label:
        return ""
    return label.strip().strip("\"'").strip().lower().replace("_", "-")[:40]


def codecs_for(label: str) -> tuple[str, ...]:
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


def _detect(data: bytes, isolation: list[str] | None) -> Decoded | None:
    sample = data
    if len(data) > DETECT_SAMPLE:
        # Cut at a line end so the sample does not end inside a multi-byte character.
        cut = data.rfind(b"\n", 0, DETECT_SAMPLE)
        sample = data[: cut + 1 if cut > 0 else DETECT_SAMPLE]
    try:
        best = charset_normalizer.from_bytes(sample, cp_isolation=isolation).best()
    except BAD_INPUT:
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
    return Decoded(text, codec)


def _guess(data: bytes, hint: tuple[str, ...] = (), *, short: bool = False) -> Decoded | None:
    """Read bytes whose charset is unknown or wrong. Returns None when nothing fits.

    `short`: header text, too short for the unrestricted detector to be better than a replacement mark.
    """
    if data.isascii():
        if b"\x1b" in data:  # 7-bit only: escape sequences can only mean ISO-2022-JP here
            for codec in ISO2022JP:
                text = _try_decode(data, codec)
                if text is not None:
                    return Decoded(text, "iso-2022-jp")
        return Decoded(data.decode("ascii"), "ascii")
    for codec in ("utf_8", *hint):
        text = _try_decode(data, codec)
        if text is not None:
            return Decoded(text, codec)
    found = _detect(data, _EXPECTED_CODECS)
    if found is not None:
        return found
    # cp932 before EUC-JP: most EUC-JP bytes are also valid CP932, but the detector above already
    # separates those two well; what reaches here is short or odd.
    for codec in ("cp932", "euc_jis_2004"):
        text = _try_decode(data, codec)
        if text is not None:
            return Decoded(text, codec)
    return None if short else _detect(data, None)


_SINGLE_BYTE_LATIN = frozenset({"cp1252", "latin_1", "iso8859-15"})


def decode_bytes(data: bytes, label: str | None, hint: tuple[str, ...] = (), *, short: bool = False) -> Decoded:
    """Decode text bytes declared as `label` (None: no declaration), falling back step by step.

    `short`: header text, too short for the unrestricted detector to be better than a replacement mark.
    """
    if not data:
        return Decoded("", "ascii")
    name = norm_label(label)
    chain = codecs_for(name) if name else ()
    if chain and chain[0] in _SINGLE_BYTE_LATIN and not data.isascii():
        # These codecs decode any bytes, so a wrong label never fails; UTF-8 almost never passes by chance.
        text = _try_decode(data, "utf_8")
        if text is not None:
            return Decoded(text, "utf_8", CharsetIssue(Issue.UTF8_UNDER_LATIN_LABEL, name, "utf_8"))
    for codec in chain:
        text = _try_decode(data, codec)
        if text is not None:
            return Decoded(text, codec)
    for codec in chain[:1] or ("utf_8",):
        text = _cut_short(data, codec)
        if text is not None:
            return Decoded(text, codec, CharsetIssue(Issue.CUT_SHORT, name, codec))
    if chain[:1] == ("utf_8",):
        text = _mostly_utf8(data)
        if text is not None:
            return Decoded(text, "utf_8", CharsetIssue(Issue.UTF8_DAMAGED, name, "utf_8"))
    guessed = _guess(data, hint, short=short)
    known = bool(chain) or not name
    if guessed is not None:
        if not name:
            issue = None if guessed.codec in ("ascii", "utf_8") else Issue.NO_CHARSET_GUESSED
        else:
            issue = Issue.WRONG_LABEL_GUESSED if known else Issue.UNKNOWN_LABEL_GUESSED
        found = CharsetIssue(issue, name, guessed.codec, known) if issue else None
        return Decoded(guessed.text, guessed.codec, found)
    codec = chain[0] if chain and chain[0] != _CP50220 else "utf_8"
    return Decoded(data.decode(codec, errors="replace"), codec, CharsetIssue(Issue.REPLACED, name, codec, known))
