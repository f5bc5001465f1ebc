"""The request form sent with a rights reply: one A4 page, the case reference printed on it.

Drawn with reportlab's canvas. Every font is embedded (subset), so the form reads the same on a
phone or PC without Japanese fonts (SPEC section 5): Japanese text uses IPAex Gothic, shipped in
`fonts/` with its licence; runs of Western text use Liberation Sans (also in `fonts/`, with the
metrics of Helvetica, so the layout is what it was), so the reference and addresses stay
extractable everywhere. The canvas starts on Liberation Sans (`initialFontName`):
otherwise reportlab puts a non-embedded Helvetica into every PDF. `invariant=1` makes the same
inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import FF_NONSYMBOLIC, FF_SYMBOLIC, TTFont, TTFontFace
from reportlab.pdfgen.canvas import Canvas

from bot.compose.form_words import FormWords, form_words
from bot.core.model import Kind
from bot.core.wording import form_filename, normalise_language, one_line

JA_FONT = "IPAexGothic"  # fonts/ipaexg.ttf
LATIN_FONT = "LiberationSans"  # fonts/LiberationSans-Regular.ttf
LATIN_BOLD = "LiberationSans-Bold"

PAGE_W, PAGE_H = A4
MARGIN = 42.0
WIDTH = PAGE_W - 2 * MARGIN
BOTTOM = 48.0  # content stops above the footer
__all__ = ["FORM_KINDS", "REQUESTER_CHARS", "form_filename", "request_form_pdf"]

FORM_KINDS: tuple[Kind, ...] = (
    Kind.DISCLOSURE, Kind.AMENDMENT, Kind.ADDITION, Kind.DELETION, Kind.THIRD_PARTY_STOP,
)


def font_file(name: str) -> Path:
    """A font shipped in the package (bot/compose/fonts)."""
    return Path(str(files("bot.compose") / "fonts" / name))


class _KeptSubsets(TTFontFace):  # type: ignore[misc]  # reportlab has no type hints
    """A TrueType face that makes each subset's font file once and keeps it, compressed.

    reportlab builds and compresses the embedded subsets anew for every document; the form's words
    are the same on every form (only the reference, the dates and the address differ, mostly in
    ASCII), so its subsets are too. Building and compressing them was most of a form's cost. The
    objects written are those of reportlab's own TTFontFace.addSubsetObjects.
    """

    KEEP = 64  # subsets kept per face (a few per deployment; the rest make room in turn)

    def kept_file(self, subset: list[int]) -> tuple[bytes, int]:
        """(the subset's font file, compressed; its length before) for these code points."""
        store: OrderedDict[tuple[int, ...], tuple[bytes, int]] = self.__dict__.setdefault("_kept", OrderedDict())
        key = tuple(subset)
        if key in store:
            store.move_to_end(key)
            return store[key]
        raw = self.makeSubset(subset)
        store[key] = (zlib.compress(raw), len(raw))
        if len(store) > self.KEEP:
            store.popitem(last=False)
        return store[key]

    def addSubsetObjects(self, doc: Any, fontname: str, subset: list[int]) -> Any:
        content, length = self.kept_file(subset)
        font_file = pdfdoc.PDFStream(content=content)
        font_file.dictionary["Length1"] = length
        font_file.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName("FlateDecode")])  # already applied
        ref = doc.Reference(font_file, f"fontFile:{self.filename}({fontname})")
        descriptor = pdfdoc.PDFDictionary({
            "Type": "/FontDescriptor", "Ascent": self.ascent, "CapHeight": self.capHeight,
            "Descent": self.descent, "Flags": (self.flags & ~FF_NONSYMBOLIC) | FF_SYMBOLIC,
            "FontBBox": pdfdoc.PDFArray(self.bbox), "FontName": pdfdoc.PDFName(fontname),
            "ItalicAngle": self.italicAngle, "StemV": self.stemV, "FontFile2": ref,
            "MissingWidth": self.defaultWidth,
        })
        return doc.Reference(descriptor, "fontDescriptor:" + fontname)


def _embedded(name: str, filename: str, *, ascii_readable: bool = True) -> TTFont:
    font = TTFont(name, filename, asciiReadable=ascii_readable)
    font.face.__class__ = _KeptSubsets  # the same face, parsed once, keeping its subsets
    return font


