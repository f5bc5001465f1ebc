"""Negation: "I don't want you to delete my account", "住所は変更しないでください".

Both work on `match_text` output (NFKC, lower case, single spaces). English negates forwards: a cue
("not", "don't", "never", ...) negates what follows it up to the end of the clause (a full stop, a
comma, "but", "just", "and", "please" ...). Japanese negates backwards: "削除しないで", "変更は不要",
"削除ではなく" follow what they negate, so a clause (up to 。、!?) holding such an ending is negated.

A phrase that carries its own negation ("don't send me newsletters", "送らないでください") is a request,
not a negated one: only a cue *before* an English match, or an ending *after* a Japanese match, counts.
"""

from __future__ import annotations

import re

EN_CUE = re.compile(
    r"\b(?:not|never|no longer|dont|cannot|without|nor|rather than|instead of|no need to)\b|\b\w+n't\b|\bnothing\b"
)
EN_BOUNDARY = re.compile(
    r"[.!?;:()\n]|,|\b(?:but|just|only|and|also|however|instead|though|although|please|so|then|except)\b"
)
_EN_WINDOW = 80  # characters before a match that a cue may stand in

# What follows a Japanese phrase and negates it (or says it is not wanted).
JA_NEGATED_AFTER = re.compile(
    r"^[^。、!?]{0,4}?(?:"
    r"しないで|しなくて|せずに|しません|しない(?:よう|方向|こと|でほしい)|しないでほしい|はしない|はせず|されたくない|したくない"
    r"|ではなく|じゃなく|ではありません|じゃありません|ではない|ではございません|でなく"
    r"|は(?:不要|いりません|要りません|結構|必要ありません|希望しません|求めていません|望んでいません|致しません|いたしません)"
    r"|を(?:希望しません|求めていません|望んでいません)|する必要はありません|しなくてよい|しなくていい|は求めません"
    r")"
)
_JA_WINDOW = 24
# A Japanese clause holding one of these endings is negated (for the model's features).
JA_NEGATION = re.compile(
    r"(?:しないで|しなくて|せずに|しません(?!か)|されたくない|したくない|ではなく|じゃなく|ではありません|じゃありません"
    r"|でなく|不要|いりません|要りません|結構です|必要ありません|希望しません|求めていません|望んでいません)"
)
_JA_CHAR = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def negated_at(text: str, start: int, end: int) -> bool:
    """Whether the phrase text[start:end] is negated by what stands before it (English) or after it
    (Japanese) in the same clause."""
    phrase = text[start:end]
    if _JA_CHAR.search(phrase):
        return JA_NEGATED_AFTER.match(text[end : end + _JA_WINDOW]) is not None
    before = text[max(0, start - _EN_WINDOW) : start]
    cut = 0
    for boundary in EN_BOUNDARY.finditer(before):
        cut = boundary.end()
    return EN_CUE.search(before[cut:]) is not None
