"""Mail for staff (the digest, due-date alerts): Jinja2 templates in `templates/staff`, rendered in the
staff language, each starting with a "Subject: ..." line as the reply templates do."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from bot.compose.templates import split_subject
from bot.core.digest import Digest
from bot.core.errors import TemplateProblem
from bot.core.model import CaseRecord, Sender
from bot.core.wording import normalise_language

STAFF_DIR = "staff"


def staff_environment(templates: Path) -> Environment:
    """Jinja2 for the staff templates (templates/staff): HTML autoescaped, text not."""
    return Environment(loader=FileSystemLoader(str(templates / STAFF_DIR)), undefined=StrictUndefined,
                       autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


class StaffTemplates:
    """Renders staff mail from one templates directory in one language (en, ja)."""

    def __init__(self, templates: Path, language: str) -> None:
        self.directory = templates / STAFF_DIR
        self.env = staff_environment(templates)
        self.language = normalise_language(language)

    def _render(self, name: str, what: str, **data: Any) -> str:
        try:
            return self.env.get_template(name).render(**data)
        except TemplateError as exc:
            raise TemplateProblem(f"{what} template in {self.directory} ({self.language}): {exc}") from None

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
