"""The sorter on real-world mail (shared/corpus/real): raw bytes -> parse_message -> classify.

Every file must go through without an exception; machine mail (bounces, auto-replies,
bulk) must be suppressed; mail a person wrote must not be, except the few listed in
NO_USABLE_SENDER whose sender address cannot be answered at all.
Point BOT_CORPUS_DIR at another copy of the corpus to run it elsewhere.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest

from bot.core.classify import classify
from bot.core.model import Classification, Suppress
from bot.core.parse import INTERNAL_ERROR, parse_message
from bot.settings import default_rules_path, load_rules

CORPUS = Path(os.environ.get("BOT_CORPUS_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "real")
MANIFEST = CORPUS / "MANIFEST.tsv"
OWN = frozenset({"privacy@example.com"})
RULES = load_rules(default_rules_path())

# reply_ok mails that are nevertheless (rightly) suppressed as INVALID_ADDRESS: there is
# nobody to answer. Keep this set as small as possible; each entry says why.
NO_USABLE_SENDER: dict[str, str] = {
    # No From (and no Reply-To) header at all: a test message sent with curl.
    "attachment__flanker__attached-pdf.eml": "no From header",
    # RFC 2822 appendix A example: the address is pete@silly.test, and .test is a reserved
    # top-level domain (RFC 2606) that email-validator rightly rejects; mail there cannot arrive.
    "normal__mikelmail__rfc2822-example10.eml": "reserved .test domain",
}


def _rows() -> list[Any]:
    if not MANIFEST.is_file():
        reason = f"real-mail corpus not found at {CORPUS} (set BOT_CORPUS_DIR to its directory)"
        return [pytest.param("", "", marks=pytest.mark.skip(reason=reason), id="corpus-missing")]
    with MANIFEST.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [pytest.param(r["file"], r["expected_bot_behaviour"], id=r["file"]) for r in rows]


ROWS = _rows()


def _sort(name: str) -> Classification:
    raw = (CORPUS / name).read_bytes()
    mail = parse_message(raw)
    assert not mail.parse_error.startswith(INTERNAL_ERROR), f"{name}: the parser failed: {mail.parse_error}"
    return classify(mail, RULES, own_addresses=OWN)  # raises on a bug: the intake would quarantine the mail


@pytest.mark.parametrize(("name", "expected"), ROWS)
def test_corpus_mail(name: str, expected: str) -> None:
    result = _sort(name)
    assert isinstance(result, Classification)
    assert result.language in ("ja", "en")
    if expected.startswith("no_reply"):
        assert result.suppress is not None, f"{name} ({expected}) would be answered; kinds={result.kinds}"
        assert result.suppress_evidence
    elif expected == "reply_ok" and name in NO_USABLE_SENDER:
        assert result.suppress is Suppress.INVALID_ADDRESS, (name, result.suppress, result.suppress_evidence)
    elif expected == "reply_ok":
        assert result.suppress is None, f"{name}: {result.suppress} ({result.suppress_evidence})"
    else:  # parsed without a parser failure (checked in _sort) and sorted without an exception
        assert expected == "must_not_crash"


def test_exceptions_are_in_the_manifest() -> None:
    if not MANIFEST.is_file():
        pytest.skip(f"real-mail corpus not found at {CORPUS}")
    reply_ok = {p.values[0] for p in ROWS if p.values[1] == "reply_ok"}
    assert set(NO_USABLE_SENDER) <= reply_ok
