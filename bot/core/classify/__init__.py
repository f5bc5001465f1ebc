"""The sorter: what a received mail asks for, how sure it is, and whether it must never be answered.

`classify` is a pure function of an `InboundEmail`, the loaded `Rules` and (optionally) the sorter's
`Model`. The rooms: `text` (normalising, the writer's own words, language, reference), `negation`,
`suppress` (never-answer checks), `rules` (the rule file as values), `features` and `scorer` (the
model trained from labelled mail by `privacy-bot sorter train`), `labelled` (labelled sets and their
figures, for `privacy-bot rules test`).

Kinds are found in the subject (unless it is a reply's "Re: ...") plus the customer's own words
(quoted text, signatures and legal notices removed), normalised by `match_text`:
- the `[[rule]]` patterns of the rule file; a hit that is negated ("I don't want you to delete my
  account", "削除ではなく") does not count as a request;
- with a model, each kind's probability from the text and the rule findings: at or above the kind's
  `sure` threshold the kind is sorted; between `unsure` and `sure` (or when a rule fired that the model
  doubts) the mail is *unsure* and goes to staff with the guesses shown, never with a request form.
Without a model, the rule hits alone decide.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.classify.features import features
from bot.core.classify.negation import negated_at
from bot.core.classify.rules import Rule, Rules
from bot.core.classify.scorer import Model
from bot.core.classify.suppress import MAX_TEXT_CHARS, suppression
from bot.core.classify.text import (
    MAX_SUBJECT_CHARS,
    detect_language,
    find_ref,
    is_reply_subject,
    match_text,
    normalise,
    strip_quoted,
)
from bot.core.model import KIND_ORDER, Classification, Flag, InboundEmail, Kind
from bot.core.trust import Verdict, read_authentication, reply_target

__all__ = ["classify", "detect_language", "find_ref", "guesses_text", "match_text", "normalise", "own_words",
           "rule_hits", "strip_quoted"]

GUESS_FLOOR = 0.05  # guesses below this are not shown to staff


def own_words(subject: str, text: str) -> str:
    """What the sorter reads: the subject (not a reply's "Re: ..." subject, which belongs to the earlier
    mail, unless the new text is empty) and the writer's own words of the body."""
    body = strip_quoted(text[:MAX_TEXT_CHARS])
    subject = subject[:MAX_SUBJECT_CHARS]
    if is_reply_subject(subject) and body.strip():
        subject = ""
    return subject + "\n" + body if subject else body


def rule_hits(haystack: str, rules: Rules) -> tuple[list[Rule], list[Rule]]:
    """The kind rules that fired on `match_text` output, and those whose every hit was negated."""
    fired, negated = [], []
    for rule in rules.kind_rules:
        hit = seen = False
        for pattern in rule.patterns:
            for match in pattern.finditer(haystack):
                seen = True
                if not negated_at(haystack, match.start(), match.end()):
                    hit = True
                    break
            if hit:
                break
        if hit:
            fired.append(rule)
        elif seen:
            negated.append(rule)
    return fired, negated


def classify(
    mail: InboundEmail, rules: Rules, *, own_addresses: frozenset[str], ref_prefix: str = "PRV",
    model: Model | None = None, trusted_authserv_ids: Iterable[str] = (),
) -> Classification:
    """What `mail` asks for (kinds, how sure, language, reference), whether it must never be answered,
    and where an answer would go (`From`; `Reply-To` only for a sender that a trusted server
    authenticated).

    Fails closed: an exception while sorting gives a Classification with `error` set (and the
    classifier_error flag), which is never answered."""
    try:
        return _classify(mail, rules, own_addresses, ref_prefix, model, tuple(trusted_authserv_ids))
    except Exception as exc:  # a bug or an input nobody foresaw (RecursionError...): send nothing
        return Classification(kinds=(), language="en", flags=(Flag.CLASSIFIER_ERROR,),
                              error=f"the sorter failed: {type(exc).__name__}")


def _classify(mail: InboundEmail, rules: Rules, own_addresses: frozenset[str], ref_prefix: str,
              model: Model | None, trusted_authserv_ids: tuple[str, ...]) -> Classification:
    verdict = read_authentication(mail.headers, trusted_authserv_ids, mail.from_addr)
    recipient = reply_target(mail.from_addr, mail.reply_to, verdict)
    words = own_words(mail.subject, mail.text)
    haystack = match_text(words)
    fired, negated = rule_hits(haystack, rules)
    found = {rule.kind for rule in fired}
    refused = {rule.kind for rule in negated} - found
    sure: set[Kind] = found - {Kind.GENERAL}
    unsure: set[Kind] = set()
    scores: tuple[tuple[Kind, float], ...] = ()
    if model is not None:
        probs = model.scores(features(haystack, [k.value for k in found], [k.value for k in refused]))
        sure, unsure = set(), set()
        for kind, p in probs.items():
            if kind is Kind.GENERAL:
                continue
            low, high = model.threshold(kind)
            if p >= high or (kind in found and p >= low):  # a rule hit that the model does not doubt
                sure.add(kind)
            elif p >= low:  # between the thresholds: staff decide
                unsure.add(kind)
        scores = tuple(sorted(((k, round(p, 2)) for k, p in probs.items()), key=lambda kp: (-kp[1], kp[0].value)))
    kinds = sure or ({Kind.GENERAL} & found if not unsure else set())
    suppress, evidence = suppression(mail, rules, own_addresses, recipient)
    return Classification(
        kinds=tuple(k for k in KIND_ORDER if k in kinds),
        language=detect_language(words),
        rules=tuple(rule.id for rule in fired),
        suppress=suppress,
        suppress_evidence=evidence,
        ref=find_ref(mail.subject, ref_prefix),
        flags=(Flag.DMARC_FAIL,) if verdict is Verdict.FAIL else (),
        unsure=tuple(k for k in KIND_ORDER if k in unsure),
        scores=scores,
        recipient=recipient,
        authenticated=verdict is Verdict.PASS,
    )


def guesses_text(scores: tuple[tuple[Kind, float], ...]) -> str:
    """The sorter's best guesses for staff: "deletion 0.62, disclosure 0.41"."""
    shown = [f"{kind.value} {p:.2f}" for kind, p in scores if p >= GUESS_FLOOR and kind is not Kind.GENERAL]
    return ", ".join(shown[:4]) or "no kind above " + f"{GUESS_FLOOR:.2f}"
