"""The sorter: what a received mail asks for, and whether it must never be answered.

`classify` is a pure function of an `InboundEmail` and the loaded `Rules`. The rooms: `text`
(normalising, the writer's own words, language, reference), `suppress` (never-answer checks),
`rules` (the rule file as frozen values).

Kinds are found by the `[[rule]]` patterns of the rule file, searched in the subject plus the
customer's own words, normalised by `match_text`.
"""

from __future__ import annotations

import re

from bot.core.classify.rules import Rules
from bot.core.classify.suppress import MAX_TEXT_CHARS, suppression
from bot.core.classify.text import (
    MAX_SUBJECT_CHARS,
    detect_language,
    find_ref,
    match_text,
    normalise,
    strip_quoted,
)
from bot.core.model import KIND_ORDER, Classification, Flag, InboundEmail, Kind

__all__ = ["classify", "detect_language", "find_ref", "match_text", "normalise", "strip_quoted"]

_DMARC_FAIL = re.compile(r"\bdmarc\s*=\s*fail\b", re.IGNORECASE)


def classify(
    mail: InboundEmail, rules: Rules, *, own_addresses: frozenset[str], ref_prefix: str = "PRV"
) -> Classification:
    """What `mail` asks for (kinds, language, reference) and whether it must never be answered.

    An exception here is a bug: it propagates, and the shell quarantines the mail (no reply)."""
    own_words = strip_quoted(mail.subject[:MAX_SUBJECT_CHARS] + "\n" + mail.text[:MAX_TEXT_CHARS])
    haystack = match_text(own_words)
    fired = [rule for rule in rules.kind_rules if any(p.search(haystack) for p in rule.patterns)]
    found = {rule.kind for rule in fired}
    if found - {Kind.GENERAL}:
        found.discard(Kind.GENERAL)  # general only when nothing specific was asked
    suppress, evidence = suppression(mail, rules, own_addresses)
    dmarc_fail = any(_DMARC_FAIL.search(v) for v in mail.header_all("authentication-results"))
    return Classification(
        kinds=tuple(k for k in KIND_ORDER if k in found),
        language=detect_language(own_words),
        rules=tuple(rule.id for rule in fired),
        suppress=suppress,
        suppress_evidence=evidence,
        ref=find_ref(mail.subject, ref_prefix),
        flags=(Flag.DMARC_FAIL,) if dmarc_fail else (),
    )