@cache
def _fonts() -> frozenset[int]:
    """Registers the fonts once (IPAex Gothic takes about 0.1 s to read); the code points the Latin font has."""
    # Without ASCII in the Japanese font's first subset: the form's ASCII is set in Liberation Sans.
    pdfmetrics.registerFont(_embedded(JA_FONT, str(font_file("ipaexg.ttf")), ascii_readable=False))
    regular = _embedded(LATIN_FONT, str(font_file("LiberationSans-Regular.ttf")))
    bold = _embedded(LATIN_BOLD, str(font_file("LiberationSans-Bold.ttf")))
    pdfmetrics.registerFont(regular)
    pdfmetrics.registerFont(bold)
    rl_config.useA85 = 0  # binary streams: ASCII85 only made them bigger and cost most of the build time
    return frozenset(regular.face.charToGlyph) & frozenset(bold.face.charToGlyph)


def _is_latin(ch: str) -> bool:
    """Liberation Sans has it (Latin, Greek, Cyrillic...); everything else goes to IPAex Gothic."""
    return ord(ch) in _fonts()


# The form's texts are the same for every case, so their layout is worked out once.
@lru_cache(maxsize=4096)
def _runs(text: str, bold: bool) -> tuple[tuple[str, str], ...]:
    runs: list[tuple[str, str]] = []
    latin = LATIN_BOLD if bold else LATIN_FONT
    for ch in text:
        font = latin if _is_latin(ch) else JA_FONT
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + ch)
        else:
            runs.append((font, ch))
    return tuple(runs)


@lru_cache(maxsize=65536)
def _width(text: str, size: float, bold: bool = False) -> float:
    return float(sum(pdfmetrics.stringWidth(chunk, font, size) for font, chunk in _runs(text, bold)))


_TOKEN = re.compile(r"[\x21-\x7e\u00a0-\u024f]+ *|\s+|.")
_NO_LINE_START = set("、。，．）」』】〕・ー…：；？！,.)")


