"""Mail for staff (the digest, due-date alerts): Jinja2 templates in `templates/staff`, rendered in the
staff language, each starting with a "Subject: ..." line as the reply templates do. An admin's
`<paths.templates>/staff/` folder wins over the packaged one file by file, as for reply templates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import (
    BytecodeCache,
    ChoiceLoader,
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)

from bot.compose.templates import split_subject, template_folders
from bot.core.digest import Digest
from bot.core.errors import TemplateProblem
from bot.core.model import CaseRecord, Sender
from bot.core.wording import normalise_language

STAFF_DIR = "staff"


def staff_folders(templates: Path | Sequence[Path]) -> tuple[Path, ...]:
    """The staff folders (`staff/` of each templates folder that has one), first wins."""
    roots = (templates,) if isinstance(templates, Path) else tuple(templates)
    found = tuple(root / STAFF_DIR for root in roots if (root / STAFF_DIR).is_dir())
    return found or (roots[0] / STAFF_DIR,)


def staff_environment(templates: Path | Sequence[Path]) -> Environment:
    """Jinja2 for the staff templates (templates/staff): HTML autoescaped, text not. `templates` is one
    templates folder or several, first wins (`bot.compose.templates.template_folders`)."""
    loader = ChoiceLoader([FileSystemLoader(str(folder)) for folder in staff_folders(templates)])
    return Environment(loader=loader, undefined=StrictUndefined,
                       autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                       bytecode_cache=_bytecode_cache())


def _bytecode_cache() -> BytecodeCache | None:
    """Compiled staff templates kept between runs (`digest --print` starts 40 ms sooner), in Jinja's private
    per-user folder under the temp directory; keyed by each template's source, so an edit is seen at once.
    None (compile every time) where that folder cannot be made safely."""
    try:
        return FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


if TYPE_CHECKING:
    from bot.settings import Settings


def staff_templates(settings: Settings) -> StaffTemplates:
    """The staff templates these settings name (the admin's folder first, then the packaged one), in the
    staff language."""
    return StaffTemplates(template_folders(settings.paths.templates), settings.staff.language)


class StaffTemplates:
    """Renders staff mail from templates folders (the first that has a file wins) in one language (en, ja)."""

    def __init__(self, templates: Path | Sequence[Path], language: str) -> None:
        self.folders = staff_folders(templates)
        self.directory = self.folders[0]
        self.env = staff_environment(templates)
        self.language = normalise_language(language)

    def source(self, filename: str) -> Path | None:
        """The staff template file `filename` is read from; None when no folder has it."""
        return next((folder / filename for folder in self.folders if (folder / filename).is_file()), None)

    def _render(self, name: str, what: str, **data: Any) -> str:
        try:
            return self.env.get_template(name).render(**data)
        except TemplateError as exc:
            where = self.source(name) or self.directory / name
            raise TemplateProblem(f"{what} template {where} ({self.language}): {exc}") from None

    def digest(self, digest: Digest) -> tuple[str, str, str]:
        """(subject, text, html) of the digest."""
        text = self._render(f"digest.{self.language}.txt.j2", "digest", d=digest)
        html = self._render(f"digest.{self.language}.html.j2", "digest", d=digest)
        subject, body = split_subject(text, f"digest.{self.language}.txt.j2")
        return subject, body, html

    def alert(self, case: CaseRecord, *, overdue: bool, zone_day: Any) -> tuple[str, str]:
        """(subject, text) of the alert that a case's written answer is due soon, or overdue."""
        assert case.due_at is not None
        text = self._render(f"alert.{self.language}.txt.j2", "staff alert", ref=case.ref,
                            kinds=[k.value for k in case.kinds], requester=case.requester,
                            opened=zone_day(case.opened_at), due=zone_day(case.due_at), overdue=overdue)
        return split_subject(text, f"alert.{self.language}.txt.j2")


def notice_message(subject: str, text: str, html: str, *, sender: Sender, to: str, message_id: str,
                   date: datetime) -> bytes:
    """A mail to staff: plain text, with an HTML alternative when there is one."""
    msg = EmailMessage(policy=SMTP)
    local, _, domain = sender.address.partition("@")
    msg["From"] = Address(sender.name, local, domain)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()
