"""The packaged templates and rules, and an admin's folder winning over them file by file (SPEC section 8).

The reply templates, the partials they include and the staff templates all come from the package
unless the admin's folder (`paths.templates`) has a file of the same name; `templates check` says
where each came from. Relative paths in the config are relative to the config file's folder, so
the bot finds its files from any working directory.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.store.engine import make_engine
from bot.compose.notices import StaffTemplates
from bot.compose.templates import (
    Renderer,
    check_all,
    packaged_templates,
    sample_context,
    template_folders,
)
from bot.core.digest import DigestFacts, build_digest
from bot.core.model import CaseRecord, Kind, Status
from bot.settings import Settings, anchor_paths, default_rules_path, load_settings, rules_path
from tests.botrun import DELETE, ROOT, base_config, merged, write_config

REF = "PRV-2026-00042"
EDITED_RIGHTS = "Subject: [{{ ref }}] Edited by the admin\n\nOur own words for {{ ref }}.\n"


def admin_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "mine"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def program() -> list[str]:
    """The installed `privacy-bot` command (the checkout's editable install), else run_bot.py."""
    script = Path(sys.executable).parent / "privacy-bot"
    return [str(script)] if script.exists() else [sys.executable, str(ROOT / "run_bot.py")]


def test_the_packaged_files_are_the_repository_files() -> None:
    """One copy of each: the package's defaults are the checkout's templates/ and config/rules.toml."""
    packaged = packaged_templates()
    names = sorted(p.relative_to(packaged).as_posix() for p in packaged.rglob("*.j2"))
    assert names == sorted(p.relative_to(ROOT / "templates").as_posix() for p in (ROOT / "templates").rglob("*.j2"))
    assert "ack_rights.ja.txt.j2" in names and "staff/digest.en.txt.j2" in names
    assert all(filecmp.cmp(packaged / n, ROOT / "templates" / n, shallow=False) for n in names)
    assert filecmp.cmp(default_rules_path(), ROOT / "config" / "rules.toml", shallow=False)


def test_without_an_admin_folder_the_packaged_templates_render() -> None:
    renderer = Renderer(*template_folders(""))
    assert renderer.folders == (packaged_templates(),)
    assert check_all(renderer) == []
    assert renderer.render("ack_rights", "ja", sample_context("ja")).subject.startswith(f"[{REF}]")


def test_the_admins_file_wins_and_the_others_come_from_the_package(tmp_path: Path) -> None:
    mine = admin_folder(tmp_path, {"ack_rights.en.txt.j2": EDITED_RIGHTS})
    renderer = Renderer(*template_folders(mine))
    rights = renderer.render("ack_rights", "en", sample_context("en"))
    assert rights.subject == f"[{REF}] Edited by the admin" and rights.text == f"Our own words for {REF}.\n"
    assert renderer.source("ack_rights.en.txt.j2") == mine / "ack_rights.en.txt.j2"
    # the same message in the other language, and the other messages: the package's
    assert "開示" in renderer.render("ack_rights", "ja", sample_context("ja")).text
    assert renderer.source("ack_rights.ja.txt.j2") == packaged_templates() / "ack_rights.ja.txt.j2"
    general = renderer.render("ack_general", "en", sample_context("en"))
    assert general.text == Renderer().render("ack_general", "en", sample_context("en")).text
    assert check_all(renderer) == []


def test_an_admins_partial_wins_in_every_message_that_includes_it(tmp_path: Path) -> None:
    mine = admin_folder(tmp_path, {"_footer.en.txt.j2": "-- \nThe admin's footer, {{ office_name }}\n"})
    renderer = Renderer(*template_folders(mine))
    for name in ("ack_rights", "ack_general", "ack_opt_out"):
        text = renderer.render(name, "en", sample_context("en")).text
        assert "The admin's footer, Privacy Office" in text, name
    assert "The admin's footer" not in renderer.render("ack_rights", "ja", sample_context("ja")).text


def test_an_admins_template_can_include_the_packaged_one(tmp_path: Path) -> None:
    mine = admin_folder(tmp_path, {
        "ack_general.en.txt.j2": '{% include "default:ack_general.en.txt.j2" %}\nP.S. We are closed on Fridays.\n',
    })
    ours = Renderer(*template_folders(mine)).render("ack_general", "en", sample_context("en"))
    packaged = Renderer().render("ack_general", "en", sample_context("en"))
    assert ours.subject == packaged.subject
    assert ours.text.startswith(packaged.text.rstrip("\n")) and ours.text.endswith("P.S. We are closed on Fridays.\n")


def test_an_admins_broken_template_is_reported_with_its_path(tmp_path: Path) -> None:
    mine = admin_folder(tmp_path, {"ack_opt_out.ja.txt.j2": "Subject: [{{ ref }}] x\n\n{% if %}\n"})
    problems = check_all(Renderer(*template_folders(mine)))
    assert problems and all(str(mine / "ack_opt_out.ja.txt.j2") in p and "syntax error" in p for p in problems)


def test_an_admins_staff_template_wins_over_the_packaged_one(tmp_path: Path) -> None:
    mine = admin_folder(tmp_path, {"staff/alert.en.txt.j2": "Subject: Look at {{ ref }}\n\nDue {{ due }}.\n"})
    now = datetime(2026, 12, 18, 9, 0, tzinfo=UTC)
    case = CaseRecord(ref="PRV-2026-00001", status=Status.IN_PROGRESS, kinds=(Kind.DELETION,),
                      requester="a@example.com", language="en", flags=(), opened_at=now, due_at=now)
    staff = StaffTemplates(template_folders(mine), "en")
    assert staff.alert(case, overdue=False, zone_day=lambda d: d.date().isoformat()) == (
        "Look at PRV-2026-00001", "Due 2026-12-18.\n")
    digest = build_digest(DigestFacts({}, [], {}), as_of=now, since=now, zone=UTC)
    assert staff.digest(digest) == StaffTemplates(template_folders(""), "en").digest(digest)  # not overridden
    ja = StaffTemplates(template_folders(mine), "ja").alert(case, overdue=False, zone_day=lambda d: "x")
    assert "Look at" not in ja[0]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", ""),  # the packaged files
        ("templates", "/etc/privacy-bot/templates"),
        ("./mine/../templates", "/etc/privacy-bot/templates"),
        ("../shared/rules.toml", "/etc/shared/rules.toml"),
        ("/srv/bot/templates", "/srv/bot/templates"),
    ],
)
def test_relative_paths_are_relative_to_the_config_files_folder(given: str, expected: str) -> None:
    settings = Settings(**merged(base_config(imap_port=1, smtp_port=1, db_url="sqlite://"),
                                 {"paths": {"templates": given, "rules": given}, "sorter": {"model": given}}))
    anchored = anchor_paths(settings, Path("/etc/privacy-bot"))
    assert anchored.paths.templates == anchored.paths.rules == anchored.sorter.model == expected