@lru_cache(maxsize=1024)
def _wrap(text: str, size: float, width: float, bold: bool = False) -> tuple[str, ...]:
    """Greedy wrapping: Latin words stay whole, Japanese breaks between characters."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for token in _TOKEN.findall(para):
            if _width(line + token.rstrip(), size, bold) <= width or not line.strip():
                line += token
                continue
            if token in _NO_LINE_START:
                line += token  # hang the punctuation rather than start a line with it
                continue
            lines.append(line.rstrip())
            line = token.lstrip()
        lines.append(line.rstrip())
    return tuple(lines)


class _Sheet:
    """A canvas with a cursor moving down the page and a footer on every page."""

    def __init__(self, canvas: Canvas, words: FormWords, ref: str, company_name: str, lang: str) -> None:
        self.c = canvas
        self.lang = lang
        self.w = words
        self.ref = ref
        self.company_name = company_name
        self.page = 1
        self.y = PAGE_H - MARGIN

    def text(self, x: float, y: float, text: str, size: float, *, bold: bool = False, align: str = "left") -> None:
        if align != "left":
            width = _width(text, size, bold)
            x = x - width if align == "right" else x - width / 2
        for font, chunk in _runs(text, bold):
            self.c.setFont(font, size)
            self.c.drawString(x, y, chunk)
            x += pdfmetrics.stringWidth(chunk, font, size)

    def paragraph(self, text: str, size: float, *, indent: float = 0, bold: bool = False, leading: float = 0) -> None:
        leading = leading or size * 1.45
        for line in _wrap(text, size, WIDTH - indent, bold):
            self.need(leading)
            self.y -= leading
            self.text(MARGIN + indent, self.y + leading - size, line, size, bold=bold)

    def need(self, height: float) -> None:
        if self.y - height < BOTTOM:
            self.footer()
            self.c.showPage()
            self.page += 1
            self.y = PAGE_H - MARGIN

    def footer(self) -> None:
        c = self.c
        c.setLineWidth(0.5)
        c.setStrokeGray(0.4)
        c.line(MARGIN, 40, PAGE_W - MARGIN, 40)
        c.setFillGray(0.25)
        self.text(MARGIN, 28, f"{self.w.footer_ref}  {self.ref}", 8.5, bold=True)
        self.text(PAGE_W / 2, 28, self.company_name, 8)
        self.text(PAGE_W - MARGIN, 28, f"{self.page}", 8, align="right")
        c.setFillGray(0)
        c.setStrokeGray(0)

    def heading(self, text: str) -> None:
        self.need(30)
        self.y -= 8
        c = self.c
        c.setFillGray(0.87)
        c.rect(MARGIN, self.y - 16, WIDTH, 16, fill=1, stroke=0)
        c.setFillGray(0)
        self.text(MARGIN + 5, self.y - 11.8, text, 9.5, bold=True)
        self.y -= 16

    def checkbox(self, x: float, y: float, ticked: bool, size: float = 9.5) -> None:
        c = self.c
        c.setLineWidth(0.8)
        c.rect(x, y, size, size, fill=0, stroke=1)
        if ticked:
            c.setLineWidth(1.6)
            path = c.beginPath()
            path.moveTo(x + size * 0.18, y + size * 0.52)
            path.lineTo(x + size * 0.42, y + size * 0.2)
            path.lineTo(x + size * 0.9, y + size * 0.92)
            c.drawPath(path, stroke=1, fill=0)
            c.setLineWidth(0.8)


REQUESTER_CHARS = 120  # the requester's address as printed on the form, at most


def request_form_pdf(
    *,
    ref: str,
    requester: str,
    language: str,
    kinds: tuple[Kind, ...],
    opened_on: date,
    postal_address: str,
    company_name: str,
    response_days: int = 14,
) -> bytes:
    """The request form as PDF bytes: A4, case reference at the top and in every page's footer.

    Forms that differ only in their reference (same prefix and number of digits) and in the requester's
    address are stamped from one rendered template (`_Template`): a backlog of replies renders the form
    once per language, kinds and day instead of once per mail (issue 14). The bytes are those of a
    render with the address padded to REQUESTER_CHARS (trailing spaces), bar the document /ID."""
    _fonts()
    lang = normalise_language(language)
    ref = one_line(ref, 40)
    requester = one_line(requester, REQUESTER_CHARS)
    form = _Form(lang, tuple(k for k in FORM_KINDS if k in kinds), opened_on, postal_address,
                 one_line(company_name, 80), response_days)
    if _STAMPABLE_REF.fullmatch(ref) and _STAMPABLE_ADDRESS.fullmatch(requester):
        template = _template(form, _DIGIT.sub("0", ref))
        if template is not None:
            return template.stamp(ref, requester)
    return _render(form, ref, requester)


@dataclass(frozen=True)
class _Form:
    """What a form says besides its reference and the requester's address."""

    lang: str
    kinds: tuple[Kind, ...]
    opened_on: date
    postal_address: str
    company: str
    response_days: int


def _render(form: _Form, ref: str, requester: str) -> bytes:
    # Page content uncompressed: the reference and the address stay where a template can stamp them.
    words = form_words(form.lang, form.company, form.response_days, form.opened_on)
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, invariant=1, pageCompression=0, initialFontName=LATIN_FONT)
    canvas.setTitle(words.title)
    canvas.setAuthor(form.company)
    canvas.setSubject(ref)
    sheet = _Sheet(canvas, words, ref, form.company, form.lang)
    _header(sheet)
    _kinds(sheet, form.kinds)
    _details(sheet)
    _person(sheet, requester, form.lang)
    _enclosures(sheet)
    _send_to(sheet, form.postal_address)
    _notes(sheet)
    sheet.footer()
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


# A reference of ASCII letters, digits and hyphens: its digits all have one width in Liberation Sans, so
# "PRV-2026-00042" sits exactly where "PRV-0000-00000" did. An address that needs no escaping in a PDF
# string and is set in Liberation Sans alone (ASCII without parentheses or backslashes).
_STAMPABLE_REF = re.compile(r"[A-Za-z0-9-]{1,40}")
_STAMPABLE_ADDRESS = re.compile(rf"[\x20-\x27\x2a-\x5b\x5d-\x7e]{{1,{REQUESTER_CHARS}}}")
_DIGIT = re.compile(r"[0-9]")
_ADDRESS_SLOT = "~" * REQUESTER_CHARS  # no escaping, one font; 120 of them are met nowhere else in a form
_IDS = re.compile(rb"/ID \n\[<([0-9a-f]{32})><([0-9a-f]{32})>\]")


