"""Reply templates: Jinja2 files an admin can edit, rendered into a subject and a text body.

The package ships every template (`bot/defaults/templates`, read with importlib.resources); an admin's
folder (`paths.templates`) holds only the files they change: a file there wins over the packaged one
of the same name, file by file, for messages, partials and staff templates alike (a Jinja2
ChoiceLoader, as Datasette's --template-dir). An admin's template can still include or extend the
packaged one as "default:<file>".

Layout of a templates folder:

    <name>.<lang>.txt.j2     one message; first line "Subject: ...", a blank line, then the body
    <name>.<lang>.html.j2    optional HTML alternative of the same message (autoescaped)
    _<partial>.<lang>.txt.j2 shared pieces (footer...), only included by the messages

Customer text (name, subject) only ever reaches a template as data: it is never compiled.
Everything here is pure apart from reading the template files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2 import pass_context
from jinja2.runtime import Context

from bot.core.errors import TemplateProblem
from bot.core.model import KIND_ORDER, RIGHTS_KINDS, Kind
from bot.core.wording import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    form_filename,
    format_date,
    kind_label,
    normalise_language,
    one_line,
    response_period,
)
from bot.settings import packaged

# Messages the bot sends; `templates check` reports any that is missing.
REQUIRED_TEMPLATES: tuple[str, ...] = ("ack_rights", "ack_opt_out", "ack_general", "reminder_documents",
                                       "staff_reply")

TEXT_SUFFIX = ".txt.j2"
HTML_SUFFIX = ".html.j2"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_FILE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.(?P<lang>[a-z]{2})\.(?P<kind>txt|html)\.j2$")
_SUBJECT_PREFIX = "subject:"
_MAX_NAME = 80
_MAX_SUBJECT = 120

@dataclass(frozen=True)
class ReplyContext:
    """Everything a reply template may use. Built by the caller from the case and the settings."""

    ref: str  # "PRV-2026-00042"
    kinds: tuple[Kind, ...]
    language: str  # "ja" or "en"; anything else renders in English
    requester: str  # bare address the reply goes to
    requester_name: str  # display name from the inquiry, "" when unknown
    inquiry_subject: str  # the customer's subject, shown as data only
    opened_at: datetime  # aware
    company_name: str
    office_name: str  # smtp.from_name
    privacy_address: str  # smtp.from_address
    postal_address: str  # policy.postal_address, may span lines
    response_days: int = 14
    timezone: str = "Asia/Tokyo"
    form_attached: bool = False  # set by bot.compose.message.build_reply from attach_form
    message: str = ""  # a staff reply's text (staff_reply), shown as data only


@dataclass(frozen=True)
class Rendered:
    subject: str  # one line, never CR/LF
    text: str  # body, "\n" line ends, ends with one "\n"
    html: str = ""  # only when a <name>.<lang>.html.j2 exists


def template_file(name: str, language: str, suffix: str = TEXT_SUFFIX) -> str:
    return f"{name}.{language}{suffix}"


def packaged_templates() -> Path:
    """The templates folder shipped in the package."""
    return packaged("templates")


def template_folders(admin: str | Path = "") -> tuple[Path, ...]:
    """Where templates are looked up, first wins: the admin's folder (paths.templates), then the package's."""
    return (Path(admin), packaged_templates()) if str(admin) else (packaged_templates(),)


def template_loader(folders: Sequence[Path]) -> jinja2.BaseLoader:
    """Each folder in turn, file by file; "default:<file>" is always the packaged file."""
    for folder in folders:
        if not folder.is_dir():
            raise TemplateProblem(f"templates directory {folder} not found (paths.templates)")
    return jinja2.ChoiceLoader([
        *(jinja2.FileSystemLoader(str(folder), encoding="utf-8") for folder in folders),
        jinja2.PrefixLoader({"default": jinja2.FileSystemLoader(str(packaged_templates()), encoding="utf-8")},
                            delimiter=":"),
    ])


def is_packaged(folder: Path) -> bool:
    return folder.resolve() == packaged_templates().resolve()


class Renderer:
    """Renders `<name>.<lang>.txt.j2` files from templates folders, the first that has a file winning.

    `Renderer()` uses the packaged templates; `Renderer(*template_folders(settings.paths.templates))`
    what the settings ask for; `Renderer(folder)` that one folder alone.
    """

    def __init__(self, *folders: Path | str) -> None:
        self.folders: tuple[Path, ...] = tuple(Path(f) for f in folders) or (packaged_templates(),)
        self.directory = self.folders[0]
        self.env = jinja2.Environment(
            loader=template_loader(self.folders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm", "html.j2"), default_for_string=False, default=False
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.env.filters["date"] = _date_filter
        self.env.filters["jdate"] = _jdate_filter
        self.env.filters["kind_label"] = _kind_label_filter

    def files(self) -> list[str]:
        """Every template file of the folders (messages and partials), sorted."""
        return sorted({p.name for folder in self.folders for p in folder.iterdir()
                       if p.is_file() and p.name.endswith(".j2")})

    def source(self, filename: str) -> Path | None:
        """The file `filename` is read from: in the first folder that has it; None when none has."""
        return next((folder / filename for folder in self.folders if (folder / filename).is_file()), None)

    def path_of(self, filename: str) -> Path:
        """Where `filename` is read from, or would be looked for first: for messages naming a file."""
        return self.source(filename) or self.directory / filename

    def exists(self, name: str, language: str, suffix: str = TEXT_SUFFIX) -> bool:
        return self.source(template_file(name, language, suffix)) is not None

    def render(self, name: str, language: str, ctx: ReplyContext) -> Rendered:
        """Render message `name` in `language` (unknown languages: English). Raises TemplateProblem.

        A subject that lost its "[REF]" gets it back in front: the reference is what threads the
        customer's answer to the case (`templates check` reports such a template).
        """
        rendered = self.render_as_written(name, language, ctx)
        if ctx.ref and f"[{ctx.ref}]" not in rendered.subject:
            rendered = replace(rendered, subject=f"[{ctx.ref}] {rendered.subject}")
        return rendered

    def render_as_written(self, name: str, language: str, ctx: ReplyContext) -> Rendered:
        """Like `render`, without restoring a missing "[REF]" in the subject."""
        if not _NAME_RE.match(name):
            raise TemplateProblem(f"bad template name {name!r} (use lower-case letters, digits and _)")
        lang = normalise_language(language)
        data = template_data(replace(ctx, language=lang))
        filename = template_file(name, lang)
        subject, body = split_subject(self._render_file(filename, data), filename)
        html = ""
        if self.exists(name, lang, HTML_SUFFIX):
            html = self._render_file(template_file(name, lang, HTML_SUFFIX), data)
        return Rendered(subject=subject, text=body, html=html)

    def _render_file(self, filename: str, data: Mapping[str, Any]) -> str:
        where = self.path_of(filename)
        try:
            return self.env.get_template(filename).render(data)
        except jinja2.TemplateNotFound as exc:
            if exc.name == filename:
                raise TemplateProblem(f"template {where} not found") from None
            raise TemplateProblem(f"template {where}: included template {exc.name} not found") from None
        except jinja2.TemplateSyntaxError as exc:
            at = exc.filename or str(where)
            raise TemplateProblem(f"template {at} line {exc.lineno}: syntax error: {exc.message}") from None
        except jinja2.UndefinedError as exc:
            raise TemplateProblem(f"template {where}: {exc.message}") from None
        except TemplateProblem:
            raise
        except Exception as exc:  # a filter or expression failing on the data
            raise TemplateProblem(f"template {where} failed to render: {type(exc).__name__}: {exc}") from exc


def template_data(ctx: ReplyContext) -> dict[str, Any]:
    """The variables a template sees: the context's fields plus a few derived ones."""
    lang = normalise_language(ctx.language)
    rights = tuple(k for k in KIND_ORDER if k in ctx.kinds and k in RIGHTS_KINDS)
    return {
        "ref": ctx.ref,
        "kinds": tuple(k for k in KIND_ORDER if k in ctx.kinds),
        "language": lang,
        "requester": one_line(ctx.requester, 254),
        "requester_name": one_line(ctx.requester_name, _MAX_NAME),
        "inquiry_subject": one_line(ctx.inquiry_subject, _MAX_SUBJECT),
        "opened_at": ctx.opened_at,
        "company_name": ctx.company_name,
        "office_name": ctx.office_name,
        "privacy_address": ctx.privacy_address,
        "postal_address": ctx.postal_address.strip(),
        "response_days": ctx.response_days,
        "timezone": ctx.timezone,
        "form_attached": ctx.form_attached,
        "message": staff_text(ctx.message),
        # derived
        "rights": rights,
        "rights_labels": [kind_label(k, lang) for k in rights],
        "opt_out": Kind.MARKETING_OPT_OUT in ctx.kinds,
        "general": Kind.GENERAL in ctx.kinds or not ctx.kinds,
        "response_period": response_period(ctx.response_days, lang),
        "form_filename": form_filename(ctx.ref),
    }


