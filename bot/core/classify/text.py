"""Text the kind rules read: normalised (NFKC, casefold), the writer's own words only (quoted
replies, forwarded mail and signatures removed), its language, and a case reference in a subject."""

from __future__ import annotations

import functools
import re
import unicodedata

MAX_SUBJECT_CHARS = 1_000

# --- normalising ----------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'"})
# Hiragana, katakana (incl. the long-vowel mark), CJK ideographs, and CJK punctuation.
_JA_CHAR = "\u3001-\u303f\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WS = re.compile(r"\s+")
_JA_GAP = re.compile(f"(?<=[{_JA_CHAR}]) (?=[{_JA_CHAR}])")


def normalise(text: str) -> str:
    """NFKC + casefold (ＤＭ -> dm, ﾃﾞｰﾀ -> データ), and curly quotes made straight."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_QUOTES)


def match_text(text: str) -> str:
    """What the kind rules are searched in: `normalise`d, white space runs made one space,
    and the spaces/line breaks between two Japanese characters removed (wrapped sentences)."""
    flat = _WS.sub(" ", normalise(text)).strip()
    return _JA_GAP.sub("", flat)


# --- quoted text and signatures ---------------------------------------------------------

_QUOTE_LINE = re.compile(r"^[ \t\u3000]*[>＞]")
_CUT_HERE = re.compile(
    r"""^[ \t\u3000]*(?:
        -{2,}\s*(?:original\ message|forwarded\ message|元のメッセージ|転送(?:された)?メッセージ|
                   オリジナルメッセージ)\s*-{2,}
      | begin\ forwarded\ message:
      | .{0,300}\bwrote\s*:
      | .{0,300}(?:\ a\ écrit|\ schrieb)\s*:
      | .{0,200}(?:さん)?は書きました\s*[:：]?
      | .{0,200}@.{0,100}の(?:メール|メッセージ)\s*[:：]
      | \d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日.{0,200}@.{0,100}[:：]
      | (?:sent\ from\ my|get\ outlook\ for)\b.*
      | .{0,40}から送信
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_ON_LINE = re.compile(r"^[ \t]*on\s", re.IGNORECASE)
_WROTE_END = re.compile(r"\bwrote\s*:\s*$", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^[ \t\u3000]*\*?(?:from|差出人|送信者)\*?\s*[:：]", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^[ \t\u3000]*\*?(?:sent|date|送信日時|送信日|日付|日時)\*?\s*[:：]", re.IGNORECASE)
_UNDERSCORES = re.compile(r"^[ \t]*_{10,}[ \t]*$")
_SIG_DASHES = re.compile(r"^--[ \t]*$")
_SEPARATOR = re.compile(r"^[ \t\u3000]*[-=＝━─―_*＊~～〜・■□◆◇◎○●☆★#+]{5,}[ \t\u3000]*$")
_CONTACT = re.compile(
    r"tel\b|fax\b|電話|携帯|〒|e-?mail|mail\s*[:：]|メール|https?://|www\.|@|株式会社|有限会社|合同会社|"
    r"\(株\)|（株）|住所|phone|mobile|\d{2,4}-\d{2,4}-\d{3,4}",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"。|ください|下さい|ます|です|[?？]\s*$|^(?:\S+\s+){5,}\S*[.!]\s*$")
_SIG_MAX_LINES = 12


def strip_quoted(text: str) -> str:
    """The writer's own words: quoted lines, reply/forward headers and what follows them,
    signatures and trailing legal notices removed.

    Removed: lines starting with '>' or '＞'; from an "On ... wrote:" (also over two lines),
    "...さんは書きました:", "2026年1月5日 ... <a@b>:", "-----Original Message-----",
    "-----元のメッセージ-----", a forwarded-message marker, an Outlook "From: ... Sent: ..."
    block (also 差出人/送信日時), a "-- " signature line or "Sent from my ..." to the end; and
    a trailing block after a separator line (━━━━━, -----, ＝＝＝＝＝ ...) that looks like
    contact details (phone, address, mail, company) rather than sentences; and trailing paragraphs
    that are legal notices ("if you received this in error, please delete it", "誤って受信された場合は
    ...削除してください").
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        if line and not line.isspace() and _cuts_here(lines, i, line):  # a blank line never cuts
            cut = i
            break
    kept = [line for line in lines[:cut] if not _QUOTE_LINE.match(line)]
    kept = _drop_signature_block(_drop_legal_notices(kept))
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)


def _cuts_here(lines: list[str], i: int, line: str) -> bool:
    if _SIG_DASHES.match(line) or _CUT_HERE.match(line):
        return True
    if _ON_LINE.match(line) and not _WROTE_END.search(line):
        for end in (i + 2, i + 3):  # "On ... <a@b>" / "wrote:" wrapped over two or three lines
            joined = " ".join(part.strip() for part in lines[i:end])
            if _WROTE_END.search(joined) and len(joined) < 400:
                return True
    if _HEADER_FROM.match(line) or (_UNDERSCORES.match(line) and i + 1 < len(lines)
                                    and _HEADER_FROM.match(lines[i + 1])):
        return any(_HEADER_SENT.match(nxt) for nxt in lines[i + 1 : i + 6])
    return False


def _drop_signature_block(lines: list[str]) -> list[str]:
    """Cuts at the last separator line whose following block reads like contact details.

    One pass from the end (linear: each line is looked at once): `below` counts the non-blank,
    non-separator lines under the current one, and whether the first _SIG_MAX_LINES + 1 of them hold
    contact details or sentences is kept as they are met. The first separator with lines below it
    decides; separators with nothing below (a closing one) are passed over.
    """
    below = 0
    contact = sentence = False
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if _SEPARATOR.match(line):
            if not below:
                continue  # a closing separator: look further up for the opening one
            if below <= _SIG_MAX_LINES and contact and not sentence:
                return lines[:i]
            return lines
        stripped = line.strip()
        if stripped:
            below += 1
            if below <= _SIG_MAX_LINES:  # past that the block is too long to be a signature anyway
                contact = contact or _CONTACT.search(stripped) is not None
                sentence = sentence or _SENTENCE.search(stripped) is not None
    return lines


# A legal notice under a mail (disclaimers, "if you received this in error, please delete it").
_LEGAL = re.compile(
    r"""intended\ (?:solely\ |only\ |exclusively\ )?for\ the\ (?:use\ of\ the\ )?(?:addressee|intended|named|person|recipient)
      | intended\ (?:solely\ |only\ |exclusively\ )?for\ the\ addressee
      | not\ the\ intended\ recipient | (?:received|got)\ this\ (?:e-?mail|message|mail|communication|transmission)?\ ?(?:in\ error|by\ mistake)
      | confidentiality\ notice | ^\W*disclaimer\b | privileged\ (?:and|or|and/or)\ confidential
      | unauthori[sz]ed\ (?:review|use|disclosure|distribution|copying|dissemination)
      | 誤って(?:受信|届|送信|配信) | 誤送信 | 心当たりの(?:ない|無い)方 | 宛先の方(?:のみ|以外) | 意図した宛先
      | 機密情報が含まれ | 無断(?:で)?(?:転載|転送|複製|使用|開示) | 本メールは.{0,30}(?:のみを対象|宛先)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_NOTICE_LINES = 8  # a legal notice is a short paragraph


def _drop_legal_notices(lines: list[str]) -> list[str]:
    """Cuts trailing paragraphs (blocks between blank or separator lines) that are legal notices."""
    end = len(lines)
    while True:
        while end and (not lines[end - 1].strip() or _SEPARATOR.match(lines[end - 1])):
            end -= 1
        start = end
        while start and lines[start - 1].strip() and not _SEPARATOR.match(lines[start - 1]):
            start -= 1
        block = lines[start:end]
        if not block or len(block) > _NOTICE_LINES or start == 0:
            break
        if not _LEGAL.search(" ".join(line.strip() for line in block)):
            break
        end = start
    return lines[:end] if end < len(lines) and any(line.strip() for line in lines[:end]) else lines


_REPLY_SUBJECT = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|tr|sv|vs|antw|転送|返信)\s*(?:\[\d+\])?\s*[:：]\s*)+",
                            re.IGNORECASE)


