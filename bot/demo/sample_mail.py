"""The demo's sample mail: a dozen realistic messages to privacy@demo.test, kept as data files
(bot/demo/samples/*.eml, as they sit in a mailbox after delivery) with what the bot should make of
each (bot/demo/samples/index.toml): English in ASCII, Japanese in ISO-2022-JP, Shift_JIS and UTF-8,
an HTML-only message, an out-of-office auto-reply, a delivery-status bounce and a list post."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from bot.core.model import Kind, Suppress

PRIVACY_ADDRESS = "privacy@demo.test"  # the To: of the samples


@dataclass(frozen=True)
class DemoSample:
    key: str  # short stable name, also the start of its Message-ID
    description: str  # one line for people watching the demo
    language: str
    charset: str
    form: str  # text | html | bounce
    kinds: tuple[Kind, ...]  # expected classification, in KIND_ORDER
    suppress: Suppress | None  # expected reason to send no automatic reply
    raw: bytes  # CRLF line endings


@cache
def samples() -> tuple[DemoSample, ...]:
    folder = files("bot.demo") / "samples"
    index = tomllib.loads((folder / "index.toml").read_text(encoding="utf-8"))
    return tuple(
        DemoSample(key=s["key"], description=s["description"], language=s["language"], charset=s["charset"],
                   form=s["form"], kinds=tuple(Kind(k) for k in s["kinds"]),
                   suppress=Suppress(s["suppress"]) if "suppress" in s else None,
                   raw=(folder / s["file"]).read_bytes())
        for s in index["sample"]
    )
