"""Words and dates as customers read them, in Japanese and English: kind names, dates (2026年12月18日),
the response period ("two weeks", "2週間"), one-line customer text, the form's file name. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.errors import TemplateProblem
from bot.core.model import Kind

LANGUAGES: tuple[str, ...] = ("ja", "en")
DEFAULT_LANGUAGE = "en"

KIND_LABELS: Mapping[str, Mapping[Kind, str]] = {
    "en": {
        Kind.DISCLOSURE: "disclosure of your personal information",
        Kind.AMENDMENT: "amendment (correction) of your personal information",
        Kind.ADDITION: "addition to your personal information",
        Kind.DELETION: "deletion of your personal information",
        Kind.THIRD_PARTY_STOP: "stopping the supply of your personal information to third parties",
        Kind.MARKETING_OPT_OUT: "stopping marketing messages (opt-out)",
        Kind.GENERAL: "a general question",
    },
    "ja": {
        Kind.DISCLOSURE: "保有個人データの開示",
        Kind.AMENDMENT: "保有個人データの内容の訂正",
        Kind.ADDITION: "保有個人データの内容の追加",
        Kind.DELETION: "保有個人データの削除",
        Kind.THIRD_PARTY_STOP: "保有個人データの第三者への提供の停止",
        Kind.MARKETING_OPT_OUT: "ダイレクトメール等による販促のご案内の停止",
        Kind.GENERAL: "一般のお問い合わせ",
    },
}

_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_EN_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def normalise_language(language: str) -> str:
    lang = (language or "").strip().lower()[:2]
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def kind_label(kind: Kind | str, language: str) -> str:
    """The plain-words name of a kind, e.g. disclosure -> "保有個人データの開示" in Japanese."""
    labels = KIND_LABELS[normalise_language(language)]
    return labels[Kind(kind)]


def format_date(value: date | datetime, language: str, timezone: str | None = None) -> str:
    """2026年12月18日 in Japanese, 18 December 2026 otherwise. Aware datetimes are shown in `timezone`."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and timezone:
            value = value.astimezone(_zone(timezone))
        value = value.date()
    if normalise_language(language) == "ja":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {_EN_MONTHS[value.month - 1]} {value.year}"


def response_period(days: int, language: str) -> str:
    """"two weeks" / "2週間" for 14, "10 days" / "10日" otherwise."""
    if normalise_language(language) == "ja":
        return f"{days // 7}週間" if days % 7 == 0 else f"{days}日"
    if days % 7 == 0:
        weeks = days // 7
        word = _EN_NUMBERS.get(weeks, str(weeks))
        return f"{word} week" if weeks == 1 else f"{word} weeks"
    return "one day" if days == 1 else f"{days} days"


def one_line(text: str, limit: int = 0) -> str:
    """Customer text made safe for a single line: control characters and line breaks become spaces."""
    cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    cleaned = " ".join(cleaned.split())
    if limit and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def form_filename(ref: str) -> str:
    """The request form attachment's name, ASCII in every language: "PRV-2026-00042-request-form.pdf"."""
    safe = re.sub(r"[^A-Za-z0-9-]+", "-", ref).strip("-") or "case"
    return f"{safe}-request-form.pdf"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TemplateProblem(f"unknown time zone {name!r}") from None