def sample_context(language: str) -> ReplyContext:
    """Realistic data for `templates check` and `templates preview`; replace() fields from the settings."""
    ja = normalise_language(language) == "ja"
    return ReplyContext(
        ref="PRV-2026-00042",
        kinds=(Kind.DISCLOSURE, Kind.DELETION, Kind.MARKETING_OPT_OUT),
        language="ja" if ja else "en",
        requester="hanako.yamada@example.jp" if ja else "ruth.adams@example.com",
        requester_name="山田 花子" if ja else "Ruth Adams",
        inquiry_subject="個人情報の開示と削除のお願い" if ja else "My personal data",
        opened_at=datetime(2026, 12, 18, 9, 15, tzinfo=ZoneInfo("Asia/Tokyo")),
        company_name="サンプル株式会社" if ja else "Sample Co., Ltd.",
        office_name="個人情報お問い合わせ窓口" if ja else "Privacy Office",
        privacy_address="privacy@example.co.jp",
        postal_address=(
            "〒100-0005\n東京都千代田区丸の内1-2-3 サンプルビル5階\nサンプル株式会社 個人情報お問い合わせ窓口"
            if ja
            else "Privacy Office, Sample Co., Ltd.\n5F Sample Building, 1-2-3 Marunouchi\n"
            "Chiyoda-ku, Tokyo 100-0005, Japan"
        ),
        response_days=14,
        timezone="Asia/Tokyo",
        form_attached=True,
        message=("ご連絡いただいたご住所宛てに、本日請求書を郵送いたしました。\n到着まで数日お待ちください。" if ja
                 else "We posted the request form to the address you gave us today.\nIt should arrive in a few days."),
    )


