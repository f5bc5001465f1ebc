"""The request form PDF: valid, deterministic, fast, and carrying the reference and the right words.

Text extraction and rendering use poppler (pdftotext, pdftoppm); the tests that need them skip when
they are absent. Japanese text extraction also needs poppler-data (the Adobe-Japan1 language pack),
since the form uses the non-embedded CID font HeiseiKakuGo-W5.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import pytest

from bot.compose.form_pdf import request_form_pdf
from bot.core.model import Kind

REF = "PRV-2026-00042"
JA_ADDRESS = "〒100-0005\n東京都千代田区丸の内1-2-3 サンプルビル5階\nサンプル株式会社 個人情報お問い合わせ窓口"
EN_ADDRESS = "Privacy Office, Sample Co., Ltd.\n1-2-3 Marunouchi\nChiyoda-ku, Tokyo 100-0005, Japan"


def form(language: str = "ja", **changes: object) -> bytes:
    args: dict[str, object] = {
        "ref": REF,
        "requester": "hanako.yamada@example.jp" if language == "ja" else "ruth.adams@example.com",
        "language": language,
        "kinds": (Kind.DISCLOSURE, Kind.DELETION),
        "opened_on": date(2026, 12, 18),
        "postal_address": JA_ADDRESS if language == "ja" else EN_ADDRESS,
        "company_name": "サンプル株式会社" if language == "ja" else "Sample Co., Ltd.",
    }
    args.update(changes)
    return request_form_pdf(**args)  # type: ignore[arg-type]


def pdftotext(pdf: bytes, tmp_path: Path, *, page: int | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "form.pdf"
    path.write_bytes(pdf)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60)


def japanese_text(pdf: bytes, tmp_path: Path) -> str:
    result = pdftotext(pdf, tmp_path)
    if "Missing language pack" in result.stderr:
        pytest.skip("poppler-data (Adobe-Japan1 language pack) is not installed: Japanese text cannot be extracted")
    return result.stdout


@pytest.mark.parametrize("language", ["ja", "en"])
def test_is_a_pdf(language: str) -> None:
    pdf = form(language)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf  # A4


def test_same_inputs_same_bytes_and_kinds_matter() -> None:
    assert form("ja") == form("ja")
    assert form("ja", kinds=(Kind.DELETION, Kind.DISCLOSURE)) == form("ja")  # order does not matter
    assert form("ja", kinds=(Kind.DISCLOSURE,)) != form("ja")
    assert form("ja", ref="PRV-2026-00043") != form("ja")


def test_fonts_japanese_cid_font_only_where_needed() -> None:
    assert b"/HeiseiKakuGo-W5" in form("ja")
    assert b"/HeiseiKakuGo-W5" not in form("en")  # nothing Japanese on it
    assert b"/HeiseiKakuGo-W5" in form("en", postal_address=JA_ADDRESS)
    assert b"/Helvetica-Bold" in form("en")


def test_fast_enough() -> None:
    form("ja")  # font registration happens once
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        form("ja")
        best = min(best, time.perf_counter() - start)
    assert best < 0.05


def test_ja_form_text_carries_the_ref(tmp_path: Path) -> None:
    text = pdftotext(form("ja"), tmp_path).stdout
    assert REF in text
    assert "hanako.yamada@example.jp" in text


def test_ja_form_japanese_text(tmp_path: Path) -> None:
    text = japanese_text(form("ja"), tmp_path)
    for words in ("保有個人データ開示等請求書", "受付番号", "開示", "訂正", "追加", "削除", "第三者への提供の停止",
                  "フリガナ", "署名・押印", "電話番号", "運転免許証の写し", "住民票の写し", "ご請求の詳細",
                  "東京都千代田区丸の内1-2-3", "ご負担", "2週間程度", "2026年12月18日", "御中"):
        assert words in text, words


def test_en_form_text(tmp_path: Path) -> None:
    text = pdftotext(form("en"), tmp_path).stdout
    assert REF in text
    assert "ruth.adams@example.com" in text
    assert "Request form: disclosure, amendment, addition, deletion, suspension of" in text
    for words in ("Disclosure", "Amendment", "Addition", "Deletion", "Stop supply to third parties",
                  "Full name", "Signature", "Postal address", "Telephone", "Details of the request",
                  "driver's licence", "residence certificate", "borne by the requester",
                  "1-2-3 Marunouchi", "18 December 2026", "about two weeks"):
        assert words in text, words


def test_en_form_with_japanese_postal_address(tmp_path: Path) -> None:
    text = japanese_text(form("en", postal_address=JA_ADDRESS), tmp_path)
    assert "東京都千代田区丸の内1-2-3" in text
    assert "Send this form and the enclosures by post to" in text


def test_ref_in_the_footer_of_every_page(tmp_path: Path) -> None:
    long_address = "\n".join(f"Address line {i}" for i in range(1, 31))
    pdf = form("en", postal_address=long_address)
    assert len(re.findall(rb"/Type /Page\b(?!s)", pdf)) == 2
    for page in (1, 2):
        text = pdftotext(pdf, tmp_path, page=page).stdout
        assert re.search(rf"Case reference +{REF}", text), page
    assert "Address line 30" in pdftotext(pdf, tmp_path, page=2).stdout


@pytest.mark.parametrize("language", ["ja", "en"])
def test_renders_with_pdftoppm(language: str, tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    (tmp_path / "form.pdf").write_bytes(form(language))
    result = subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(tmp_path / "form.pdf"),
                             str(tmp_path / "page")], check=False, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 1
    png = pages[0].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert abs(width - 413) <= 1 and abs(height - 585) <= 1  # A4 at 50 dpi


def test_hostile_values_stay_on_one_line(tmp_path: Path) -> None:
    text = pdftotext(form("en", requester="eve@example.com\r\nX", ref="PRV-2026-00042\n"), tmp_path).stdout
    assert "eve@example.com X" in text
    assert REF in text
