"""HTML -> the text a person sees, in linear time."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from bot.core.parse.limits import BAD_INPUT, MAX_HTML


class _HTMLText(HTMLParser):
    _SKIP = frozenset({"script", "style", "title"})
    _BLOCK = frozenset(
        {
            *("p", "div", "li", "tr", "table", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "hr"),
            *("h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "main", "nav"),
            *("aside", "address", "center", "form", "fieldset", "figure", "figcaption"),
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "br" or tag in self._BLOCK:
            self._parts.append("\n")
        elif tag in ("td", "th"):
            self._parts.append(" ")
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self._parts.append("\n")
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._parts.append(data if self._pre else re.sub(r"[ \t\r\n\f]+", " ", data))

    def text(self) -> str:
        lines: list[str] = []
        for line in "".join(self._parts).split("\n"):
            line = line.strip(" \t")
            if line or (lines and lines[-1]):
                lines.append(line)
        return "\n".join(lines).strip("\n")


def _strip_comments(html: str) -> str:
    out: list[str] = []
    pos = 0
    while True:
        start = html.find("<!--", pos)
        if start < 0:
            out.append(html[pos:])
            break
        out.append(html[pos:start])
        end = html.find("-->", start + 4)
        if end < 0:  # an unclosed comment runs to the end, as in browsers
            break
        pos = end + 3
    return "".join(out)


_DECLARATION = re.compile(r"<[!?][^<>]*>")
_STRAY_LT = re.compile(r"<(?![A-Za-z/][^<>]*>)")


def html_to_text(html: str) -> tuple[str, bool]:
    """Visible text of an HTML part, and whether the parser got through it."""
    # Python 3.11's HTMLParser rescans to the end of input for every unfinished tag or comment
    # (minutes for 150 KB of "<a "). Remove comments and declarations and escape every "<" that does
    # not open a complete tag, so that it only ever sees finished tags; all of this is linear.
    html = _STRAY_LT.sub("&lt;", _DECLARATION.sub("", _strip_comments(html[:MAX_HTML])))
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except BAD_INPUT:
        return parser.text(), False
    return parser.text(), True

