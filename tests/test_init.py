"""`privacy-bot init DIR` (SPEC section 8): a commented config, the templates and the rules to edit,
never over an existing file, and the next steps."""

from __future__ import annotations

import filecmp
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.compose.templates import Renderer, check_all, packaged_templates, template_folders
from bot.settings import Settings, default_rules_path, load_settings, rules_path
from tests.botrun import ROOT


def init(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "init", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def keys_of(model: type[BaseModel]) -> dict[str, set[str]]:
    """{section: {key, ...}} of the settings model."""
    out = {}
    for name, field in model.model_fields.items():
        section = field.annotation
        assert isinstance(section, type) and issubclass(section, BaseModel), name
        out[name] = set(section.model_fields)
    return out


def test_init_writes_a_config_the_templates_and_the_rules(tmp_path: Path) -> None:
    site = tmp_path / "site"
    r = init(str(site), "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    packaged = packaged_templates()
    names = sorted(p.relative_to(packaged) for p in packaged.rglob("*.j2"))
    assert sorted(p.relative_to(site / "templates") for p in (site / "templates").rglob("*.j2")) == names
    assert all(filecmp.cmp(site / "templates" / n, packaged / n, shallow=False) for n in names)
    assert filecmp.cmp(site / "rules.toml", default_rules_path(), shallow=False)
    for unit in ("privacy-bot.service", "privacy-bot-web.service"):
        text = (site / "systemd" / unit).read_text()
        assert f"--config {site / 'bot.toml'}" in text and f"ReadWritePaths={tmp_path / 'data'}" in text
        assert f"EnvironmentFile={site / 'env'}" in text
    out = r.stdout
    for step in (f"privacy-bot --config {site / 'bot.toml'} templates check", "db upgrade", "BOT_MAILBOX__PASSWORD",
                 f"{site / 'env'}", "systemctl", "Next steps"):
        assert step in out, step
    assert (site / "bot.toml").stat().st_mode & 0o007 == 0  # not readable by everyone


def keys_in(text: str) -> dict[str, set[str]]:
    """{section: {key, ...}} of a TOML text, counting the commented-out ones ("# [oauth2]", "# key = ...")."""
    out: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        if m := re.match(r"^(?:# ?)?\[(\w+)\]", line):
            section = m[1]
            out.setdefault(section, set())
        elif section and (m := re.match(r"^(?:# ?)?(\w+) = ", line)):
            out[section].add(m[1])
    return out


def test_the_written_config_loads_and_names_every_key(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert init(str(site), "--data-dir", str(tmp_path / "data"), cwd=tmp_path).returncode == 0
    text = (site / "bot.toml").read_text()
    data: dict[str, Any] = tomllib.loads(text)
    written = keys_in(text)
    for section, keys in keys_of(Settings).items():
        assert section in written, f"[{section}] is not in the config init writes"
        assert written[section] == keys, (section, keys ^ written[section])
    assert data["mailbox"]["password"] == data["smtp"]["password"] == ""  # secrets: BOT_... variables
    assert "BOT_MAILBOX__PASSWORD" in text and "BOT_SMTP__PASSWORD" in text
    assert text.count("#") > 40  # commented
    settings = load_settings(site / "bot.toml")
    assert settings.paths.templates == str(site / "templates")
    assert rules_path(settings) == site / "rules.toml"
    assert settings.database.url == f"sqlite:///{tmp_path / 'data' / 'bot.db'}"
    renderer = Renderer(*template_folders(settings.paths.templates))
    assert check_all(renderer) == []
    assert renderer.source("ack_rights.ja.txt.j2") == site / "templates" / "ack_rights.ja.txt.j2"


def test_init_never_overwrites_a_file(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rules.toml").write_text("# the admin's own rules\n")
    (site / "templates" / "staff").mkdir(parents=True)
    (site / "templates" / "staff" / "alert.en.txt.j2").write_text("Subject: mine\n\nmine\n")
    r = init(str(site), cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert str(site / "rules.toml") in r.stderr and str(site / "templates" / "staff" / "alert.en.txt.j2") in r.stderr
    assert "nothing written" in r.stderr
    assert (site / "rules.toml").read_text() == "# the admin's own rules\n"
    assert (site / "templates" / "staff" / "alert.en.txt.j2").read_text() == "Subject: mine\n\nmine\n"
    assert not (site / "bot.toml").exists() and not (site / "templates" / "ack_rights.en.txt.j2").exists()


def test_init_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    r = init(str(tmp_path / "file"), cwd=tmp_path)
    assert r.returncode == 2 and "not a folder" in r.stderr and "Traceback" not in r.stderr