def is_reply_subject(subject: str) -> bool:
    """"Re: ...", "FW: ...", "転送: ...": the subject of an earlier mail, not the writer's own words."""
    return _REPLY_SUBJECT.match(unicodedata.normalize("NFKC", subject)) is not None


# --- language and reference --------------------------------------------------------------

_KANA = re.compile("[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff]")
_KANJI = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_HAN_TEXT = 15  # more Han characters than this with hardly any kana: Chinese, so English


def detect_language(text: str) -> str:
    """"ja" when the text has a meaningful amount of Japanese (>= 5 kana/kanji characters,
    or >= 10 % of its letters and at least 2), else "en".

    Japanese prose is full of kana; Han text of more than 15 characters with fewer kana
    than a tenth of its kanji is taken as Chinese and answered in English."""
    text = unicodedata.normalize("NFKC", text)
    kana = len(_KANA.findall(text))
    kanji = len(_KANJI.findall(text))
    if kanji > _HAN_TEXT and kana * 10 < kanji:
        return "en"
    japanese = kana + kanji
    letters = sum(1 for ch in text if ch.isalpha())
    if japanese >= 5 or (japanese >= 2 and japanese * 10 >= letters):
        return "ja"
    return "en"


_DASH = "[-\u2010-\u2015\u2212\u30fc]"


@functools.lru_cache(maxsize=16)
def _ref_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?<![a-z0-9]){re.escape(prefix)}\s?{_DASH}\s?(\d{{4}})\s?{_DASH}\s?(\d{{1,12}})(?!\d)",
        re.IGNORECASE,
    )


def find_ref(subject: str, prefix: str = "PRV") -> str:
    """The case reference in a subject ("[PRV-2026-00042]", "prv-2026-00042", "［ＰＲＶ－２０２６－００４２］"),
    as "PRV-2026-00042"; "" if there is none."""
    if not prefix:
        return ""
    match = _ref_pattern(prefix.upper()).search(unicodedata.normalize("NFKC", subject[:MAX_SUBJECT_CHARS]))
    if match is None:
        return ""
    return f"{prefix.upper()}-{match.group(1)}-{match.group(2)}"

