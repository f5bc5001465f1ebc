"""parse_message on the real-world corpus (shared/corpus/real): nothing raises, nothing hangs, and the
Japanese mail decodes to the words it contains (read off the files by hand).

Point BOT_CORPUS_DIR at another copy of the corpus to run it elsewhere.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

import pytest

from bot.core.model import InboundEmail
from bot.core.parse import parse_message
from bot.core.parse.limits import MAX_TEXT

CORPUS = Path(
    os.environ.get("BOT_CORPUS_DIR")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "real"
)
MANIFEST = CORPUS / "MANIFEST.tsv"
MISSING = f"corpus not found at {CORPUS} (it lives in ../shared/corpus/real)"

# The only file with nothing of an e-mail in it: a digest body without a single header line.
UNREADABLE = {"malformed__cpython__msg_19.eml": "no e-mail headers found: not an e-mail message"}


def _names() -> list[str]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8", newline="") as fh:
        return [row["file"] for row in csv.DictReader(fh, delimiter="\t")]


NAMES = _names()


def _params(names: list[str]) -> list[Any]:
    if not NAMES:
        return [pytest.param("", marks=pytest.mark.skip(reason=MISSING), id="corpus-missing")]
    return [pytest.param(name, id=name) for name in names]


def _parse(name: str) -> tuple[bytes, InboundEmail]:
    raw = (CORPUS / name).read_bytes()
    return raw, parse_message(raw)


# Generous: a hang guard, not a benchmark (each file takes milliseconds).
@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", _params(NAMES))
def test_every_file_parses(name: str) -> None:
    raw, mail = _parse(name)
    assert isinstance(mail, InboundEmail)
    assert mail.parse_error == UNREADABLE.get(name, "")
    assert mail.size == len(raw)
    assert re.fullmatch(r"<[^<>\s]+>", mail.message_id)
    assert len(mail.text) <= MAX_TEXT
    assert len(mail.subject) <= 2000
    for key, value in mail.headers:
        assert key == key.lower()
        assert "\r" not in value and "\n" not in value
    if not mail.parse_error:
        assert mail.headers
        assert mail.content_type


def test_manifest_lists_the_whole_corpus() -> None:
    if not NAMES:
        pytest.skip(MISSING)
    assert len(NAMES) == 196
    assert all((CORPUS / name).is_file() for name in NAMES)


# (file, subject, fragments of the text, attachment names), decoded by hand from the raw bytes.
JAPANESE = [
    (
        "japanese__mikelmail__multi_charset-japanese.eml",  # UTF-8, base64 body
        "まみむめも",
        ("かきくえこ",),
        (),
    ),
    (
        "japanese__mikelmail__multi_charset-japanese_iso_2022.eml",  # ISO-2022-JP 7bit body
        "まみむめも",
        ("すみません。",),
        (),
    ),
    (
        "japanese__mikelmail__multi_charset-japanese_shift_jis.eml",  # docomo, Shift_JIS 8bit body
        "test",
        ("あいうえお", "このメールはテスト用のメールです。", "今後ともよろしくお願い申し上げます！"),
        (),
    ),
    (
        "japanese__mikelmail__rfc2822-example14.eml",  # ISO-2022-JP encoded words, folded
        "Re: TEST テストテスト",
        ("Hello",),
        (),
    ),
    (
        "japanese__mimekit__messages-japanese.eml",  # ISO-2022-JP subject split over two words, and body
        "日本語メールテスト (testing Japanese emails)",
        ("日本語が\n正常に\n送れているか\nテスト.",),
        (),
    ),
    (
        "japanese__mikelmail__multi_charset-japanese_attachment.eml",
        "testing",
        ("testing",),
        ("てすと.txt",),
    ),
    (
        "japanese__mikelmail__multi_charset-japanese_attachment_long_name.eml",  # RFC 2231 continuations
        "まみむめも" * 10,
        (),
        ("かきくけこ" * 5 + ".txt",),
    ),
    (
        "japanese__sisimai__bsd-lhost-kddi-01.eml",  # raw UTF-8 subject; body labelled ISO-2022-JP, is UTF-8
        "メールエラー通知",
        ("送信先のメールボックスが一杯のため、送信できませんでした。", "au one net"),
        ("forwarded message",),
    ),
    (
        "japanese__sisimai__bsd-lhost-mfilter-01.eml",
        "failure notice",
        (
            "このメールは「m-FILTER」が自動的に生成して送信しています。",
            "以下のメールアドレスへの送信に失敗しました。",
        ),
        (),
    ),
    (
        "japanese__sisimai__bsd-lhost-exchange2007-04.eml",
        "Undeliverable: キジトラ・フラッシュ/ニャーン",
        ("Delivery has failed to these recipients or groups:",),
        ("", "forwarded message"),
    ),
    (
        "japanese__sisimai__bsd-lhost-office365-04.eml",
        "Undeliverable: ニャーン",
        ("msmx.au.com rejected your message",),
        ("", "forwarded message"),
    ),
    (
        "japanese__sisimai__bsd-lhost-trendmicro-01.eml",
        "メッセージを配信できません。",
        ("550 5.1.1 <kijitora@example.co.jp>... user unknown",),
        ("forwarded message",),
    ),
    (
        "japanese__sisimai__not-is-not-bounce-01.eml",  # UTF-8 8bit body
        "にゃんこ",
        ("にゃーーーーーーーーーーー",),
        (),
    ),
]


def _japanese_params() -> list[Any]:
    if not NAMES:
        return [pytest.param("", "", (), (), marks=pytest.mark.skip(reason=MISSING), id="corpus-missing")]
    return [pytest.param(*case, id=case[0]) for case in JAPANESE]


@pytest.mark.parametrize(("name", "subject", "fragments", "attachments"), _japanese_params())
def test_japanese_mail_decodes(
    name: str, subject: str, fragments: tuple[str, ...], attachments: tuple[str, ...]
) -> None:
    _raw, mail = _parse(name)
    assert mail.subject == subject
    for fragment in fragments:
        assert fragment in mail.text
    assert tuple(a.filename for a in mail.attachments) == attachments


@pytest.mark.parametrize("name", _params([n for n in NAMES if n.startswith("japanese__")]))
def test_japanese_mail_has_no_replacement_characters(name: str) -> None:
    _raw, mail = _parse(name)
    decoded = [mail.subject, mail.text, mail.from_name, *(a.filename for a in mail.attachments)]
    decoded += [value for _key, value in mail.headers]
    assert not [text for text in decoded if "\ufffd" in text]


def test_euc_jp_encoded_word_in_cc() -> None:
    if not NAMES:
        pytest.skip(MISSING)
    _raw, mail = _parse("list_bulk__lkml__ZnDhk4YvczQV0JhW.eml")
    # =?euc-jp?B?TWljaGGPqcg=?= : "ł" is JIS X 0212, reached through EUC-JP's SS3 byte.
    assert mail.header("cc").startswith("Michał Szczepaniak <m.szczepaniak.000@gmail.com>")
