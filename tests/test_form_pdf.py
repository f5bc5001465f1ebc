"""The request form PDF: valid, deterministic, fast, and carrying the reference and the right words.

Text extraction, font listing and rendering use poppler (pdftotext, pdffonts, pdftoppm); the tests
that need them skip when they are absent. Every font is embedded (SPEC section 5): pdffonts says
so, and pdftoppm renders the Japanese text with no font on the machine at all (an empty fontconfig),
as a phone without Japanese fonts would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from datetime import date
from itertools import pairwise
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


def pdffonts(pdf: bytes, tmp_path: Path) -> list[dict[str, str]]:
    """pdffonts' table: one {name, type, emb, sub} per font of the PDF."""
    if shutil.which("pdffonts") is None:
        pytest.skip("pdffonts (poppler-utils) is not installed")
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True, timeout=60).stdout
    head, rule, *rows = out.splitlines()
    starts = [m.start() for m in re.finditer(r"-+", rule)] + [len(rule) + 1]
    spans = list(pairwise(starts))
    names = [head[a:b].strip() for a, b in spans]
    return [{n: row[a:b].strip() for n, (a, b) in zip(names, spans, strict=True)} for row in rows]


@pytest.mark.parametrize(
    ("language", "changes", "japanese"),
    [("ja", {}, True), ("en", {}, False), ("en", {"postal_address": JA_ADDRESS}, True)],
)
def test_every_font_is_embedded(language: str, changes: dict[str, object], japanese: bool, tmp_path: Path) -> None:
    fonts = pdffonts(form(language, **changes), tmp_path)
    assert fonts and all(f["emb"] == "yes" and f["sub"] == "yes" for f in fonts), fonts
    names = {f["name"].split("+")[-1] for f in fonts}
    assert ("IPAexGothic" in names) == japanese  # the Japanese font only where it is needed
    assert {"LiberationSans", "LiberationSans-Bold"} <= names
    assert not any("Helvetica" in n or "Heisei" in n for n in names)


def test_forms_are_small_enough_to_mail() -> None:
    long_address = "\n".join([JA_ADDRESS] * 4)
    for pdf in (form("ja"), form("en"), form("ja", postal_address=long_address), form("en", postal_address=JA_ADDRESS)):
        assert len(pdf) < 300 * 1024


def gray_page(pdf: bytes, tmp_path: Path) -> tuple[int, int, bytes]:
    """Page 1 at 72 dpi (a pixel per point) as 8-bit gray, rendered with no font on the machine."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    (tmp_path / "fc").mkdir()
    (tmp_path / "fc" / "fonts.conf").write_text(
        f'<?xml version="1.0"?>\n<fontconfig><cachedir>{tmp_path / "fc"}</cachedir></fontconfig>\n')
    (tmp_path / "page.pdf").write_bytes(pdf)
    env = {**os.environ, "FONTCONFIG_FILE": str(tmp_path / "fc" / "fonts.conf")}
    result = subprocess.run(["pdftoppm", "-r", "72", "-gray", "-f", "1", "-l", "1", str(tmp_path / "page.pdf"),
                             str(tmp_path / "page")], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and "Couldn't find a font" not in result.stderr, result.stderr[-500:]
    raw = next(tmp_path.glob("page*.pgm")).read_bytes()
    magic, width, height, depth, pixels = raw.split(maxsplit=4)
    assert magic == b"P5" and depth == b"255"
    return int(width), int(height), pixels


def word_boxes(pdf: bytes, tmp_path: Path) -> dict[str, tuple[float, float, float, float]]:
    """pdftotext -bbox: each word of page 1 with (xMin, yMin, xMax, yMax) in points from the top left."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    (tmp_path / "words.pdf").write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(tmp_path / "words.pdf"), "-"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)</word>'
    return {m[5]: (float(m[1]), float(m[2]), float(m[3]), float(m[4])) for m in re.finditer(pattern, out)}


@pytest.mark.parametrize(("language", "words"), [
    ("ja", ("保有個人データ開示等請求書", "東京都千代田区丸の内1-2-3", "運転免許証の写し", REF)),
    ("en", ("東京都千代田区丸の内1-2-3", "Disclosure", REF)),
])
def test_the_text_renders_on_a_machine_without_fonts(language: str, words: tuple[str, ...], tmp_path: Path) -> None:
    """Dark pixels where each word is: the glyphs come from the PDF itself, Japanese ones included."""
    pdf = form(language, postal_address=JA_ADDRESS)
    width, height, pixels = gray_page(pdf, tmp_path)
    boxes = word_boxes(pdf, tmp_path)
    for word in words:
        x0, y0, x1, y1 = boxes[word]
        inside = [pixels[y * width + x] for y in range(int(y0), min(int(y1) + 1, height))
                  for x in range(int(x0), min(int(x1) + 1, width))]
        dark = sum(1 for p in inside if p < 128)
        assert dark > len(inside) * 0.05, (word, dark, len(inside))
    blank = [pixels[y * width + x] for y in range(5, 25) for x in range(5, width - 5)]  # the top margin
    assert all(p > 250 for p in blank)


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


def _without_id(pdf: bytes) -> bytes:
    return re.sub(rb"/ID \n\[<[0-9a-f]{32}><[0-9a-f]{32}>\]", b"/ID", pdf)


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize(("ref", "requester"), [
    ("PRV-2026-00042", "hanako.yamada@example.jp"),
    ("PRV-2026-98765", "a@b.example"),
    ("PRV-2027-123456", "x" * 100 + "@example.com"),  # six digits: a template of its own shape
    ("SUP2-2026-00001", "o'brien+tag@example.ie"),
])
def test_a_stamped_form_is_the_form_rendered_for_that_case(language: str, ref: str, requester: str) -> None:
    """Forms are stamped from one template per language, kinds and day (issue 14); each is byte for byte the
    form rendered for its own reference and address (padded), bar the document /ID, which is its own."""
    from bot.compose.form_pdf import REQUESTER_CHARS, _Form, _render

    long_address = "\n".join(f"Address line {i}" for i in range(1, 31))  # two pages: a footer on each
    for address in (JA_ADDRESS if language == "ja" else EN_ADDRESS, long_address):
        stamped = form(language, ref=ref, requester=requester, postal_address=address)
        company = "サンプル株式会社" if language == "ja" else "Sample Co., Ltd."
        direct = _render(_Form(language, (Kind.DISCLOSURE, Kind.DELETION), date(2026, 12, 18), address, company, 14),
                         ref, requester.ljust(REQUESTER_CHARS))
        assert _without_id(stamped) == _without_id(direct)
        assert stamped != form(language, ref="PRV-2026-00001", requester=requester, postal_address=address)


def test_each_stamped_form_has_its_own_id() -> None:
    ids = {re.search(rb"/ID \n\[<([0-9a-f]{32})>", form("en", ref=f"PRV-2026-{n:05d}")).group(1)  # type: ignore[union-attr]
           for n in range(1, 6)}
    assert len(ids) == 5


@pytest.mark.parametrize("requester", ["山田@例え.jp", "weird(comment)@example.com", "back\\slash@example.com"])
def test_an_address_that_cannot_be_stamped_is_rendered(requester: str, tmp_path: Path) -> None:
    text = pdftotext(form("en", requester=requester), tmp_path).stdout
    assert requester in text and REF in text