def test_the_config_files_folder_anchors_paths_whatever_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    admin_folder(site, {"ack_rights.en.txt.j2": EDITED_RIGHTS})
    (site / "my-rules.toml").write_bytes(default_rules_path().read_bytes())
    write_config(site, imap_port=1, smtp_port=1, db_url="sqlite://",
                 overrides={"paths": {"templates": "mine", "rules": "my-rules.toml"}})
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("site/bot.toml"))  # a relative --config, as a person types it
    assert settings.paths.templates == str(site / "mine")
    assert rules_path(settings) == site / "my-rules.toml"
    monkeypatch.chdir("/")  # systemd's working directory
    rendered = Renderer(*template_folders(settings.paths.templates)).render("ack_rights", "en", sample_context("en"))
    assert rendered.subject == f"[{REF}] Edited by the admin"
    unset = load_settings(write_config(tmp_path, imap_port=1, smtp_port=1, db_url="sqlite://",
                                       overrides={"paths": {"templates": DELETE, "rules": DELETE}}))
    assert unset.paths.templates == "" and rules_path(unset) == default_rules_path()


def test_templates_check_says_where_each_template_comes_from(tmp_path: Path) -> None:
    site = tmp_path / "site"
    mine = admin_folder(site, {"ack_rights.en.txt.j2": EDITED_RIGHTS,
                               "staff/digest.ja.txt.j2": (packaged_templates() / "staff/digest.ja.txt.j2").read_text()})
    cfg = write_config(site, imap_port=1, smtp_port=1, db_url="sqlite://",
                       overrides={"paths": {"templates": "mine", "rules": DELETE}})
    r = subprocess.run([*program(), "--config", str(cfg), "templates", "check"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines() if line.endswith(".j2")}
    assert lines["ack_rights.en.txt.j2"] == ["admin", str(mine / "ack_rights.en.txt.j2")]
    assert lines["staff/digest.ja.txt.j2"] == ["admin", str(mine / "staff" / "digest.ja.txt.j2")]
    assert lines["ack_rights.ja.txt.j2"] == ["packaged", str(packaged_templates() / "ack_rights.ja.txt.j2")]
    assert lines["staff/alert.en.txt.j2"][0] == "packaged"
    packaged = {p.relative_to(packaged_templates()).as_posix() for p in packaged_templates().rglob("*.j2")}
    assert set(lines) == packaged
    assert r.stdout.rstrip().endswith("templates ok")


def test_digest_print_from_another_folder_uses_the_packaged_templates(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/bot.db"
    make_engine(db).dispose()
    cfg = write_config(tmp_path / "site", imap_port=1, smtp_port=1, db_url=db,
                       overrides={"paths": {"templates": DELETE, "rules": DELETE}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([*program(), "--config", str(cfg), "digest", "--print"], cwd=elsewhere,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "not found" not in r.stderr and "OVERDUE" in r.stdout