@dataclass(frozen=True)
class _Template:
    """A rendered form with the places of its reference (the Subject, the box, each page's footer), of the
    requester's address and of the document /ID."""

    pdf: bytes
    ref_at: tuple[int, ...]
    address_at: int
    ids_at: tuple[int, int]

    def stamp(self, ref: str, requester: str) -> bytes:
        out = bytearray(self.pdf)
        code = ref.encode("ascii")
        for at in self.ref_at:
            out[at : at + len(code)] = code
        out[self.address_at : self.address_at + REQUESTER_CHARS] = requester.ljust(REQUESTER_CHARS).encode("ascii")
        ident = hashlib.md5(self.pdf[self.ids_at[0] : self.ids_at[0] + 32] + b"\0" + code + b"\0"
                            + requester.encode("ascii"), usedforsecurity=False).hexdigest().encode("ascii")
        for at in self.ids_at:
            out[at : at + 32] = ident
        return bytes(out)


@lru_cache(maxsize=64)
def _template(form: _Form, ref_shape: str) -> _Template | None:
    """The form rendered with `ref_shape` and a placeholder address, and where they stand; None when they
    cannot be found exactly once per place (the form is then rendered for each mail)."""
    pdf = _render(form, ref_shape, _ADDRESS_SLOT)
    refs = tuple(m.start() for m in re.finditer(re.escape(ref_shape.encode("ascii")), pdf))
    addresses = [m.start() for m in re.finditer(re.escape(_ADDRESS_SLOT.encode("ascii")), pdf)]
    ids = _IDS.search(pdf)
    pages = len(re.findall(rb"/Type /Page\b(?!s)", pdf))
    if len(refs) != 2 + pages or len(addresses) != 1 or ids is None:
        return None
    return _Template(pdf, refs, addresses[0], (ids.start(1), ids.start(2)))


def _header(s: _Sheet) -> None:
    c, w = s.c, s.w
    # The reference box, top right.
    box_w, box_h = 178.0, 40.0
    bx, by = PAGE_W - MARGIN - box_w, s.y - box_h
    c.setLineWidth(1.4)
    c.rect(bx, by, box_w, box_h, fill=0, stroke=1)
    s.text(bx + 7, by + box_h - 11, w.ref_label, 8)
    s.text(bx + box_w / 2, by + 9, s.ref, 17, bold=True, align="center")
    s.text(MARGIN, s.y - 10, w.opened, 8.5)
    s.y = by - 6
    # Title, centred, wrapped when long (the English one).
    size = 19.0 if _width(w.title, 19, True) <= WIDTH else 14.0
    for line in _wrap(w.title, size, WIDTH, True):
        s.y -= size * 1.3
        s.text(PAGE_W / 2, s.y, line, size, bold=True, align="center")
    s.y -= 20
    s.text(MARGIN, s.y, w.to, 11.5)
    s.text(PAGE_W - MARGIN, s.y, w.date_label, 10, align="right")
    s.y -= 8
    s.paragraph(w.intro, 9.5)


def _kinds(s: _Sheet, kinds: tuple[Kind, ...]) -> None:
    s.heading(s.w.kinds_head)
    s.y -= 6
    x = MARGIN + 8
    row_h = 19.0
    s.need(row_h)
    for kind in FORM_KINDS:
        label = s.w.kind_labels[kind]
        item_w = 9.5 + 6 + _width(label, 11) + 20
        if x + item_w > PAGE_W - MARGIN:
            x = MARGIN + 8
            s.y -= row_h
        s.checkbox(x, s.y - 13, kind in kinds)
        s.text(x + 9.5 + 6, s.y - 12, label, 11)
        x += item_w
    s.y -= row_h + 2
    s.paragraph(s.w.kinds_note, 7.5)


