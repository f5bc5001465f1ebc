"""What the sorter's model reads in a mail: the same function at training and at run time.

From `match_text` output (NFKC, lower case, one space): English words, word pairs and the
character 3- to 5-grams inside words (typos), Japanese character 2- and 3-grams (no word
segmentation needed), each marked `~` when it stands in a negated clause (see `negation`); and
which kinds the rule file found (`R:kind`, or `R~:kind` when every hit was negated). Text
features are binary and scaled to unit length; rule features are 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from bot.core.classify.negation import EN_BOUNDARY, EN_CUE, JA_NEGATION

FEATURES_VERSION = "features-1"
MAX_FEATURE_CHARS = 4_000  # the request is near the top; bounds the work

_JA = "\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3001\u3002"
_TOKEN = re.compile(rf"[a-z0-9']+|[{_JA}]+|[.!?;:,()\n]")
_JA_CLAUSE = re.compile(r"[^。、]+")
_DIGITS = re.compile(r"[0-9]")
_EN_CUE_WORD = re.compile(rf"^(?:{EN_CUE.pattern})$")
_EN_BOUNDARY_WORD = re.compile(rf"^(?:{EN_BOUNDARY.pattern})$")


def rule_features(found: Iterable[str], negated: Iterable[str]) -> dict[str, float]:
    out = {f"R:{kind}": 1.0 for kind in found}
    out.update({f"R~:{kind}": 1.0 for kind in negated if f"R:{kind}" not in out})
    return out


def text_features(text: str) -> dict[str, float]:
    """Binary n-gram features of normalised text, scaled to unit length."""
    grams: set[str] = set()
    neg = False
    previous = ""
    for match in _TOKEN.finditer(text[:MAX_FEATURE_CHARS]):
        token = match.group()
        first = token[0]
        if first in ".!?;:,()\n":
            neg, previous = False, ""
            continue
        if "a" <= first <= "z" or "0" <= first <= "9" or first == "'":
            word = _DIGITS.sub("0", token.strip("'"))
            if not word:
                continue
            if _EN_BOUNDARY_WORD.match(word):
                neg = False
            mark = "~" if neg else ""
            grams.add(f"{mark}w:{word}")
            if previous:
                grams.add(f"{mark}b:{previous}_{word}")
            if len(word) >= 4:
                padded = f"<{word}>"
                for n in (3, 4, 5):
                    for i in range(len(padded) - n + 1):
                        grams.add("c:" + padded[i : i + n])
            previous = word
            if _EN_CUE_WORD.match(word):
                neg = True
            continue
        previous = ""
        for clause in _JA_CLAUSE.findall(token):
            mark = "~" if JA_NEGATION.search(clause) else ""
            clause = clause.replace("。", "")
            for n in (2, 3):
                for i in range(len(clause) - n + 1):
                    grams.add(f"{mark}j:{clause[i : i + n]}")
            if len(clause) == 1:
                grams.add(f"{mark}j:{clause}")
    if not grams:
        return {}
    scale = 1.0 / math.sqrt(len(grams))
    return dict.fromkeys(grams, scale)


def features(text: str, found: Iterable[str] = (), negated: Iterable[str] = ()) -> dict[str, float]:
    """Everything the model reads: text features plus the rule file's findings."""
    out = text_features(text)
    out.update(rule_features(found, negated))
    return out
