"""Issue 10, finding 8: text preparation in linear time.

Signature stripping was quadratic: for every separator line from the end it gathered all the lines
below it again, so 20 KB of "-----" lines took about 2 s (1 MB: about an hour).

How linearity is tested without timing (the figures are in bench/text_prep.py):
- structurally: the list-taking steps (`_drop_signature_block`, `_drop_legal_notices`, `_cuts_here`)
  get a list that counts every element read from it (by index, slice or iteration). Linear code reads
  each line a bounded number of times: the count for n lines is at most a few times n, and for 2n lines
  about twice that for n. The old signature code read n²/2 elements for n dash lines (for 4,000 lines:
  8 million, against at most 12,000 allowed here).
- by result: 1 MB of each pathological shape goes through strip_quoted, match_text, html_to_text and
  parse_message + classify, and the result is checked against what the shape must give. These run
  under the suite's per-test timeout only (no wall-clock assertion); quadratic code would take hours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, SupportsIndex, overload

import pytest

from bot.core.classify import classify, match_text, strip_quoted
from bot.core.classify.text import _cuts_here, _drop_legal_notices, _drop_signature_block
from bot.core.parse import parse_message
from bot.core.parse.html import html_to_text
from bot.settings import load_rules
from tests.botrun import ROOT

MB = 1024 * 1024


class CountingList(list[str]):
    """A list that counts how many of its elements were read."""

    reads = 0

    @overload
    def __getitem__(self, i: SupportsIndex) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: SupportsIndex | slice) -> Any:
        got = super().__getitem__(i)
        self.reads += len(got) if isinstance(i, slice) else 1
        return got

    def __iter__(self) -> Iterator[str]:
        for item in super().__iter__():
            self.reads += 1
            yield item


LINE_SHAPES: dict[str, Callable[[int], list[str]]] = {
    "dash lines": lambda n: ["-----"] * n,
    "dash lines then contact": lambda n: ["-----"] * n + ["tel 03-1234-5678"],
    "separator and contact pairs": lambda n: ["-----", "tel 03-1234-5678"] * (n // 2),
    "blank lines": lambda n: [""] * n,
    "legal paragraphs": lambda n: ["Please delete my data."] + ["", "if you received this in error"] * (n // 2),
    "From: lines": lambda n: ["From: a"] * n,
    "on lines": lambda n: ["on monday we"] * n,
}


def reads(step: Callable[[list[str]], object], lines: list[str]) -> int:
    counted = CountingList(lines)
    step(counted)
    return counted.reads


def every_cut(lines: list[str]) -> None:
    for i, line in enumerate(lines):
        _cuts_here(lines, i, line)


@pytest.mark.parametrize("shape", LINE_SHAPES)
@pytest.mark.parametrize("step", [_drop_signature_block, _drop_legal_notices, every_cut],
                         ids=["signature", "legal", "cuts"])
def test_each_line_is_read_a_bounded_number_of_times(step: Callable[[list[str]], object], shape: str) -> None:
    small, big = LINE_SHAPES[shape](4000), LINE_SHAPES[shape](8000)
    a, b = reads(step, small), reads(step, big)
    assert a <= 8 * len(small) + 10, f"{a} reads for {len(small)} lines"
    assert b <= 2 * a + 20, f"{b} reads for {len(big)} lines against {a} for {len(small)}"


@pytest.mark.parametrize("n", [2000, 4000])
def test_signature_block_results_for_n_and_2n(n: int) -> None:
    assert _drop_signature_block(["-----"] * n) == ["-----"] * n  # separators only: nothing to cut
    pairs = ["words.", "-----", "tel 03-1234-5678"] * n
    assert _drop_signature_block(pairs) == pairs[:-2]  # the last separator and its contact line
    long_block = ["-----"] + [f"line {i} tel" for i in range(13)]  # over 12 lines: not a signature
    assert _drop_signature_block(["hello"] * n + long_block) == ["hello"] * n + long_block


def _text_shapes() -> dict[str, tuple[str, str]]:
    """1 MB of each shape, and what strip_quoted must give for it."""
    n = MB
    dash = "-----\n" * (n // 6)
    contact = "-----\ntel 03-1234-5678\n" * (n // 23)
    return {
        "dash lines": (dash, dash.rstrip("\n")),
        "separator and contact pairs": (contact, contact[: -len("-----\ntel 03-1234-5678\n")].rstrip("\n")),
        "quote lines": ("> quoted words\n" * (n // 15), ""),
        "one long line": ("x" * n, "x" * n),
        "long line of dashes": ("-" * n, "-" * n),
        "blank lines": ("\n" * n, ""),
        "on lines": ("on monday we\n" * (n // 13), ("on monday we\n" * (n // 13)).rstrip("\n")),
        "From: lines": ("From: a\n" * (n // 8), ("From: a\n" * (n // 8)).rstrip("\n")),
        "html nesting": ("<div>" * (n // 5), "<div>" * (n // 5)),
    }


TEXT_SHAPES = _text_shapes()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("shape", TEXT_SHAPES)
def test_a_megabyte_of_each_shape_is_prepared(shape: str) -> None:
    text, stripped = TEXT_SHAPES[shape]
    assert strip_quoted(text) == stripped
    assert match_text(text) == " ".join(text.split()).casefold()
    html_to_text(text)
    html_to_text("<div>" * (len(text) // 5) + text[:1000])
    mail = parse_message(b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                         + text.encode())
    assert mail.parse_error == ""
    classify(mail, load_rules(ROOT / "config" / "rules.toml"), own_addresses=frozenset({"privacy@bot.test"}))
