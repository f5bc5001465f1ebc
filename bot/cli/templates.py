"""`templates check` and `templates preview NAME`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.settings import Settings


def handle(args: argparse.Namespace, settings: Settings, _hooks: Any) -> int:
    from bot.compose.templates import Renderer, check_all, sample_context, template_folders

    renderer = Renderer(*template_folders(settings.paths.templates))
    if args.action == "check":
        for line in sources(renderer.folders):
            print(line)
        problems = check_all(renderer) + _check_staff_templates(settings)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            return 1
        print("templates ok")
        return 0
    rendered = renderer.render(args.name, args.lang, sample_context(args.lang))
    print(f"Subject: {rendered.subject}\n\n{rendered.text}")
    return 0


def sources(folders: tuple[Path, ...]) -> list[str]:
    """One line per template file (staff ones as staff/<file>): where it is read from, the admin's
    folder or the package, with its path."""
    from bot.compose.notices import STAFF_DIR
    from bot.compose.templates import is_packaged

    found: dict[str, Path] = {}
    for folder in folders:
        for sub in ("", STAFF_DIR):
            here = folder / sub
            if here.is_dir():
                for path in sorted(here.iterdir()):
                    if path.is_file() and path.name.endswith(".j2"):
                        found.setdefault(f"{sub}/{path.name}".lstrip("/"), folder)
    width = max((len(name) for name in found), default=0)
    return [f"{name:<{width}}  {'packaged' if is_packaged(folder) else 'admin   '}  {folder / name}"
            for name, folder in sorted(found.items())]


def _check_staff_templates(settings: Settings) -> list[str]:
    """The digest and the alerts render in both staff languages."""
    from bot.compose.notices import StaffTemplates
    from bot.compose.templates import template_folders
    from bot.core.digest import DigestFacts, build_digest
    from bot.core.errors import TemplateProblem
    from bot.core.model import CaseRecord, Kind, Status

    now = datetime.now(UTC)
    digest = build_digest(DigestFacts({}, [], {}), as_of=now, since=now, zone=settings.zone)
    case = CaseRecord(ref="PRV-2026-00001", status=Status.IN_PROGRESS, kinds=(Kind.DELETION,),
                      requester="a@example.com", language="en", flags=(), opened_at=now, due_at=now)
    problems = []
    for lang in ("en", "ja"):
        staff = StaffTemplates(template_folders(settings.paths.templates), lang)
        try:
            staff.digest(digest)
            for overdue in (False, True):
                staff.alert(case, overdue=overdue, zone_day=lambda d: d.date().isoformat())
        except TemplateProblem as exc:
            problems.append(str(exc))
    return problems
