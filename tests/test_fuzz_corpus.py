"""A mutation fuzzer seeded from the real-world corpus: every mutant is processed or quarantined with a reason.

CI runs 3,000 mutants; BOT_FUZZ_COUNT=10000 (or more) for the long run. Seeded, so failures reproduce.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from bot.core.classify import classify
from bot.core.decide import Action, Known, decide
from bot.core.parse import INTERNAL_ERROR, parse_message
from bot.settings import load_rules
from tests.botrun import ROOT

MUTATIONS = (
    "flip", "truncate", "duplicate", "nul", "lying_charset", "break_base64", "break_boundary", "long_header",
    "crlf_subject", "nest",
)


def mutate(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(MUTATIONS)
    data = bytearray(raw)
    if kind == "flip" and data:
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "truncate":
        data = data[: rng.randrange(len(data) + 1)]
    elif kind == "duplicate" and data:
        a = rng.randrange(len(data))
        data[a:a] = data[a : a + rng.randint(1, 5000)]
    elif kind == "nul":
        data = data.replace(b"\n", b"\n\x00", rng.randint(1, 50))
    elif kind == "lying_charset":
        data = bytes(data).replace(b"charset=", b"charset=" + rng.choice([b"x-bogus;", b"utf-7;", b"shift_jis;",
                                                                         b"iso-2022-jp;", b"big5;"]), 3)
        data = bytearray(data)
    elif kind == "break_base64":
        data = bytearray(bytes(data).replace(b"base64", b"base64\r\n\r\n!!!===", 2))
    elif kind == "break_boundary":
        data = bytearray(bytes(data).replace(b"boundary=", b"boundary=\"", 1))
    elif kind == "long_header":
        data[0:0] = b"X-Long: " + b"a" * rng.randint(1000, 200_000) + b"\r\n"
    elif kind == "crlf_subject":
        data[0:0] = b"Subject: =?utf-8?q?x=0D=0ABcc:_evil@example.com?=\r\n"
    elif kind == "nest":
        depth = rng.randint(1, 60)
        wrapped = bytes(data)
        for _ in range(depth):
            wrapped = b"Content-Type: message/rfc822\r\n\r\n" + wrapped
        data = bytearray(b"From: a@example.com\r\n" + wrapped)
    return bytes(data)


def test_mutated_corpus_never_crashes(corpus_dir: Path) -> None:
    rules = load_rules(ROOT / "config" / "rules.toml")
    seeds = [p.read_bytes() for p in sorted(corpus_dir.glob("*.eml"))]
    rng = random.Random(20261125)
    count = int(os.environ.get("BOT_FUZZ_COUNT", "3000"))
    actions: dict[str, int] = {}
    for i in range(count):
        raw = mutate(rng.choice(seeds), rng)
        mail = parse_message(raw)
        assert not mail.parse_error.startswith(INTERNAL_ERROR), (i, mail.parse_error)  # the parser itself failed
        sorted_ = classify(mail, rules, own_addresses=frozenset({"privacy@example.com"}))  # raises on a bug
        decision = decide(mail, sorted_, Known(), reply_cap=3)
        actions[decision.action.value] = actions.get(decision.action.value, 0) + 1
        if decision.action is Action.QUARANTINED:
            assert decision.reason, i
        assert "\n" not in mail.subject and "\r" not in mail.subject, i
    print(f"fuzz: {count} mutants -> {actions}")
    # Mutants stay mail: most are still understood (a parser that gives up easily would quarantine them).
    assert actions.get(Action.QUARANTINED.value, 0) < count * 0.2, actions
