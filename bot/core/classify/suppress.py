"""Whether a mail must never be answered, checked in a fixed order; the first hit wins:
own address, bounce, auto-reply, late bounce signals (such as the null sender <>, which auto-replies
use too), bulk, no-reply sender, invalid address. Each check returns its evidence ("" for none)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

from bot.core.classify.rules import HeaderRule, Rules
from bot.core.classify.text import MAX_SUBJECT_CHARS, match_text, normalise
from bot.core.model import InboundEmail, Suppress

MAX_TEXT_CHARS = 20_000  # a request is near the top; this bounds the work on huge mails
MAX_HEADER_CHARS = 2_000
EVIDENCE_CHARS = 100
_WS = re.compile(r"\s+")


def suppression(mail: InboundEmail, rules: Rules, own_addresses: frozenset[str],
                recipient: str | None = None) -> tuple[Suppress | None, str]:
    """`recipient`: where an answer would go (From, or an authenticated sender's Reply-To);
    None: the mail's `reply_address`."""
    to = mail.reply_address if recipient is None else recipient
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
    if evidence := _no_reply(to, rules):
        return Suppress.NO_REPLY_SENDER, evidence
    if evidence := _invalid_address(to, rules):
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
    body = ""
    for addr in senders:
        if addr and _first_match(bounce.weak_sender_local_parts, _local_part(addr)):
            body = body or match_text(mail.text[:MAX_TEXT_CHARS])
            phrase = _first_match(bounce.corroborating_text, body)
            if phrase:
                return f"bounce.weak_sender: From {addr} and text /{phrase.pattern}/"
    returned = next((p.content_type.lower() for p in mail.attachments
                     if p.content_type.lower() in bounce.returned_parts), "")
    if returned:
        body = body or match_text(mail.text[:MAX_TEXT_CHARS])
        phrase = _first_match(bounce.corroborating_text, body)
        if phrase:
            return f"bounce.returned_part: a {returned} part and text /{phrase.pattern}/"
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


def _no_reply(addr: str, rules: Rules) -> str:
    if addr and _first_match(rules.address.no_reply_local_parts, _local_part(addr)):
        return f"no_reply.local_part: {addr}"
    return ""


def _invalid_address(addr: str, rules: Rules) -> str:
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
