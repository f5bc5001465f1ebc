"""The sorter: what a received mail asks for, and whether it must never be answered.

`classify` is a pure function of an `InboundEmail` and the loaded `Rules`; it never raises.
The small helpers it is built from (`strip_quoted`, `normalise`, `detect_language`,
`find_ref`) are pure too and are used on their own elsewhere (e.g. the reference lookup).

Kinds are found by the `[[rule]]` patterns of the rule file, searched in the subject plus
the customer's own words (quoted replies, forwarded messages and signatures removed),
normalised by `match_text`: NFKC (full-width letters and half-width kana folded), casefold,
runs of white space made one space, and the line breaks inside Japanese sentences removed.

Suppression (never reply) is checked in a fixed order, first hit wins:
own address, bounce, auto-reply, (late bounce signals such as the null sender <>, which
auto-replies use too), bulk, no-reply sender, invalid address.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

from bot.core.model import KIND_ORDER, Classification, InboundEmail, Kind, Suppress
from bot.core.rules import HeaderRule, Rules

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 20_000  # a request is near the top; this bounds the work on huge mails
MAX_SUBJECT_CHARS = 1_000
MAX_HEADER_CHARS = 2_000
EVIDENCE_CHARS = 100

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
    and signatures removed.

    Removed: lines starting with '>' or '＞'; from an "On ... wrote:" (also over two lines),
    "...さんは書きました:", "2026年1月5日 ... <a@b>:", "-----Original Message-----",
    "-----元のメッセージ-----", a forwarded-message marker, an Outlook "From: ... Sent: ..."
    block (also 差出人/送信日時), a "-- " signature line or "Sent from my ..." to the end; and
    a trailing block after a separator line (━━━━━, -----, ＝＝＝＝＝ ...) that looks like
    contact details (phone, address, mail, company) rather than sentences.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        if _cuts_here(lines, i, line):
            cut = i
            break
    kept = [line for line in lines[:cut] if not _QUOTE_LINE.match(line)]
    kept = _drop_signature_block(kept)
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
    """Cuts at the last separator line whose following block reads like contact details."""
    for i in range(len(lines) - 1, -1, -1):
        if not _SEPARATOR.match(lines[i]):
            continue
        block = [line.strip() for line in lines[i + 1 :] if line.strip() and not _SEPARATOR.match(line)]
        if not block:
            continue  # a closing separator: look further up for the opening one
        if (len(block) <= _SIG_MAX_LINES and any(_CONTACT.search(b) for b in block)
                and not any(_SENTENCE.search(b) for b in block)):
            return lines[:i]
        return lines
    return lines


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


# --- the sorter --------------------------------------------------------------------------

_DMARC_FAIL = re.compile(r"\bdmarc\s*=\s*fail\b", re.IGNORECASE)


def classify(
    mail: InboundEmail, rules: Rules, *, own_addresses: frozenset[str], ref_prefix: str = "PRV"
) -> Classification:
    """What `mail` asks for (kinds, language, reference) and whether it must never be answered."""
    try:
        return _classify(mail, rules, own_addresses, ref_prefix)
    except Exception:  # the sorter must never stop the batch
        log.exception("classifier failed on message %s; handing it to staff", mail.message_id)
        return Classification(kinds=(), language="en", flags=("classifier_error",))


def _classify(mail: InboundEmail, rules: Rules, own_addresses: frozenset[str], ref_prefix: str) -> Classification:
    own_words = strip_quoted(mail.subject[:MAX_SUBJECT_CHARS] + "\n" + mail.text[:MAX_TEXT_CHARS])
    haystack = match_text(own_words)
    fired = [rule for rule in rules.kind_rules if any(p.search(haystack) for p in rule.patterns)]
    found = {rule.kind for rule in fired}
    if found - {Kind.GENERAL}:
        found.discard(Kind.GENERAL)  # general only when nothing specific was asked
    suppress, evidence = _suppression(mail, rules, own_addresses)
    flags = ("dmarc_fail",) if any(_DMARC_FAIL.search(v) for v in mail.header_all("authentication-results")) else ()
    return Classification(
        kinds=tuple(k for k in KIND_ORDER if k in found),
        language=detect_language(own_words),
        rules=tuple(rule.id for rule in fired),
        suppress=suppress,
        suppress_evidence=evidence,
        ref=find_ref(mail.subject, ref_prefix),
        flags=flags,
    )


def _suppression(mail: InboundEmail, rules: Rules, own_addresses: frozenset[str]) -> tuple[Suppress | None, str]:
    headers: dict[str, list[str]] = {}
    for name, value in mail.headers:
        headers.setdefault(name, []).append(value[:MAX_HEADER_CHARS])
    subject = normalise(_WS.sub(" ", mail.subject[:MAX_SUBJECT_CHARS])).strip()
    # In this order; the first that finds evidence decides.
    if evidence := _own_address(mail, own_addresses):
        return Suppress.OWN_ADDRESS, evidence
    if evidence := _bounce(mail, rules, headers, subject):
        return Suppress.BOUNCE, evidence
    if evidence := _auto_reply(rules, headers, subject):
        return Suppress.AUTO_REPLY, evidence
    if evidence := _header_hit(rules.bounce.late_headers, headers):
        return Suppress.BOUNCE, evidence  # e.g. the null sender <>, which auto-replies use too
    if evidence := _bulk(mail, rules, headers):
        return Suppress.BULK, evidence
    if evidence := _no_reply(mail, rules):
        return Suppress.NO_REPLY_SENDER, evidence
    if evidence := _invalid_address(mail, rules):
        return Suppress.INVALID_ADDRESS, evidence
    return None, ""


def _short(value: str) -> str:
    value = _WS.sub(" ", value).strip()
    return value if len(value) <= EVIDENCE_CHARS else value[: EVIDENCE_CHARS - 1] + "…"


def _header_hit(rules: Iterable[HeaderRule], headers: Mapping[str, list[str]]) -> str:
    for rule in rules:
        for value in headers.get(rule.name, ()):
            if rule.pattern is None or rule.pattern.search(value):
                return f"{rule.id}: header {rule.name}: {_short(value)}"
    return ""


def _first_match(patterns: Iterable[re.Pattern[str]], text: str) -> re.Pattern[str] | None:
    return next((p for p in patterns if p.search(text)), None)


def _local_part(addr: str) -> str:
    addr = addr.strip().strip("<>").lower()
    return addr.rpartition("@")[0] if "@" in addr else addr


def _header_addresses(headers: Mapping[str, list[str]], *names: str) -> list[str]:
    out = []
    for name in names:
        for value in headers.get(name, ()):
            addr = parseaddr(value)[1] or value.strip()
            if addr:
                out.append(addr.lower())
    return out


def _own_address(mail: InboundEmail, own_addresses: frozenset[str]) -> str:
    own = {a.strip().lower() for a in own_addresses}
    for addr in (mail.from_addr, mail.reply_to):
        if addr and addr.lower() in own:
            return f"own_address: {addr}"
    return ""


def _bounce(mail: InboundEmail, rules: Rules, headers: Mapping[str, list[str]], subject: str) -> str:
    bounce = rules.bounce
    if mail.content_type in bounce.content_types:
        report = f"; report-type={mail.report_type}" if mail.report_type else ""
        return f"bounce.content_type: {mail.content_type}{report}"
    for part in mail.attachments:
        if part.content_type.lower() in bounce.content_types:
            return f"bounce.part: a {part.content_type.lower()} part"
    hit = _header_hit(bounce.headers, headers)
    if hit:
        return hit
    senders = [mail.from_addr, *_header_addresses(headers, "from")]
    names = [mail.from_name, *(parseaddr(v)[0] for v in headers.get("from", ()))]
    for addr in senders:
        pattern = _first_match(bounce.sender_local_parts, _local_part(addr))
        if addr and pattern:
            return f"bounce.sender: From {addr}"
    for name in names:
        if name and _first_match(bounce.sender_names, normalise(name).strip()):
            return f"bounce.sender_name: From {_short(name)!r}"
    pattern = _first_match(bounce.subjects, subject)
    if pattern:
        return f"bounce.subject /{pattern.pattern}/: {_short(mail.subject)!r}"
    for addr in senders:
        if addr and _first_match(bounce.weak_sender_local_parts, _local_part(addr)):
            body = match_text(mail.text[:MAX_TEXT_CHARS])
            phrase = _first_match(bounce.corroborating_text, body)
            if phrase:
                return f"bounce.weak_sender: From {addr} and text /{phrase.pattern}/"
    return ""


def _auto_reply(rules: Rules, headers: Mapping[str, list[str]], subject: str) -> str:
    auto = rules.auto_reply
    hit = _header_hit(auto.headers, headers)
    if hit:
        return hit
    pattern = _first_match(auto.subjects, subject)
    if pattern:
        return f"auto_reply.subject /{pattern.pattern}/: {_short(subject)!r}"
    pattern = _first_match(auto.weak_subjects, subject)
    if pattern:
        hit = _header_hit(auto.weak_subject_headers, headers)
        if hit:
            return f"{hit}, with auto_reply.weak_subject /{pattern.pattern}/"
    return ""


def _bulk(mail: InboundEmail, rules: Rules, headers: Mapping[str, list[str]]) -> str:
    bulk = rules.bulk
    hit = _header_hit(bulk.headers, headers)
    if hit:
        return hit
    if mail.content_type in bulk.content_types:
        return f"bulk.content_type: {mail.content_type}"
    for part in mail.attachments:
        if part.content_type.lower() in bulk.content_types:
            return f"bulk.part: a {part.content_type.lower()} part"
    for addr in [mail.from_addr, *_header_addresses(headers, "from", "sender", "return-path")]:
        if addr and _first_match(bulk.sender_local_parts, _local_part(addr)):
            return f"bulk.sender: {addr}"
    return ""


def _no_reply(mail: InboundEmail, rules: Rules) -> str:
    addr = mail.reply_address
    if addr and _first_match(rules.address.no_reply_local_parts, _local_part(addr)):
        return f"no_reply.local_part: {addr}"
    return ""


def _invalid_address(mail: InboundEmail, rules: Rules) -> str:
    addr = mail.reply_address
    if not addr:
        return "address.missing: no usable From or Reply-To address"
    problem = address_problem(addr, rules.address.lenient_domains)
    return f"address.invalid: {_short(addr)}: {problem}" if problem else ""


_LENIENT_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$")


def address_problem(addr: str, lenient_domains: frozenset[str] = frozenset()) -> str:
    """Why `addr` cannot be replied to ("" if it can), by email-validator without DNS.

    Local parts with RFC-violating dots ("taro..yamada@", "hanako.@") are accepted for the
    `lenient_domains` (old Japanese mobile carrier addresses still in use)."""
    try:
        validate_email(addr, check_deliverability=False)
    except EmailNotValidError as exc:
        local, _, domain = addr.lower().rpartition("@")
        lenient = any(domain == d or domain.endswith("." + d) for d in lenient_domains)
        if lenient and local and _LENIENT_LOCAL.fullmatch(local):
            return ""
        return str(exc)
    return ""
