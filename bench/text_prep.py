"""Text preparation on pathological input, in linear time (issue 10, finding 8): `python -m bench.text_prep`.

For each shape, input of n and 2n characters (n up to 1 MB) goes through each step of text preparation:
signature and quote stripping (`strip_quoted`), the rules' normalised text (`match_text`), HTML to text
(`html_to_text`) and the whole of `parse_message` on a mail carrying the text. It prints the seconds of
each and the ratio t(2n)/t(n): about 2 for linear code, about 4 for quadratic.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from bot.core.classify import match_text, strip_quoted
from bot.core.parse import parse_message
from bot.core.parse.html import html_to_text

MB = 1024 * 1024


def shapes(n: int) -> dict[str, str]:
    """Pathological text of about n characters, by name."""
    return {
        "dash lines": "-----\n" * (n // 6),
        "dash lines + contact": ("-----\ntel 03-1234-5678\n" * (n // 23)),
        "quote lines": "> quoted words\n" * (n // 15),
        "one long line": "x" * n,
        "long line of dashes": "-" * n,
        "blank lines": "\n" * n,
        "'on ' lines": "on monday we\n" * (n // 13),
        "From: lines": "From: a\n" * (n // 8),
        "legal paragraphs": "if you received this in error\n\n" * (n // 31),
        "html nesting": "<div>" * (n // 5),
        "html unclosed": "<a " * (n // 3),
    }


def seconds(fn: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    fn(text)
    return time.perf_counter() - started


def as_mail(text: str) -> bytes:
    return b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text.encode()


STEPS: dict[str, Callable[[str], object]] = {
    "strip_quoted": strip_quoted,
    "match_text": match_text,
    "html_to_text": html_to_text,
    "parse_message": lambda text: parse_message(as_mail(text)),
}


def main(n: int = MB // 2) -> None:
    print(f"{'shape':24} {'step':14} {'n':>9} {'t(n) s':>8} {'t(2n) s':>8} {'ratio':>6}")
    small, big = shapes(n), shapes(2 * n)
    for name in small:
        for step, fn in STEPS.items():
            a, b = seconds(fn, small[name]), seconds(fn, big[name])
            ratio = b / a if a > 1e-4 else float("nan")
            print(f"{name:24} {step:14} {len(small[name]):9} {a:8.3f} {b:8.3f} {ratio:6.1f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else MB // 2)