MAX_STAFF_TEXT = 20_000


def staff_text(text: str) -> str:
    """A staff reply's text as the template shows it: "\n" line ends, no trailing spaces, no control
    characters but tabs, at most MAX_STAFF_TEXT characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")[:MAX_STAFF_TEXT]
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def template_names(renderer: Renderer) -> list[str]:
    """Names of the messages in the directory (partials starting with "_" excluded), sorted."""
    names = {m["name"] for f in renderer.files() if (m := _FILE_RE.match(f))}
    return sorted(names)


def check_all(renderer: Renderer, *, required: Iterable[str] = REQUIRED_TEMPLATES) -> list[str]:
    """Render every message in every language with sample data. Returns the problems; [] when all is well."""
    problems: list[str] = []
    files = renderer.files()
    for filename in files:
        match = _FILE_RE.match(filename)
        if not filename.startswith("_") and not match:
            problems.append(
                f"template {renderer.path_of(filename)}: name not understood "
                "(expected <name>.<lang>.txt.j2, e.g. ack_rights.ja.txt.j2)"
            )
        elif match and match["lang"] not in LANGUAGES:
            problems.append(
                f"template {renderer.path_of(filename)}: language {match['lang']!r} is never used "
                f"(languages: {', '.join(LANGUAGES)})"
            )
        try:  # syntax of every file, partials included, even when nothing includes them
            renderer.env.get_template(filename)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(f"template {renderer.path_of(filename)} line {exc.lineno}: syntax error: {exc.message}")
        except UnicodeDecodeError:
            problems.append(f"template {renderer.path_of(filename)}: not valid UTF-8")
    names = template_names(renderer)
    for name in required:
        if name not in names:
            problems.append(f"template {name} is missing: the bot needs {template_file(name, LANGUAGES[0])} "
                            f"and {template_file(name, LANGUAGES[1])} in {renderer.directory}")
    for name in names:
        present = [lang for lang in LANGUAGES if renderer.exists(name, lang)]
        for lang in LANGUAGES:
            if lang not in present:
                other = ", ".join(template_file(name, p) for p in present) or "HTML only"
                problems.append(f"template {renderer.path_of(template_file(name, lang))} is missing "
                                f"(present: {other})")
                continue
            for ctx in _sample_variants(lang):
                try:
                    rendered = renderer.render_as_written(name, lang, ctx)
                except TemplateProblem as exc:
                    problems.append(str(exc))
                    break
                if not rendered.subject.startswith(f"[{ctx.ref}]"):
                    problems.append(f"template {renderer.path_of(template_file(name, lang))}: "
                                    f"the subject must start with [{{{{ ref }}}}], got {rendered.subject!r}")
                    break
                if not rendered.text.strip():
                    problems.append(f"template {renderer.path_of(template_file(name, lang))}: empty body")
                    break
    return problems


def _sample_variants(language: str) -> tuple[ReplyContext, ...]:
    """The sample plus variants that take the other branches (no name, no form, a general question)."""
    base = sample_context(language)
    return (
        base,
        replace(base, kinds=(Kind.THIRD_PARTY_STOP,), requester_name="", inquiry_subject="",
                form_attached=False, response_days=10),
        replace(base, kinds=(Kind.GENERAL,), form_attached=False),
        replace(base, kinds=(), requester_name="", form_attached=False),
    )


def split_subject(raw: str, filename: str) -> tuple[str, str]:
    text = raw.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    first, _, rest = text.partition("\n")
    if not first.lower().startswith(_SUBJECT_PREFIX):
        raise TemplateProblem(f"template {filename}: the first line must be 'Subject: ...', got {first[:60]!r}")
    subject = one_line(first[len(_SUBJECT_PREFIX):])
    if not subject:
        raise TemplateProblem(f"template {filename}: the subject is empty")
    body = "\n".join(line.rstrip() for line in rest.split("\n")).strip("\n")
    return subject, body + "\n"


@pass_context
def _date_filter(context: Context, value: date | datetime, language: str | None = None) -> str:
    return format_date(value, language or str(context.get("language", DEFAULT_LANGUAGE)),
                       str(context.get("timezone", "")) or None)


@pass_context
def _jdate_filter(context: Context, value: date | datetime) -> str:
    return format_date(value, "ja", str(context.get("timezone", "")) or None)


@pass_context
def _kind_label_filter(context: Context, kind: Kind | str, language: str | None = None) -> str:
    return kind_label(kind, language or str(context.get("language", DEFAULT_LANGUAGE)))