def _details(s: _Sheet) -> None:
    s.heading(s.w.detail_head)
    box_h = 84.0
    s.need(box_h + 4)
    s.y -= 4
    s.c.setLineWidth(0.7)
    s.c.rect(MARGIN, s.y - box_h, WIDTH, box_h, fill=0, stroke=1)
    s.c.setFillGray(0.45)
    s.text(MARGIN + 5, s.y - 11, s.w.detail_hint, 7.5)
    s.c.setFillGray(0)
    s.c.setStrokeGray(0.75)
    s.c.setDash(1, 2)
    for i in range(1, 4):
        ly = s.y - 16 - i * 17
        s.c.line(MARGIN + 6, ly, PAGE_W - MARGIN - 6, ly)
    s.c.setDash()
    s.c.setStrokeGray(0)
    s.y -= box_h


def _person(s: _Sheet, requester: str, lang: str) -> None:
    w = s.w
    s.heading(w.person_head)
    rows: list[tuple[str, float, str]] = []  # (label, height, pre-filled value)
    if w.furigana:
        rows.append((w.furigana, 18, ""))
    rows += [(w.name, 30, ""), (w.signature, 32, ""), (w.address, 46, w.address_prefix),
             (w.phone, 21, ""), (w.email, 21, requester)]
    label_w = 92.0
    s.need(sum(h for _, h, _ in rows) + 4)
    s.y -= 4
    c = s.c
    c.setLineWidth(0.7)
    for label, h, value in rows:
        top = s.y
        c.setFillGray(0.95)
        c.rect(MARGIN, top - h, label_w, h, fill=1, stroke=0)
        c.setFillGray(0)
        c.rect(MARGIN, top - h, WIDTH, h, fill=0, stroke=1)
        c.line(MARGIN + label_w, top, MARGIN + label_w, top - h)
        s.text(MARGIN + 6, top - h / 2 - 3.3, label, 9.5)
        if value and label == w.email:
            s.text(MARGIN + label_w + 8, top - h / 2 - 3.6, value, 10.5)
        elif value:
            s.text(MARGIN + label_w + 8, top - 12, value, 9.5)
        if label == w.signature and w.seal:
            cx, cy, r = PAGE_W - MARGIN - 24, top - h / 2, 11.0
            c.setStrokeGray(0.55)
            c.setDash(1.5, 1.5)
            c.circle(cx, cy, r, fill=0, stroke=1)
            c.setDash()
            c.setStrokeGray(0)
            c.setFillGray(0.55)
            s.text(cx, cy - 3.5, w.seal, 10, align="center")
            c.setFillGray(0)
        s.y -= h
    if lang == "ja":
        s.y -= 2
        s.paragraph("※署名・押印欄には、ご本人が自署するか、記名のうえ押印してください。", 7.5)


def _enclosures(s: _Sheet) -> None:
    s.heading(s.w.enclosures_head)
    s.y -= 2
    for level, text in s.w.enclosures:
        s.need(16)
        s.y -= 16
        x = MARGIN + 8 + level * 22
        s.checkbox(x, s.y + 1, False, 8.5)
        s.text(x + 15, s.y + 2, text, 9.5)


def _send_to(s: _Sheet, postal_address: str) -> None:
    s.heading(s.w.send_head)
    lines = [line for raw in postal_address.strip().splitlines() if (line := one_line(raw))] or [""]
    wrapped = [part for line in lines for part in _wrap(line, 11, WIDTH - 24)]
    leading = 15.0
    box_h = leading * len(wrapped) + 12
    s.need(box_h + 6)
    s.y -= 6
    s.c.setLineWidth(1.1)
    s.c.rect(MARGIN, s.y - box_h, WIDTH, box_h, fill=0, stroke=1)
    y = s.y - 6
    for line in wrapped:
        y -= leading
        s.text(MARGIN + 12, y + 3.5, line, 11)
    s.y -= box_h


def _notes(s: _Sheet) -> None:
    notes = [_wrap(note, 8.5, WIDTH - 12) for note in s.w.notes]
    s.need(16 + 12 * sum(len(lines) for lines in notes))  # keep the notes together with their heading
    s.y -= 14
    s.text(MARGIN, s.y, s.w.notes_head, 9, bold=True)
    s.y -= 2
    for lines in notes:
        for i, line in enumerate(lines):
            s.y -= 12
            if i == 0:
                s.text(MARGIN + 2, s.y, "・" if s.lang == "ja" else "-", 8.5)
            s.text(MARGIN + 12, s.y, line, 8.5)
