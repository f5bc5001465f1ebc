"""Which version of a template wrote a mail (bot.compose.versions): the hash follows the template's source
and every template it includes, also when the includes are parsed only once per source."""

from __future__ import annotations

from pathlib import Path

import jinja2

from bot.compose.versions import template_label, template_version


def _env(folder: Path) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)))


def test_the_version_follows_the_template_and_what_it_includes(tmp_path: Path) -> None:
    (tmp_path / "ack.en.txt.j2").write_text('Dear customer,\n{% include "_footer.en.txt.j2" %}\n', encoding="utf-8")
    (tmp_path / "_footer.en.txt.j2").write_text("Privacy Office\n", encoding="utf-8")
    env = _env(tmp_path)
    first = template_version(env, "ack.en.txt.j2")
    assert template_version(env, "ack.en.txt.j2") == first  # asked again: the same
    (tmp_path / "_footer.en.txt.j2").write_text("Privacy Office, Tokyo\n", encoding="utf-8")
    footer_edited = template_version(_env(tmp_path), "ack.en.txt.j2")
    assert footer_edited != first
    (tmp_path / "ack.en.txt.j2").write_text('Dear customer!\n{% include "_footer.en.txt.j2" %}\n', encoding="utf-8")
    assert template_version(_env(tmp_path), "ack.en.txt.j2") not in (first, footer_edited)
    label = template_label(_env(tmp_path), "ack", "en", (".txt.j2", ".html.j2"))
    assert label.startswith("ack.en@") and len(label) == len("ack.en@") + 7
